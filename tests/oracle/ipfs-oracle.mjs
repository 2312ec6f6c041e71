#!/usr/bin/env node
// IPFS reference oracle: UnixFS CIDs + CARv1 files computed by the same JS libraries
// the IPFS ecosystem uses (ipfs-unixfs-importer/exporter, @ipld/car, @ipld/dag-pb).
//
// ownvault's copy of the shared recipe (installed by scripts/setup.d/ipfs-oracle.sh), changed:
//   * unixfs-v1-2025 estimates directory size with 'block-bytes' (IPIP-499, as the
//     importer's own `profile: 'unixfs-v1-2025'` does); the recipe used 'links-bytes';
//   * --shard-threshold N / --shard-strategy links-bytes|block-bytes for cheap HAMT tests;
//   * `ipfs add -r` semantics for trees: hidden names skipped unless --hidden (Kubo's
//     default); symlinks are refused (the JS importer has no symlink input);
//   * `symlink TARGET` prints the CID of the UnixFS symlink node (ipfs-unixfs + dag-pb);
//   * `batch JOBS.json` runs many `cid` jobs in one process (JSON in, JSON out);
//   * kubo-0.22-v1/-v0: Kubo 0.22 also shards a directory whose estimate equals the
//     threshold (>=); the importer shards above it (>), so these use threshold - 1.
//
// ESM resolves packages relative to this file: keep it in (or next to a node_modules
// symlink of) the folder where ipfs-oracle-setup.sh installed the packages.
//
// Commands
//   cid FILE|DIR [--car OUT.car] [--profile kubo-v1|kubo-v0|unixfs-v1-2025|kubo-0.22-v1|kubo-0.22-v0]
//                [--chunk-size N] [--max-links N] [--raw-leaves true|false]
//                [--cid-version 0|1] [--json]
//       prints the root CID `ipfs add --cid-version=1 FILE` (Kubo defaults) would give.
//       --car writes a CARv1 (header roots=[root]) with blocks in DFS pre-order,
//       de-duplicated -- the order of `ipfs dag export` and of trustless-gateway
//       `?format=car` (order=dfs, dups=n).
//   car-ls CAR [--json]     roots + every block (cid, codec, size); re-hashes each block,
//                           checks that every dag-pb link from the roots is present.
//   car-export CAR OUT [--root CID]   writes the UnixFS file content rooted at root (default
//                           the header's first root) to OUT ('-' = stdout); prints its sha256.
//   tree FILE|CAR           prints the DAG (cid, type, sizes) of an import or a CAR.
//   gateway-fetch URL       (ownvault) a trustless-gateway client: GET URL?format=car, check the
//                           Content-Type, re-hash every block, check the DAG is complete, then
//                           unpack it with ipfs-unixfs-exporter (recursive) and print JSON
//                           {status, contentType, roots, blocks, entries: [{path, type, size, sha256}]}.
// Exit code 0 = OK, 1 = verification failure, 2 = usage error.

import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { Readable } from 'node:stream'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { exporter, recursive } from 'ipfs-unixfs-exporter'
import { CarWriter, CarBlockIterator } from '@ipld/car'
import { CarIndexedReader } from '@ipld/car/indexed-reader'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { UnixFS } from 'ipfs-unixfs'

const PROFILES = {
  // Kubo `ipfs add --cid-version=1` (legacy defaults, Import.* config unset):
  // size-262144 chunker, raw leaves (implied by CIDv1), balanced DAG, 174 links/node,
  // sha2-256, no inlining, no mtime/mode, no wrapping directory.
  'kubo-v1': { cidVersion: 1, rawLeaves: true, chunkSize: 262144, maxLinks: 174, shardStrategy: 'links-bytes' },
  // Kubo `ipfs add` (CIDv0): dag-pb UnixFS 'file' leaves.
  'kubo-v0': { cidVersion: 0, rawLeaves: false, chunkSize: 262144, maxLinks: 174, shardStrategy: 'links-bytes' },
  // IPIP-499 profile (Kubo --profile / Import config unixfs-v1-2025): 1 MiB chunks, 1024 links.
  'unixfs-v1-2025': { cidVersion: 1, rawLeaves: true, chunkSize: 1048576, maxLinks: 1024, shardStrategy: 'block-bytes' },
  'kubo-0.22-v1': { cidVersion: 1, rawLeaves: true, chunkSize: 262144, maxLinks: 174, shardStrategy: 'links-bytes', atThreshold: true },
  'kubo-0.22-v0': { cidVersion: 0, rawLeaves: false, chunkSize: 262144, maxLinks: 174, shardStrategy: 'links-bytes', atThreshold: true },
}

