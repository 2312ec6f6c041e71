#!/usr/bin/env node
// Real IPFS clients pointed at one trustless gateway (an `ownvault serve` on loopback), for
// tests/clients/test_clients.py. Installed by scripts/setup.d/ipfs-clients.sh (`npm ci`).
//
//   node clients.mjs verified-fetch GATEWAY JOBS.json
//     JOBS.json: [{"resource": "ipfs://CID/path", "headers": {...}, "out": "FILE"}, ...]
//     Each job is fetched with @helia/verified-fetch; the body is written to `out`, and one JSON
//     array is printed: [{status, headers, size, sha256, names?}] (`names`: the entries of a
//     directory listing, which verified-fetch answers with a dag-pb node, HAMTs flattened).
//
// Gateway only, no libp2p: verified-fetch runs over a Helia built with createHeliaLight (no
// libp2p, no bitswap) + @helia/http's withHTTP (the trustless-gateway block broker) whose
// only provider is GATEWAY (the fallback router), with delegated routing turned off.
// Two things that bite, both pinned here and in package.json:
//   * Node 20: Helia 7's dependencies want Node >= 22 (undici 8, Promise.withResolvers):
//     package.json overrides undici to ^7 and this script polyfills Promise.withResolvers.
//   * Helia hangs when the gateway fallback router is its only router: the fetch never
//     settles (Node 20 then exits with code 13, "unsettled top-level await", as soon as
//     nothing else keeps it alive). An extra router that finds nothing (EMPTY_ROUTER) avoids
//     it; tests/clients/test_clients.py fails if it is taken out.
import fs from 'node:fs'
import crypto from 'node:crypto'
import { createHeliaLight } from 'helia'
import { withHTTP } from '@helia/http'
import { createVerifiedFetchWithHelia } from '@helia/verified-fetch'
import * as dagPb from '@ipld/dag-pb'

Promise.withResolvers ??= function () { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b }); return { promise, resolve, reject } }

const EMPTY_ROUTER = { name: 'empty', async * findProviders () {} }

async function verifiedFetch (gateway, jobsFile) {
  if (!/^http:\/\/(127\.[0-9.]+|\[::1\]|localhost)(:\d+)?$/.test(gateway)) throw new Error(`loopback gateways only: ${gateway}`)
  const jobs = JSON.parse(fs.readFileSync(jobsFile, 'utf8'))
  const helia = withHTTP(createHeliaLight({ routers: [], blockBrokers: [] }), {
    delegatedRouters: [], recursiveGateways: [gateway], allowInsecure: true, allowLocal: true
  })
  helia.addRouter(EMPTY_ROUTER)
  await helia.start()
  const vf = await createVerifiedFetchWithHelia(helia)
  const out = []
  try {
    for (const job of jobs) {
      const res = await vf(job.resource, { headers: job.headers ?? {}, signal: AbortSignal.timeout(60_000) })
      const body = Buffer.from(await res.arrayBuffer())
      if (job.out) fs.writeFileSync(job.out, body)
      const item = {
        status: res.status,
        headers: Object.fromEntries(res.headers.entries()),
        size: body.length,
        sha256: crypto.createHash('sha256').update(body).digest('hex')
      }
      if (res.status === 200 && (res.headers.get('content-type') ?? '').includes('dag-pb')) {
        item.names = dagPb.decode(body).Links.map(l => l.Name)
      }
      out.push(item)
    }
  } finally {
    await vf.stop()
    await helia.stop()
  }
  process.stdout.write(JSON.stringify(out))
}

const [cmd, ...rest] = process.argv.slice(2)
if (cmd === 'verified-fetch') await verifiedFetch(...rest)
else { console.error('usage: clients.mjs verified-fetch GATEWAY JOBS.json'); process.exit(2) }
