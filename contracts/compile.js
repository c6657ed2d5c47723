// Compiles contracts/*.sol with solc-js (the pinned npm package) and prints the standard-JSON
// output: {contracts: {"Escrow.sol": {"Escrow": {abi, evm: {bytecode}}}}, errors}.
// Run from anywhere: node contracts/compile.js
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const here = __dirname;
const sources = {};
for (const name of fs.readdirSync(here).sort()) {
  if (name.endsWith(".sol")) {
    sources[name] = { content: fs.readFileSync(path.join(here, name), "utf8") };
  }
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    // Shanghai: what the development chain and every chain the platform targets execute.
    evmVersion: "shanghai",
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
function findImports(importPath) {
  const file = path.join(here, "node_modules", importPath);
  if (!file.startsWith(path.join(here, "node_modules") + path.sep)) {
    return { error: "import outside node_modules: " + importPath };
  }
  try {
    return { contents: fs.readFileSync(file, "utf8") };
  } catch (err) {
    return { error: "not found: " + importPath };
  }
}
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const fatal = (output.errors || []).filter((e) => e.severity === "error");
if (fatal.length) {
  for (const e of fatal) process.stderr.write(e.formattedMessage + "\n");
  process.exit(1);
}
process.stdout.write(JSON.stringify(output));