class MemBlockstore {
  constructor () { this.m = new Map() }
  async put (cid, bytes) { this.m.set(cid.toString(), bytes); return cid }
  * get (cid) { // interface-blockstore v7: get() yields the bytes
    const b = this.m.get(cid.toString())
    if (b == null) throw Object.assign(new Error(`block not found ${cid}`), { name: 'NotFoundError' })
    yield b
  }
  getBytes (cid) { return this.m.get(cid.toString()) }
  async has (cid) { return this.m.has(cid.toString()) }
}

class CarBlockstore { // read-only, file-backed (index built once)
  constructor (reader) { this.r = reader }
  async * get (cid) {
    const blk = await this.r.get(cid)
    if (blk == null) throw Object.assign(new Error(`block not found ${cid}`), { name: 'NotFoundError' })
    yield blk.bytes
  }
  async getBytes (cid) { const b = await this.r.get(cid); return b?.bytes }
  async has (cid) { return this.r.has(cid) }
}

function parseArgs (argv) {
  const pos = []; const opt = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=')
      if (v !== undefined) opt[k] = v
      else if (k === 'json' || k === 'hidden') opt[k] = true
      else opt[k] = argv[++i]
    } else pos.push(a)
  }
  return { pos, opt }
}

function usage (msg) { if (msg) console.error(msg); console.error('see header of ipfs-oracle.mjs'); process.exit(2) }

function importOptions (opt) {
  const p = { ...(PROFILES[opt.profile ?? 'kubo-v1'] ?? usage(`unknown profile ${opt.profile}`)) }
  if (opt['chunk-size']) p.chunkSize = Number(opt['chunk-size'])
  if (opt['max-links']) p.maxLinks = Number(opt['max-links'])
  if (opt['raw-leaves']) p.rawLeaves = opt['raw-leaves'] === 'true'
  if (opt['cid-version']) p.cidVersion = Number(opt['cid-version'])
  return {
    cidVersion: p.cidVersion,
    rawLeaves: p.rawLeaves,
    leafType: 'file',
    reduceSingleLeafToSelf: true,
    wrapWithDirectory: false,
    chunker: fixedSize({ chunkSize: p.chunkSize }),
    layout: balanced({ maxChildrenPerNode: p.maxLinks }),
    // directories: Kubo's legacy HAMT switch = estimated links bytes > 256 KiB
    shardSplitThresholdBytes: Number(opt['shard-threshold'] ?? 262144) - (p.atThreshold ? 1 : 0),
    shardSplitStrategy: opt['shard-strategy'] ?? p.shardStrategy,
  }
}

function * walkDir (root, hidden) { // Kubo `ipfs add -r DIR`: entry names = DIR basename + relative path
  const base = path.basename(path.resolve(root))
  const stack = [[root, base]]
  while (stack.length) {
    const [abs, rel] = stack.pop()
    const st = fs.lstatSync(abs)
    if (st.isSymbolicLink()) usage(`symlinks are not supported by the oracle: ${abs}`)
    if (st.isDirectory()) {
      const names = fs.readdirSync(abs).filter(n => hidden || !n.startsWith('.')).sort()
      if (names.length === 0) yield { path: rel }
      for (const n of names.reverse()) stack.push([path.join(abs, n), rel + '/' + n])
    } else if (st.isFile()) {
      yield { path: rel, content: fs.createReadStream(abs, { highWaterMark: 1 << 20 }) }
    }
  }
}

class NullBlockstore extends MemBlockstore { async put (cid) { this.n = (this.n ?? 0) + 1; return cid } }

async function importPath (p, opt, keep = true) {
  const bs = keep ? new MemBlockstore() : new NullBlockstore() // CID only: keep no bytes (huge files)
  const o = importOptions(opt)
  const st = fs.statSync(p)
  let last
  if (st.isDirectory()) {
    for await (const e of importer(walkDir(p, Boolean(opt.hidden)), bs, o)) last = e
  } else {
    const src = { content: fs.createReadStream(p, { highWaterMark: 1 << 20 }) }
    for await (const e of importer([src], bs, o)) last = e
  }
  return { root: last.cid, bs, size: st.isDirectory() ? undefined : st.size }
}

function linksOf (cid, bytes) {
  if (cid.code !== dagPb.code) return []
  return dagPb.decode(bytes).Links.map(l => l.Hash)
}

async function * dfs (root, getBytes) { // pre-order, de-duplicated
  const seen = new Set(); const stack = [root]
  while (stack.length) {
    const cid = stack.pop()
    const k = cid.toString()
    if (seen.has(k)) continue
    seen.add(k)
    const bytes = await getBytes(cid)
    if (bytes == null) throw new Error(`missing block ${k}`)
    yield { cid, bytes }
    const ls = linksOf(cid, bytes)
    for (let i = ls.length - 1; i >= 0; i--) stack.push(ls[i])
  }
}

