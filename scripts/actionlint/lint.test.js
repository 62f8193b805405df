// The linter itself must fail on a broken workflow, or a green check means nothing.
// Run: node --test scripts/actionlint/lint.test.js

"use strict";

const test = require("node:test");
const assert = require("node:assert");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const shellcheck = require("./shellcheck.js");

const lint = path.join(__dirname, "lint.js");

function run(files) {
  return spawnSync(process.execPath, [lint, ...files], { encoding: "utf8" });
}

// The scratch directories of the broken workflows, removed when the tests end.
const scratch = [];
test.after(() => {
  for (const dir of scratch) fs.rmSync(dir, { recursive: true, force: true });
});

function workflow(text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "actionlint-test-"));
  scratch.push(dir);
  const file = path.join(dir, "broken.yml");
  fs.writeFileSync(file, text);
  return file;
}

test("the project's workflows are clean", () => {
  const result = run([]);
  assert.strictEqual(result.status, 0, result.stdout + result.stderr);
});

test("a broken workflow fails with file:line:col messages", () => {
  const file = workflow(
    [
      "on: push",
      "jobs:",
      "  test:",
      "    runs-on: ubuntu-latset",
      "    strategy:",
      "      matrix:",
      "        version: [v1.33]",
      "    steps:",
      "      - run: echo ${{ matrix.verison }}",
      "",
    ].join("\n")
  );
  const result = run([file]);
  assert.strictEqual(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /broken\.yml:4:14: label "ubuntu-latset" is unknown/);
  assert.match(result.stdout, /broken\.yml:9:\d+: property "verison" is not defined/);
});

test("run scripts are found at their workflow lines", () => {
  const scripts = shellcheck.runScripts(
    ["steps:", "  - run: echo one", "  - run: |", "      a=1", "      echo $a", ""].join("\n")
  );
  assert.deepStrictEqual(scripts, [
    { line: 2, column: 9, script: "echo one" },
    { line: 4, column: 6, script: "a=1\necho $a" },
  ]);
});

test("shellcheck findings point into the workflow", { skip: !shellcheck.available() }, () => {
  const file = workflow(
    ["on: push", "jobs:", "  a:", "    runs-on: ubuntu-latest", "    steps:", "      - run: |", "          cd $HOME", ""].join("\n")
  );
  const result = run([file]);
  assert.strictEqual(result.status, 1, result.stdout + result.stderr);
  assert.match(result.stdout, /broken\.yml:7:11: shellcheck reported issue in this script: SC2164/);
});
