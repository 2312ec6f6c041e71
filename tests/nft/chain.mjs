#!/usr/bin/env node
// A local Ethereum chain for the NFT tests: ganache (in-process EVM, no network beyond
// 127.0.0.1) with the TestNFT (ERC-721) and TestMulti (ERC-1155) contracts from
// build/contracts.json (see compile.mjs) deployed and minted as a JSON plan says:
//
//   node chain.mjs PLAN.json      PLAN = {"chainId": 1337, "erc721": [{"id": "1", "uri": "ipfs://..."}],
//                                          "erc1155": {"template": "http://.../{id}.json", "ids": ["5"]}}
// prints one JSON line {"rpc", "chainId", "erc721", "erc1155", "pid"} when ready; stop it with SIGTERM.
// Transactions are ABI-encoded by hand (three call shapes) against the selectors solc reported.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const ganache = require('ganache')
const here = path.dirname(new URL(import.meta.url).pathname)
const build = JSON.parse(fs.readFileSync(path.join(here, 'build', 'contracts.json'), 'utf8')).contracts
const plan = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const chainId = plan.chainId ?? 1337

const word = (n) => BigInt(n).toString(16).padStart(64, '0')
const encString = (s) => { const b = Buffer.from(s, 'utf8'); return word(b.length) + b.toString('hex').padEnd(Math.ceil(b.length / 32) * 64, '0') }
const address = (a) => a.toLowerCase().replace(/^0x/, '').padStart(64, '0')

const server = ganache.server({ logging: { quiet: true }, chain: { chainId }, wallet: { totalAccounts: 2, deterministic: true } })
await new Promise((resolve, reject) => server.listen(0, '127.0.0.1', (e) => e ? reject(e) : resolve()))
const provider = server.provider
const rpc = (method, params) => provider.request({ method, params })
const [from] = await rpc('eth_accounts', [])
async function send (data, to) {
  const hash = await rpc('eth_sendTransaction', [{ from, to, data: '0x' + data, gas: '0x989680' }])
  const receipt = await rpc('eth_getTransactionReceipt', [hash])
  if (receipt.status !== '0x1') throw new Error(`transaction failed: ${JSON.stringify(receipt)}`)
  return receipt
}
const sel = (name, sig) => build[name].methods[sig]

const nft = (await send(build.TestNFT.bytecode)).contractAddress
for (const t of plan.erc721 ?? []) {
  await send(sel('TestNFT', 'mint(address,uint256,string)') + address(from) + word(t.id) + word(96) + encString(t.uri), nft)
}
let multi = null
if (plan.erc1155) {
  multi = (await send(build.TestMulti.bytecode + word(32) + encString(plan.erc1155.template))).contractAddress
  for (const id of plan.erc1155.ids ?? []) await send(sel('TestMulti', 'mint(address,uint256,uint256)') + address(from) + word(id) + word(1), multi)
}
console.log(JSON.stringify({ rpc: `http://127.0.0.1:${server.address().port}`, chainId, erc721: nft, erc1155: multi, pid: process.pid }))
const stop = () => server.close().finally(() => process.exit(0))
process.on('SIGTERM', stop); process.on('SIGINT', stop)