async function writeCar (root, bs, out) {
  const { writer, out: stream } = CarWriter.create([root])
  const ws = fs.createWriteStream(out)
  const piping = new Promise((resolve, reject) => {
    Readable.from(stream).pipe(ws).on('finish', resolve).on('error', reject)
  })
  let n = 0
  for await (const b of dfs(root, async c => bs.getBytes(c))) { await writer.put(b); n++ }
  await writer.close()
  await piping
  return n
}

const codecName = (c) => ({ 0x70: 'dag-pb', 0x55: 'raw', 0x71: 'dag-cbor', 0x0129: 'dag-json', 0x0200: 'json' }[c] ?? `0x${c.toString(16)}`)

async function verifyBlock (cid, bytes) {
  if (cid.multihash.code === 0x00) return Buffer.compare(Buffer.from(cid.multihash.digest), Buffer.from(bytes)) === 0
  if (cid.multihash.code !== sha256.code) return null // unknown hash: not checked
  const d = crypto.createHash('sha256').update(bytes).digest()
  return Buffer.compare(d, Buffer.from(cid.multihash.digest)) === 0
}

async function cmdCid (pos, opt) {
  if (!pos[0]) usage('cid FILE')
  const t0 = performance.now()
  const { root, bs, size } = await importPath(pos[0], opt, Boolean(opt.car))
  const t1 = performance.now()
  let blocks
  if (opt.car) blocks = await writeCar(root, bs, opt.car)
  const t2 = performance.now()
  if (opt.json) {
    console.log(JSON.stringify({ cid: root.toString(), size, blocks: bs.n ?? bs.m.size,
      carBlocks: blocks, importSeconds: +((t1 - t0) / 1000).toFixed(3), carSeconds: opt.car ? +((t2 - t1) / 1000).toFixed(3) : undefined }))
  } else console.log(root.toString())
}

async function cmdCarLs (pos, opt) {
  if (!pos[0]) usage('car-ls CAR')
  const it = await CarBlockIterator.fromIterable(fs.createReadStream(pos[0]))
  const roots = await it.getRoots()
  const blocks = new Map(); let bad = 0; let unchecked = 0; const order = []
  let truncated = null
  try {
  for await (const { cid, bytes } of it) {
    const ok = await verifyBlock(cid, bytes)
    if (ok === false) bad++
    if (ok === null) unchecked++
    const k = cid.toString()
    if (blocks.has(k)) order.push({ cid: k, dup: true })
    blocks.set(k, { cid, size: bytes.length, links: linksOf(cid, bytes).map(String) })
    order.push({ cid: k, codec: codecName(cid.code), size: bytes.length, hashOk: ok })
  }
  } catch (e) { truncated = String(e.message ?? e) } // e.g. 'Unexpected end of data'
  // completeness from roots
  const missing = new Set(); const reach = new Set(); const st = roots.map(String)
  while (st.length) {
    const k = st.pop(); if (reach.has(k)) continue; reach.add(k)
    const b = blocks.get(k); if (!b) { missing.add(k); continue }
    st.push(...b.links)
  }
  const res = { version: it.version, roots: roots.map(String), blocks: blocks.size, entries: order.length,
    badHashes: bad, uncheckedHashes: unchecked, missing: [...missing], unreachable: blocks.size - (reach.size - missing.size), decodeError: truncated }
  if (opt.json) console.log(JSON.stringify({ ...res, list: order }))
  else {
    for (const o of order) console.log(o.dup ? `${o.cid} DUPLICATE` : `${o.cid}\t${o.codec}\t${o.size}${o.hashOk === false ? '\tBAD-HASH' : ''}`)
    console.error(JSON.stringify(res))
  }
  process.exitCode = (bad || missing.size || truncated) ? 1 : 0
}

async function cmdCarExport (pos, opt) {
  if (!pos[0] || !pos[1]) usage('car-export CAR OUT')
  const reader = await CarIndexedReader.fromFile(pos[0])
  const root = opt.root ? CID.parse(opt.root) : (await reader.getRoots())[0]
  const bs = new CarBlockstore(reader)
  const entry = await exporter(root, bs)
  if (entry.type !== 'file' && entry.type !== 'raw' && entry.type !== 'identity') usage(`root is a ${entry.type}, not a file`)
  const h = crypto.createHash('sha256'); let n = 0
  const ws = pos[1] === '-' ? process.stdout : fs.createWriteStream(pos[1])
  for await (const chunk of entry.content()) {
    h.update(chunk); n += chunk.length
    if (!ws.write(chunk)) await new Promise(r => ws.once('drain', r))
  }
  if (ws !== process.stdout) await new Promise(r => ws.end(r))
  await reader.close()
  console.error(JSON.stringify({ root: root.toString(), bytes: n, sha256: h.digest('hex') }))
}

