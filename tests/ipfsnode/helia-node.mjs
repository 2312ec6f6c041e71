#!/usr/bin/env node
// ownvault's copy of the shared recipe (helia-node.mjs), extended for the IPFS provider tests:
// MFS (files/*), named pins, repo/stat, GC that keeps MFS, a chaos switch, and an IPFS Pinning
// Service API server (--pinning-port) over the same Helia node.
//
// Local, loopback-only IPFS node for tests: Helia (createHeliaLight = blockstore + datastore +
// pins, NO libp2p, NO routers, NO block brokers => it never dials out) behind a small HTTP
// server that speaks a subset of the Kubo RPC API and of the trustless-gateway spec.
//
//   node helia-node.mjs [--port 5001] [--host 127.0.0.1] [--repo DIR | --mem] [--pidfile F]
//                       [--no-verify] [--pinning-port P --pinning-token T] [--pin-queue-ms N]
// prints one JSON line {"listening":"http://127.0.0.1:PORT","pid":N} when ready.
// Stop it with SIGTERM/SIGINT to its pid (blockstore is flushed/closed).
//
// Kubo RPC subset (POST, like Kubo; args in the query string, uploads as multipart/form-data
// or as a raw request body):
//   /api/v0/version  /api/v0/id
//   /api/v0/add?cid-version=1&raw-leaves=true&chunker=size-262144&only-hash=&pin=true
//              (Kubo `ipfs add` defaults: cid-version 0 unless given; raw-leaves follows cid-version;
//               balanced layout, 174 links; ?profile=unixfs-v1-2025 -> 1 MiB/1024) -> NDJSON {Name,Hash,Size}
//   /api/v0/cat?arg=CID[&offset=&length=]      /api/v0/block/get?arg=CID
//   /api/v0/block/put?cid-codec=raw|dag-pb&mhtype=sha2-256&pin=false  -> {Key,Size}
//   /api/v0/block/stat?arg=CID  /api/v0/block/rm?arg=CID
//   /api/v0/dag/import?pin-roots=true (CAR body/multipart) -> NDJSON {Root:{Cid:{"/":..},PinErrorMsg}}
//   /api/v0/dag/export?arg=CID  (CARv1, DFS pre-order, no duplicates = `ipfs dag export`)
//   /api/v0/pin/add?arg=CID  /api/v0/pin/rm?arg=CID  /api/v0/pin/ls[?arg=CID]
//   /api/v0/repo/gc  /api/v0/refs/local  /api/v0/repo/stat
//   /api/v0/pin/add?arg=CID&name=N  /api/v0/pin/ls?names=true   (Kubo >= 0.26: named pins)
//   MFS (Kubo's files/*; the root CID persists under the datastore key /local/filesroot, as in Kubo):
//   /api/v0/files/cp?arg=/ipfs/CID&arg=/dst&parents=true  /api/v0/files/stat?arg=/p
//   /api/v0/files/ls?arg=/p&long=true  /api/v0/files/rm?arg=/p&recursive=true&force=true
//   /api/v0/files/mkdir?arg=/p&parents=true  /api/v0/files/flush?arg=/
//   Errors are HTTP 500 {Message, Code: 0, Type: "error"} with Kubo's messages
//   ("file does not exist", "directory already has entry by that name").
// Chaos (tests only): POST /debug/chaos {"corrupt": ["CID", ...] | "all" | [], "pin_queue_ms": N,
//   "pin_fail": bool} -> the node serves corrupted bytes for those blocks on block/get and the
//   gateway (it still claims to have them); the pinning service holds pins `queued` for N ms.
// Pinning Service API v1 (https://ipfs.github.io/pinning-services-api-spec/), --pinning-port:
//   POST /pins, GET /pins (cid, name+match, status, before, after, limit, meta),
//   GET/POST/DELETE /pins/{requestid}; `Authorization: Bearer T`. Pins fetch missing blocks
//   from `origins` given as HTTP multiaddrs (/ip4/127.0.0.1/tcp/P/http: a trustless gateway).
// Trustless gateway subset (GET/HEAD):
//   /ipfs/CID?format=raw  or Accept: application/vnd.ipld.raw   -> the block
//   /ipfs/CID?format=car  or Accept: application/vnd.ipld.car   -> CARv1 (order=dfs, dups=n)
//   /ipfs/CID  -> UnixFS file bytes (Range: bytes=a-b supported)
import http from 'node:http'
import fs from 'node:fs'
import crypto from 'node:crypto'
import { createHeliaLight } from 'helia'
import { FsBlockstore } from 'blockstore-fs'
import { FsDatastore } from 'datastore-fs'
import { MemoryBlockstore } from 'blockstore-core'
import { MemoryDatastore } from 'datastore-core'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { exporter } from 'ipfs-unixfs-exporter'
import { CarWriter, CarBlockIterator } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import * as raw from 'multiformats/codecs/raw'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import busboy from 'busboy'
import toBuffer from 'it-to-buffer'
import { UnixFS } from 'ipfs-unixfs'
import { Key } from 'interface-datastore'

