#!/usr/bin/env node
// Compile contracts/*.sol with solc-js (the npm `solc` package: the compiler as JavaScript,
// nothing downloaded) against node_modules/@openzeppelin/contracts; write build/contracts.json
// {Name: {abi, bytecode, methods}} (methods = solc's methodIdentifiers: signature -> selector).
// Skips the work when the sources and compiler are unchanged (build/contracts.json carries a hash).
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const solc = require('solc')
const here = path.dirname(new URL(import.meta.url).pathname)
const srcDir = path.join(here, 'contracts')
const out = path.join(here, 'build', 'contracts.json')
const sources = {}
for (const f of fs.readdirSync(srcDir).filter(f => f.endsWith('.sol')).sort()) sources[f] = { content: fs.readFileSync(path.join(srcDir, f), 'utf8') }
const hash = crypto.createHash('sha256').update(JSON.stringify(sources)).update(solc.version()).digest('hex')
if (fs.existsSync(out) && JSON.parse(fs.readFileSync(out, 'utf8')).hash === hash) process.exit(0)
const input = {
  language: 'Solidity', sources,
  settings: { evmVersion: 'paris', optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.methodIdentifiers'] } } },
}
function findImports (p) {
  try { return { contents: fs.readFileSync(path.join(here, 'node_modules', p), 'utf8') } } catch (e) { return { error: String(e) } }
}
const t0 = Date.now()
const res = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }))
const errors = (res.errors ?? []).filter(e => e.severity === 'error')
if (errors.length) { console.error(errors.map(e => e.formattedMessage).join('\n')); process.exit(1) }
const contracts = {}
for (const [file, byName] of Object.entries(res.contracts)) {
  if (!file.startsWith('Test')) continue
  for (const [name, c] of Object.entries(byName)) contracts[name] = { abi: c.abi, bytecode: c.evm.bytecode.object, methods: c.evm.methodIdentifiers }
}
fs.mkdirSync(path.dirname(out), { recursive: true })
fs.writeFileSync(out, JSON.stringify({ hash, solc: solc.version(), contracts }, null, 1))
console.log(`[nft] compiled ${Object.keys(contracts).join(', ')} with solc ${solc.version()} in ${Date.now() - t0} ms`)