async function cmdTree (pos, opt) {
  let root, getBytes
  if (pos[0].endsWith('.car')) {
    const reader = await CarIndexedReader.fromFile(pos[0])
    root = opt.root ? CID.parse(opt.root) : (await reader.getRoots())[0]
    getBytes = async c => (await reader.get(c))?.bytes
  } else {
    const r = await importPath(pos[0], opt); root = r.root; getBytes = async c => r.bs.getBytes(c)
  }
  const show = async (cid, depth) => {
    const bytes = await getBytes(cid)
    let desc = `${codecName(cid.code)} ${bytes.length}B`
    if (cid.code === dagPb.code) {
      const n = dagPb.decode(bytes); const u = UnixFS.unmarshal(n.Data)
      desc += ` unixfs=${u.type} fileSize=${u.fileSize()} links=${n.Links.length} blockSizes=${u.blockSizes.length}`
      console.log(`${'  '.repeat(depth)}${cid} ${desc}`)
      if (depth < (Number(opt.depth ?? 2))) for (const l of n.Links) await show(l.Hash, depth + 1)
      else if (n.Links.length) console.log(`${'  '.repeat(depth + 1)}... ${n.Links.length} children`)
    } else console.log(`${'  '.repeat(depth)}${cid} ${desc}`)
  }
  await show(root, 0)
}

async function cmdBatch (pos) { // JSON array of {path, ...options} -> JSON array of {cid}
  const jobs = JSON.parse(fs.readFileSync(pos[0] ?? usage('batch JOBS.json'), 'utf8'))
  const out = []
  for (const job of jobs) {
    const opt = {}
    for (const [k, v] of Object.entries(job)) if (k !== 'path') opt[k] = typeof v === 'boolean' && k !== 'hidden' ? String(v) : v
    const { root, bs } = await importPath(job.path, opt, Boolean(opt.car))
    if (opt.car) await writeCar(root, bs, opt.car)
    out.push({ cid: root.toString() })
  }
  console.log(JSON.stringify(out))
}

async function cmdSymlink (pos) {
  const data = new TextEncoder().encode(pos[0] ?? usage('symlink TARGET'))
  const bytes = dagPb.encode(dagPb.prepare({ Data: new UnixFS({ type: 'symlink', data }).marshal(), Links: [] }))
  const digest = await sha256.digest(bytes)
  console.log(JSON.stringify({ v1: CID.createV1(dagPb.code, digest).toString(), v0: CID.createV0(digest).toString(), size: bytes.length }))
}

async function cmdGatewayFetch (pos) {
  const url = pos[0] ?? usage('gateway-fetch URL')
  const res = await fetch(url + (url.includes('?') ? '&' : '?') + 'format=car',
    { headers: { accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=n' } })
  const out = { status: res.status, contentType: res.headers.get('content-type') }
  if (res.status !== 200) { console.log(JSON.stringify(out)); process.exitCode = 1; return }
  const it = await CarBlockIterator.fromBytes(new Uint8Array(await res.arrayBuffer()))
  out.roots = (await it.getRoots()).map(String)
  const bs = new MemBlockstore(); let n = 0
  for await (const { cid, bytes } of it) {
    if (await verifyBlock(cid, bytes) !== true) throw new Error(`bad block ${cid}`)
    await bs.put(cid, bytes); n++
  }
  out.blocks = n
  const ipfsPath = new URL(url).pathname.replace(/\/+$/, '')
  const entries = []
  for await (const e of recursive(decodeURIComponent(ipfsPath), bs)) {
    const full = await exporter(e.cid, bs) // recursive() yields light entries
    const item = { path: e.path, type: full.type, cid: e.cid.toString() }
    if (full.type === 'file' || full.type === 'raw') {
      const h = crypto.createHash('sha256'); let size = 0
      for await (const chunk of full.content()) { h.update(chunk); size += chunk.length }
      item.size = size; item.sha256 = h.digest('hex')
    }
    entries.push(item)
  }
  out.entries = entries
  console.log(JSON.stringify(out))
}

const { pos, opt } = parseArgs(process.argv.slice(2))
const cmd = pos.shift()
const cmds = { cid: cmdCid, 'car-ls': cmdCarLs, 'car-export': cmdCarExport, tree: cmdTree, symlink: cmdSymlink, batch: cmdBatch, 'gateway-fetch': cmdGatewayFetch }
if (!cmds[cmd]) usage(`unknown command ${cmd}`)
await cmds[cmd](pos, opt)