// Node 20 compat (Helia 7's deps target Node >= 22): ES2024 Promise.withResolvers
Promise.withResolvers ??= function () { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b }); return { promise, resolve, reject } }

const args = Object.fromEntries(process.argv.slice(2).map((a, i, all) => a.startsWith('--')
  ? [a.slice(2), (all[i + 1] && !all[i + 1].startsWith('--')) ? all[i + 1] : true] : null).filter(Boolean))
const HOST = args.host ?? '127.0.0.1'
if (!/^(127\.|::1$|localhost$)/.test(HOST)) { console.error('refusing to listen on a non-loopback address'); process.exit(2) }
const PORT = Number(args.port ?? 5001)
const VERIFY = !args['no-verify']

let blockstore, datastore
if (args.mem || !args.repo) { blockstore = new MemoryBlockstore(); datastore = new MemoryDatastore() } else {
  fs.mkdirSync(args.repo, { recursive: true })
  blockstore = new FsBlockstore(`${args.repo}/blocks`); datastore = new FsDatastore(`${args.repo}/datastore`)
  await blockstore.open(); await datastore.open()
}
// createHeliaLight: no libp2p, routers: [], blockBrokers: [] -> purely local
const helia = createHeliaLight({ blockstore, datastore, routers: [], blockBrokers: [] })
await helia.start()
const OFF = { offline: true }

