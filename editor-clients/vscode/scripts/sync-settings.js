#!/usr/bin/env node
/**
 * Rewrite the server's settings in package.json (contributes.configuration) from the server's own
 * schema, `python -m infill_lsp.options --schema`: every setting with its type, default, limits and
 * choices. The client's settings stay as they are, and so does a description written here for
 * VS Code; a new setting takes the server's description. tests/test_vscode.py fails until this
 * has been run after the server's settings change.
 *
 * Usage: npm run sync-settings [-- /path/to/python]   (default: $INFILL_PYTHON, else python3)
 */

const { execFileSync } = require("node:child_process");
const { readFileSync, writeFileSync } = require("node:fs");
const { join } = require("node:path");

const CLIENT_FIRST = ["pythonPath", "serverCommand", "completionFallback"];
const CLIENT_LAST = ["trace.server"];
const LIMITS = ["items", "minimum", "maximum", "enum"];

const python = process.argv[2] ?? process.env.INFILL_PYTHON ?? "python3";
const schema = JSON.parse(execFileSync(python, ["-m", "infill_lsp.options", "--schema"], { encoding: "utf8" }));
const file = join(__dirname, "..", "package.json");
const manifest = JSON.parse(readFileSync(file, "utf8"));
const before = manifest.contributes.configuration.properties;

const after = {};
for (const name of CLIENT_FIRST) {
  after[`infill.${name}`] = before[`infill.${name}`];
}
for (const [name, server] of Object.entries(schema)) {
  const mine = before[`infill.${name}`] ?? {};
  // A null default (for modelPath: the embedded model) shows as "", which the server reads the same.
  const entry = { type: server.type, default: server.default === null && server.type === "string" ? "" : server.default };
  for (const limit of LIMITS) {
    if (server[limit] !== undefined) {
      entry[limit] = server[limit];
    }
  }
  if (mine.scope !== undefined) {
    entry.scope = mine.scope;
  }
  if (mine.markdownDescription !== undefined) {
    entry.markdownDescription = mine.markdownDescription;
  } else {
    entry.description = mine.description ?? server.description;
  }
  after[`infill.${name}`] = entry;
}
for (const name of CLIENT_LAST) {
  after[`infill.${name}`] = before[`infill.${name}`];
}
manifest.contributes.configuration.properties = after;
writeFileSync(file, JSON.stringify(manifest, null, 2) + "\n");
const added = Object.keys(after).filter((key) => !(key in before));
const removed = Object.keys(before).filter((key) => !(key in after));
console.log(`package.json: ${Object.keys(schema).length} server settings; added ${added.join(", ") || "none"}; removed ${removed.join(", ") || "none"}`);