class HttpError extends Error { constructor (code, msg) { super(msg); this.code = code } }
const parseCid = (s) => { try { return CID.parse(String(s ?? '').replace(/^\/ipfs\//, '').split('/')[0]) } catch { throw new HttpError(400, `invalid CID '${s}'`) } }
const has = (cid) => helia.blockstore.has(cid, OFF)
async function getBlock (cid) {
  if (!await has(cid)) throw new HttpError(404, `block was not found locally (offline): ${cid}`)
  return toBuffer(helia.blockstore.get(cid, OFF))
}
// chaos (tests only): blocks the node claims to have but serves corrupted
const chaos = { corrupt: new Set(), corruptAll: false, pinQueueMs: Number(args['pin-queue-ms'] ?? 0), pinFail: false }
function served (cid, bytes) {
  if (!chaos.corruptAll && !chaos.corrupt.has(cid.toString())) return bytes
  const out = Buffer.from(bytes.length ? bytes : [0x00])
  out[out.length >> 1] ^= 0x01
  return out
}
const bsView = { // exporter-facing view that never goes to the network
  get: async function * (cid) { yield await getBlock(cid) },
  has: (cid) => has(cid),
}
async function verify (cid, bytes) {
  if (!VERIFY) return
  if (cid.multihash.code === sha256.code) {
    const d = crypto.createHash('sha256').update(bytes).digest()
    if (Buffer.compare(d, Buffer.from(cid.multihash.digest)) !== 0) throw new HttpError(400, `block hash mismatch for ${cid}`)
  } else if (cid.multihash.code === 0x00) {
    if (Buffer.compare(Buffer.from(cid.multihash.digest), Buffer.from(bytes)) !== 0) throw new HttpError(400, `identity mismatch ${cid}`)
  } else throw new HttpError(400, `unsupported multihash 0x${cid.multihash.code.toString(16)}`)
}
const linksOf = (cid, bytes) => cid.code === dagPb.code ? dagPb.decode(bytes).Links.map(l => l.Hash) : []
async function * dfs (root) {
  const seen = new Set(); const stack = [root]
  while (stack.length) {
    const cid = stack.pop(); const k = cid.toString()
    if (seen.has(k)) continue
    seen.add(k)
    const bytes = await getBlock(cid)
    yield { cid, bytes: served(cid, bytes) }
    const ls = linksOf(cid, bytes)
    for (let i = ls.length - 1; i >= 0; i--) stack.push(ls[i])
  }
}
async function streamCar (res, roots) {
  for (const r of roots) await getBlock(r) // 404 before headers are sent
  const { writer, out } = CarWriter.create(roots)
  res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=n' })
  const pump = (async () => { for await (const chunk of out) { if (!res.write(chunk)) await new Promise(r => res.once('drain', r)) } })()
  for (const r of roots) for await (const b of dfs(r)) await writer.put(b)
  await writer.close(); await pump; res.end()
}
// uploads: multipart/form-data (Kubo clients) or raw body -> async iterable of {name, stream}
async function * uploads (req) {
  const ct = req.headers['content-type'] ?? ''
  if (!ct.startsWith('multipart/form-data')) { yield { name: '', stream: req }; return }
  const queue = []; let wake; let done = false; let error
  const bb = busboy({ headers: req.headers, limits: { fileSize: Infinity } })
  bb.on('file', (_f, stream, info) => { stream.pause(); queue.push({ name: decodeURIComponent(info.filename ?? ''), stream }); wake?.() })
  bb.on('close', () => { done = true; wake?.() })
  bb.on('error', (e) => { error = e; done = true; wake?.() })
  req.pipe(bb)
  while (true) {
    if (error) throw new HttpError(400, String(error))
    if (queue.length) { const f = queue.shift(); f.stream.resume(); yield f; f.stream.resume(); continue }
    if (done) return
    await new Promise(r => { wake = r })
    wake = undefined
  }
}
function importOpts (q) {
  const profile = q.get('profile')
  const cidVersion = Number(q.get('cid-version') ?? (profile === 'unixfs-v1-2025' ? 1 : 0))
  const rawLeaves = q.has('raw-leaves') ? q.get('raw-leaves') === 'true' : cidVersion === 1
  let chunk = profile === 'unixfs-v1-2025' ? 1048576 : 262144
  const m = /^size-(\d+)$/.exec(q.get('chunker') ?? '')
  if (q.has('chunker') && !m) throw new HttpError(400, 'only chunker=size-N is supported')
  if (m) chunk = Number(m[1])
  const maxLinks = Number(q.get('max-links') ?? (profile === 'unixfs-v1-2025' ? 1024 : 174))
  return { cidVersion, rawLeaves, reduceSingleLeafToSelf: true, wrapWithDirectory: false,
    chunker: fixedSize({ chunkSize: chunk }), layout: balanced({ maxChildrenPerNode: maxLinks }) }
}
const ndjson = (res, objs) => { res.writeHead(200, { 'content-type': 'application/x-ndjson' }); for (const o of objs) res.write(JSON.stringify(o) + '\n'); res.end() }
const json = (res, o, code = 200) => { res.writeHead(code, { 'content-type': 'application/json' }); res.end(JSON.stringify(o)) }
async function pinAdd (cid, name) {
  if (await helia.pins.isPinned(cid)) { // Kubo: pinning again is a no-op (a new name replaces the old)
    if (name != null) await helia.pins.setMetadata(cid, { name })
    return
  }
  for await (const _ of helia.pins.add(cid, { ...OFF, metadata: name != null ? { name } : {} })) { /* walks the whole DAG */ }
}

const rpc = {
  async version (q, req, res) { json(res, { Version: `helia-light ${helia.info.version}`, System: 'loopback-test-node' }) },
  // no libp2p: the only address is the node's own trustless gateway, as an HTTP multiaddr
  async id (q, req, res) { json(res, { ID: 'helia-local-no-libp2p', Addresses: [`/ip4/127.0.0.1/tcp/${server.address().port}/http`] }) },
  async add (q, req, res) {
    const o = importOpts(q); const onlyHash = q.get('only-hash') === 'true'; const pin = q.get('pin') !== 'false'
    const target = onlyHash ? { put: async (c) => c, get: async function * () { throw new Error('only-hash') } } : helia.blockstore
    const out = []
    for await (const f of uploads(req)) {
      let size = 0
      const content = (async function * () { for await (const c of f.stream) { size += c.length; yield c } })()
      for await (const e of importer([{ content }], target, o)) {
        if (pin && !onlyHash) await pinAdd(e.cid)
        out.push({ Name: f.name || e.cid.toString(), Hash: e.cid.toString(), Size: String(size) })
      }
    }
    ndjson(res, out)
  },
  async cat (q, req, res) {
    const cid = parseCid(q.get('arg'))
    const entry = await exporter(cid, bsView)
    if (!['file', 'raw', 'identity'].includes(entry.type)) throw new HttpError(400, `not a file: ${entry.type}`)
    const offset = q.has('offset') ? Number(q.get('offset')) : undefined
    const length = q.has('length') ? Number(q.get('length')) : undefined
    res.writeHead(200, { 'content-type': 'application/octet-stream' })
    for await (const c of entry.content({ offset, length })) if (!res.write(c)) await new Promise(r => res.once('drain', r))
    res.end()
  },
  async 'block/get' (q, req, res) {
    const cid = parseCid(q.get('arg'))
    const b = served(cid, await getBlock(cid))
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length }); res.end(b)
  },
  async 'block/stat' (q, req, res) { const cid = parseCid(q.get('arg')); json(res, { Key: cid.toString(), Size: (await getBlock(cid)).length }) },
  async 'block/put' (q, req, res) {
    const codec = { raw: raw.code, 'dag-pb': dagPb.code, protobuf: dagPb.code }[q.get('cid-codec') ?? q.get('format') ?? 'raw']
    if (codec == null) throw new HttpError(400, 'cid-codec must be raw or dag-pb')
    if ((q.get('mhtype') ?? 'sha2-256') !== 'sha2-256') throw new HttpError(400, 'only mhtype=sha2-256')
    const out = []
    for await (const f of uploads(req)) {
      const bytes = await toBuffer(f.stream)
      const cid = CID.create(q.get('cid-version') === '0' ? 0 : 1, codec, await sha256.digest(bytes))
      await helia.blockstore.put(cid, bytes)
      if (q.get('pin') === 'true') await pinAdd(cid)
      out.push({ Key: cid.toString(), Size: bytes.length })
    }
    if (out.length === 1) json(res, out[0]); else ndjson(res, out)
  },
  async 'block/rm' (q, req, res) {
    const out = []
    for (const a of q.getAll('arg')) {
      const cid = parseCid(a)
      if (await helia.pins.isPinned(cid)) { out.push({ Hash: cid.toString(), Error: 'pinned: recursive' }); continue }
      try { await helia.blockstore.delete(cid); out.push({ Hash: cid.toString() }) } catch (e) { out.push({ Hash: cid.toString(), Error: String(e.message) }) }
    }
    ndjson(res, out)
  },
  async 'dag/import' (q, req, res) {
    const pinRoots = q.get('pin-roots') !== 'false'; const out = []; let nBlocks = 0
    for await (const f of uploads(req)) {
      const it = await CarBlockIterator.fromIterable(f.stream)
      const roots = await it.getRoots()
      for await (const { cid, bytes } of it) { await verify(cid, bytes); await helia.blockstore.put(cid, bytes); nBlocks++ }
      for (const r of roots) {
        let err = ''
        if (pinRoots) { try { await pinAdd(r) } catch (e) { err = String(e.message ?? e) } }
        out.push({ Root: { Cid: { '/': r.toString() }, PinErrorMsg: err } })
      }
    }
    if (q.get('stats') === 'true') out.push({ Stats: { BlockCount: nBlocks } })
    ndjson(res, out)
  },
  async 'dag/export' (q, req, res) { await streamCar(res, [parseCid(q.get('arg'))]) },
  async 'pin/add' (q, req, res) { const cids = q.getAll('arg').map(parseCid); for (const c of cids) await pinAdd(c, q.get('name') ?? undefined); json(res, { Pins: cids.map(String) }) },
  async 'pin/rm' (q, req, res) {
    const cids = q.getAll('arg').map(parseCid)
    for (const c of cids) { if (!await helia.pins.isPinned(c)) throw new HttpError(500, `not pinned or pinned indirectly: ${c}`); for await (const _ of helia.pins.rm(c)) { /* drain */ } }
    json(res, { Pins: cids.map(String) })
  },
  async 'pin/ls' (q, req, res) {
    const Keys = {}
    const names = q.get('names') === 'true'
    const entry = (p) => ({ Type: p.depth === Infinity ? 'recursive' : 'direct', ...(names ? { Name: p.metadata?.name ?? '' } : {}) })
    if (q.has('arg')) { for (const c of q.getAll('arg').map(parseCid)) { if (!await helia.pins.isPinned(c)) throw new HttpError(500, `path '${c}' is not pinned`); Keys[c] = entry(await helia.pins.get(c)) } } else for await (const p of helia.pins.ls()) Keys[p.cid.toString()] = entry(p)
    json(res, { Keys })
  },
  async 'repo/gc' (q, req, res) { // like Kubo: pins and the MFS root are GC roots
    const removed = await withMfs(async () => {
      const keep = new Set()
      const mh = (cid) => Buffer.from(cid.multihash.bytes).toString('hex') // the blockstore keys by multihash
      const mark = async (root) => { for await (const { cid } of dfs(root)) keep.add(mh(cid)) }
      for await (const p of helia.pins.ls()) await mark(p.cid)
      await mark(mfsRoot)
      const gone = [] // collect first: Helia's blockstore holds a read lock for all of getAll()
      for await (const p of helia.blockstore.getAll()) {
        const cid = p.cid ?? CID.createV1(raw.code, p.multihash)
        if (!keep.has(mh(cid))) gone.push(cid)
      }
      for (const cid of gone) await helia.blockstore.delete(cid)
      return gone.map(String)
    })
    ndjson(res, removed.map(k => ({ Key: { '/': k } })))
  },
  async 'repo/stat' (q, req, res) {
    const cids = []; let RepoSize = 0
    for await (const p of helia.blockstore.getAll()) cids.push(p.cid ?? CID.createV1(raw.code, p.multihash))
    for (const c of cids) RepoSize += (await getBlock(c)).length
    const NumObjects = cids.length
    json(res, { RepoSize, StorageMax: Number(args['storage-max'] ?? 10 * 1024 ** 3), NumObjects, RepoPath: args.repo ?? ':memory:', Version: 'fs-repo@helia' })
  },
  ...mfsRpc(),
  async 'refs/local' (q, req, res) {
    const out = []; for await (const p of helia.blockstore.getAll()) out.push({ Ref: (p.cid ?? CID.createV1(raw.code, p.multihash)).toString(), Err: '' })
    ndjson(res, out)
  },
}

// ---- MFS: Kubo's files/* over plain UnixFS directories (no HAMT sharding: test-sized dirs) ----
const FILES_ROOT = new Key('/local/filesroot')
const DIR_DATA = new UnixFS({ type: 'directory' }).marshal()
async function putNode (node) {
  const bytes = dagPb.encode(dagPb.prepare(node))
  const cid = CID.createV1(dagPb.code, await sha256.digest(bytes))
  await helia.blockstore.put(cid, bytes)
  return cid
}
let mfsRoot = (await datastore.has(FILES_ROOT)) ? CID.decode(await datastore.get(FILES_ROOT)) : await putNode({ Data: DIR_DATA, Links: [] })
let mfsLock = Promise.resolve()
function withMfs (fn) { const p = mfsLock.then(fn); mfsLock = p.catch(() => {}); return p }
async function setRoot (cid) { mfsRoot = cid; await datastore.put(FILES_ROOT, cid.bytes) }
const NOT_EXIST = () => new HttpError(500, 'file does not exist')
function mfsParts (p) {
  if (typeof p !== 'string' || !p.startsWith('/')) throw new HttpError(500, 'paths must start with a leading slash')
  return p.split('/').filter(Boolean)
}
async function readDir (cid) {
  if (cid.code !== dagPb.code) throw new HttpError(500, 'not a directory')
  const node = dagPb.decode(await getBlock(cid))
  if (!node.Data || UnixFS.unmarshal(node.Data).type !== 'directory') throw new HttpError(500, 'not a directory')
  return node
}
async function mfsResolve (parts) {
  let cid = mfsRoot
  for (const name of parts) {
    let node
    try { node = await readDir(cid) } catch { throw NOT_EXIST() }
    const l = node.Links.find(l => l.Name === name)
    if (!l) throw NOT_EXIST()
    cid = l.Hash
  }
  return cid
}
async function tsizeOf (cid) {
  const bytes = await getBlock(cid)
  return bytes.length + (cid.code === dagPb.code ? dagPb.decode(bytes).Links.reduce((a, l) => a + (l.Tsize ?? 0), 0) : 0)
}
// rewrite the path from `dir` down to parts (put `leaf`, or remove when leaf is null); returns the new dir CID
async function mfsUpdate (dir, parts, leaf, opts) {
  const node = await readDir(dir)
  const [head, ...rest] = parts
  const existing = node.Links.find(l => l.Name === head)
  const links = node.Links.filter(l => l.Name !== head)
  let child = null
  if (rest.length === 0) {
    if (leaf === null && !existing) throw NOT_EXIST()
    if (leaf !== null && existing) throw new HttpError(500, `cp: cannot put node in path /${head}: directory already has entry by that name`)
    child = leaf
  } else {
    let sub = existing?.Hash
    if (!sub) {
      if (leaf === null || !opts.parents) throw NOT_EXIST()
      sub = await putNode({ Data: DIR_DATA, Links: [] })
    }
    child = await mfsUpdate(sub, rest, leaf, opts)
  }
  if (child) links.push({ Name: head, Hash: child, Tsize: await tsizeOf(child) })
  return putNode({ Data: node.Data, Links: links })
}
async function statOf (cid) {
  const bytes = await getBlock(cid)
  if (cid.code === raw.code) return { Hash: cid.toString(), Size: bytes.length, CumulativeSize: bytes.length, Blocks: 0, Type: 'file' }
  const node = dagPb.decode(bytes); const fsd = UnixFS.unmarshal(node.Data)
  const dir = fsd.type === 'directory' || fsd.type === 'hamt-sharded-directory'
  return { Hash: cid.toString(), Size: dir ? 0 : Number(fsd.fileSize()), CumulativeSize: await tsizeOf(cid), Blocks: node.Links.length, Type: dir ? 'directory' : 'file' }
}
function mfsRpc () {
  return {
    async 'files/cp' (q, req, res) {
      const [src, dst] = q.getAll('arg')
      if (!src || !dst) throw new HttpError(400, 'argument "source" and "dest" are required')
      const parts = mfsParts(dst)
      if (!parts.length) throw new HttpError(500, 'cp: cannot put node in path /: directory already has entry by that name')
      await withMfs(async () => {
        const cid = src.startsWith('/ipfs/') ? parseCid(src) : await mfsResolve(mfsParts(src))
        await getBlock(cid) // Kubo would fetch it; this node is offline
        await setRoot(await mfsUpdate(mfsRoot, parts, cid, { parents: q.get('parents') === 'true' }))
      })
      res.writeHead(200); res.end()
    },
    async 'files/mkdir' (q, req, res) {
      const parts = mfsParts(q.get('arg'))
      await withMfs(async () => {
        try { await mfsResolve(parts); if (q.get('parents') !== 'true') throw new HttpError(500, 'file already exists'); return } catch (e) { if (e.message !== 'file does not exist') throw e }
        await setRoot(await mfsUpdate(mfsRoot, parts, await putNode({ Data: DIR_DATA, Links: [] }), { parents: q.get('parents') === 'true' }))
      })
      res.writeHead(200); res.end()
    },
    async 'files/stat' (q, req, res) { json(res, await withMfs(async () => statOf(await mfsResolve(mfsParts(q.get('arg') ?? '/'))))) },
    async 'files/ls' (q, req, res) {
      const out = await withMfs(async () => {
        const parts = mfsParts(q.get('arg') ?? '/')
        const cid = await mfsResolve(parts)
        const long = q.get('long') === 'true'
        if (cid.code === raw.code || UnixFS.unmarshal(dagPb.decode(await getBlock(cid)).Data).type !== 'directory') {
          const st = await statOf(cid); return [{ Name: parts.at(-1) ?? '', Type: 0, Size: long ? st.Size : 0, Hash: long ? st.Hash : '' }]
        }
        const node = await readDir(cid); const entries = []
        for (const l of node.Links) {
          const st = long ? await statOf(l.Hash) : null
          entries.push({ Name: l.Name, Type: st ? (st.Type === 'directory' ? 1 : 0) : 0, Size: st ? st.Size : 0, Hash: st ? st.Hash : '' })
        }
        return entries
      })
      json(res, { Entries: out.length ? out : null })
    },
    async 'files/rm' (q, req, res) {
      const force = q.get('force') === 'true'
      await withMfs(async () => {
        for (const a of q.getAll('arg')) {
          const parts = mfsParts(a)
          if (!parts.length) throw new HttpError(500, 'cannot delete root')
          try { await setRoot(await mfsUpdate(mfsRoot, parts, null, {})) } catch (e) { if (!(force && e.message === 'file does not exist')) throw e }
        }
      })
      res.writeHead(200); res.end()
    },
    async 'files/flush' (q, req, res) { json(res, { Cid: (await withMfs(async () => mfsResolve(mfsParts(q.get('arg') ?? '/')))).toString() }) },
  }
}
function setChaos (o) {
  if (o.corrupt !== undefined) { chaos.corruptAll = o.corrupt === 'all'; chaos.corrupt = new Set(Array.isArray(o.corrupt) ? o.corrupt : []) }
  if (o.pin_queue_ms !== undefined) chaos.pinQueueMs = Number(o.pin_queue_ms)
  if (o.pin_fail !== undefined) chaos.pinFail = Boolean(o.pin_fail)
  return { corrupt: chaos.corruptAll ? 'all' : [...chaos.corrupt], pin_queue_ms: chaos.pinQueueMs, pin_fail: chaos.pinFail }
}

// ---- IPFS Pinning Service API v1.0.0 over this node -----------------------------------------
// Pin requests persist in REPO/pinning-service.json (atomic rename); a request is `queued` for
// chaos.pinQueueMs, then `pinning` (missing blocks are fetched from HTTP-multiaddr origins as a
// CAR from their trustless gateway, re-hashed), then `pinned` (a Helia pin) or `failed`.
const PIN_TOKEN = args['pinning-token'] ?? null
const PIN_FILE = args.repo && !args.mem ? `${args.repo}/pinning-service.json` : null
const pinReqs = new Map(PIN_FILE && fs.existsSync(PIN_FILE) ? JSON.parse(fs.readFileSync(PIN_FILE, 'utf8')).map(r => [r.requestid, r]) : [])
let lastCreated = 0
function savePins () {
  if (!PIN_FILE) return
  fs.writeFileSync(PIN_FILE + '.tmp', JSON.stringify([...pinReqs.values()])); fs.renameSync(PIN_FILE + '.tmp', PIN_FILE)
}
const pinErr = (code, reason, details) => Object.assign(new HttpError(code, details ?? reason), { reason })
const publicStatus = (r) => ({ requestid: r.requestid, status: r.status, created: r.created, pin: r.pin, delegates: [], info: r.info ?? {} })
function originUrl (ma) { // /ip4/127.0.0.1/tcp/P/http -> http://127.0.0.1:P (loopback only)
  const m = /^\/(ip4|dns4|dns)\/(127\.[0-9.]+|localhost)\/tcp\/(\d+)\/http$/.exec(ma)
  return m ? `http://${m[2]}:${m[3]}` : null
}
async function fetchFromOrigins (root, origins) {
  for (const o of origins ?? []) {
    const base = originUrl(o); if (!base) continue
    try {
      const r = await fetch(`${base}/ipfs/${root}?format=car&dups=n`, { headers: { accept: 'application/vnd.ipld.car' } })
      if (!r.ok) continue
      const it = await CarBlockIterator.fromIterable((async function * () { for await (const c of r.body) yield c })())
      for await (const { cid, bytes } of it) {
        const d = crypto.createHash('sha256').update(bytes).digest()
        if (Buffer.compare(d, Buffer.from(cid.multihash.digest)) !== 0) throw new Error(`origin sent a wrong block for ${cid}`)
        await helia.blockstore.put(cid, bytes)
      }
      return
    } catch (e) { console.error(`origin ${o}: ${e.message}`) }
  }
}
async function missingBlocks (root) { try { for await (const _ of dfs(root)) { /* all there */ } return false } catch { return true } }
async function runPin (r) {
  await new Promise(resolve => setTimeout(resolve, Math.max(0, r.readyAt - Date.now())))
  if (!pinReqs.has(r.requestid)) return
  r.status = 'pinning'; savePins()
  try {
    if (chaos.pinFail) throw new Error('chaos: pin_fail')
    const cid = CID.parse(r.pin.cid)
    if (await missingBlocks(cid)) await fetchFromOrigins(cid, r.pin.origins)
    if (await missingBlocks(cid)) throw new Error('content not found at the origins')
    await pinAdd(cid)
    if (!pinReqs.has(r.requestid)) return unpinIfUnused(cid)
    r.status = 'pinned'
  } catch (e) { r.status = 'failed'; r.info = { status_details: String(e.message ?? e) } }
  savePins()
}
async function unpinIfUnused (cid) {
  const k = cid.toString()
  for (const o of pinReqs.values()) if (o.pin.cid === k && o.status === 'pinned') return
  if (await helia.pins.isPinned(cid)) for await (const _ of helia.pins.rm(cid)) { /* drain */ }
}
function newPinRequest (pin) {
  if (typeof pin?.cid !== 'string') throw pinErr(400, 'BAD_REQUEST', 'cid is required')
  try { CID.parse(pin.cid) } catch { throw pinErr(400, 'BAD_REQUEST', `invalid cid ${pin.cid}`) }
  if (pin.name != null && (typeof pin.name !== 'string' || pin.name.length > 255)) throw pinErr(400, 'BAD_REQUEST', 'name must be a string of at most 255 characters')
  if (pin.meta != null && (typeof pin.meta !== 'object' || Object.values(pin.meta).some(v => typeof v !== 'string'))) throw pinErr(400, 'BAD_REQUEST', 'meta values must be strings')
  const now = Math.max(Date.now(), lastCreated + 1); lastCreated = now
  const r = { requestid: crypto.randomUUID(), status: 'queued', created: new Date(now).toISOString(), readyAt: now + chaos.pinQueueMs,
    pin: { cid: pin.cid, ...(pin.name != null ? { name: pin.name } : {}), origins: pin.origins ?? [], meta: pin.meta ?? {} }, info: {} }
  pinReqs.set(r.requestid, r); savePins(); runPin(r)
  return r
}
function listPins (q) {
  const cids = q.has('cid') ? q.get('cid').split(',') : null
  if (cids && cids.length > 10) throw pinErr(400, 'BAD_REQUEST', 'at most 10 cids')
  const statuses = (q.get('status') ?? 'pinned').split(',')
  const match = q.get('match') ?? 'exact'; const name = q.get('name')
  const before = q.has('before') ? Date.parse(q.get('before')) : Infinity
  const after = q.has('after') ? Date.parse(q.get('after')) : -Infinity
  const limit = Number(q.get('limit') ?? 10)
  if (!(limit >= 1 && limit <= 1000)) throw pinErr(400, 'BAD_REQUEST', 'limit must be 1..1000')
  let meta = null
  if (q.has('meta')) { try { meta = JSON.parse(q.get('meta')) } catch { throw pinErr(400, 'BAD_REQUEST', 'meta must be JSON') } }
  const nameOk = (n) => {
    if (name == null) return true; if (n == null) return false
    if (match === 'exact') return n === name; if (match === 'iexact') return n.toLowerCase() === name.toLowerCase()
    if (match === 'partial') return n.includes(name); if (match === 'ipartial') return n.toLowerCase().includes(name.toLowerCase())
    throw pinErr(400, 'BAD_REQUEST', `bad match ${match}`)
  }
  const all = [...pinReqs.values()].filter(r => statuses.includes(r.status) && (!cids || cids.includes(r.pin.cid)) && nameOk(r.pin.name) &&
    Date.parse(r.created) < before && Date.parse(r.created) > after && (!meta || Object.entries(meta).every(([k, v]) => r.pin.meta?.[k] === v)))
  all.sort((a, b) => Date.parse(b.created) - Date.parse(a.created))
  return { count: all.length, results: all.slice(0, limit).map(publicStatus) }
}
async function pinningHandler (req, res) {
  const url = new URL(req.url, `http://${HOST}`)
  if (!PIN_TOKEN || req.headers.authorization !== `Bearer ${PIN_TOKEN}`) throw pinErr(401, 'UNAUTHORIZED', 'access token is missing or invalid')
  const body = async () => { try { return JSON.parse(Buffer.from(await toBuffer(req)).toString()) } catch { throw pinErr(400, 'BAD_REQUEST', 'body must be JSON') } }
  if (url.pathname === '/pins' && req.method === 'GET') return json(res, listPins(url.searchParams))
  if (url.pathname === '/pins' && req.method === 'POST') return json(res, publicStatus(newPinRequest(await body())), 202)
  const m = /^\/pins\/([0-9a-f-]{1,64})$/.exec(url.pathname)
  if (!m) throw pinErr(404, 'NOT_FOUND', 'no such endpoint')
  const r = pinReqs.get(m[1])
  if (!r) throw pinErr(404, 'NOT_FOUND', 'the specified resource was not found')
  if (req.method === 'GET') return json(res, publicStatus(r))
  if (req.method === 'DELETE' || req.method === 'POST') {
    const pin = req.method === 'POST' ? await body() : null
    pinReqs.delete(r.requestid); savePins()
    await unpinIfUnused(CID.parse(r.pin.cid))
    if (pin) return json(res, publicStatus(newPinRequest(pin)), 202)
    res.writeHead(202); return res.end()
  }
  throw pinErr(405, 'BAD_REQUEST', 'method not allowed')
}
const pinning = args['pinning-port'] !== undefined ? http.createServer(async (req, res) => {
  try { await pinningHandler(req, res) } catch (e) {
    const code = Number.isInteger(e.code) ? e.code : 500
    if (!res.headersSent) json(res, { error: { reason: e.reason ?? 'INTERNAL_SERVER_ERROR', details: String(e.message ?? e) } }, code); else res.destroy(e)
  }
}) : null
for (const r of pinReqs.values()) if (r.status === 'queued' || r.status === 'pinning') runPin(r) // resume after a restart
async function gateway (url, req, res) {
  const cid = parseCid(decodeURIComponent(url.pathname.slice('/ipfs/'.length)))
  const accept = req.headers.accept ?? ''
  const fmt = url.searchParams.get('format') ?? (accept.includes('application/vnd.ipld.raw') ? 'raw' : accept.includes('application/vnd.ipld.car') ? 'car' : '')
  if (fmt === 'raw') {
    const b = served(cid, await getBlock(cid))
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw', 'content-length': b.length, etag: `"${cid}.raw"`, 'cache-control': 'public, max-age=29030400, immutable' })
    return res.end(req.method === 'HEAD' ? undefined : b)
  }
  if (fmt === 'car') { if (req.method === 'HEAD') { await getBlock(cid); res.writeHead(200, { 'content-type': 'application/vnd.ipld.car' }); return res.end() } return streamCar(res, [cid]) }
  const entry = await exporter(cid, bsView)
  if (!['file', 'raw', 'identity'].includes(entry.type)) throw new HttpError(501, 'directory listing not implemented')
  const size = Number(entry.size)
  let offset = 0; let length = size; let code = 200; const h = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', etag: `"${cid}"` }
  const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '')
  if (m) {
    let a = m[1] === '' ? size - Number(m[2]) : Number(m[1]); let b = m[1] === '' ? size - 1 : (m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1))
    if (a < 0) a = 0
    if (a >= size || a > b) { res.writeHead(416, { 'content-range': `bytes */${size}` }); return res.end() }
    offset = a; length = b - a + 1; code = 206; h['content-range'] = `bytes ${a}-${b}/${size}`
  }
  h['content-length'] = length
  res.writeHead(code, h)
  if (req.method === 'HEAD' || length === 0) return res.end()
  for await (const c of entry.content({ offset, length })) if (!res.write(c)) await new Promise(r => res.once('drain', r))
  res.end()
}

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${HOST}`)
    if (url.pathname.startsWith('/api/v0/')) {
      if (req.method !== 'POST') throw new HttpError(405, `${req.method} not allowed (Kubo RPC is POST-only)`)
      const fn = rpc[url.pathname.slice(8).replace(/\/$/, '')]
      if (!fn) throw new HttpError(404, `unknown command ${url.pathname}`)
      return await fn(url.searchParams, req, res)
    }
    if (url.pathname.startsWith('/ipfs/') && (req.method === 'GET' || req.method === 'HEAD')) return await gateway(url, req, res)
    if (url.pathname === '/debug/chaos' && req.method === 'POST') return json(res, setChaos(JSON.parse(Buffer.from(await toBuffer(req)).toString() || '{}')))
    throw new HttpError(404, 'not found')
  } catch (e) {
    const code = e.code && Number.isInteger(e.code) ? e.code : (e.name === 'NotFoundError' ? 404 : 500)
    if (!res.headersSent) json(res, { Message: String(e.message ?? e), Code: 0, Type: 'error' }, code)
    else res.destroy(e)
  }
})
server.requestTimeout = 0
server.listen(PORT, HOST, () => {
  const addr = server.address()
  if (args.pidfile) fs.writeFileSync(args.pidfile, String(process.pid))
  const ready = () => console.log(JSON.stringify({ listening: `http://${HOST}:${addr.port}`, pid: process.pid, repo: args.repo ?? ':memory:', ...(pinning ? { pinning: `http://${HOST}:${pinning.address().port}` } : {}) }))
  if (pinning) pinning.listen(Number(args['pinning-port']), HOST, ready); else ready()
})
let stopping = false
async function shutdown () {
  if (stopping) return; stopping = true
  server.close(); pinning?.close(); await helia.stop()
  try { await blockstore.close?.(); await datastore.close?.() } catch {}
  if (args.pidfile) try { fs.unlinkSync(args.pidfile) } catch {}
  process.exit(0)
}
process.on('SIGTERM', shutdown); process.on('SIGINT', shutdown)
