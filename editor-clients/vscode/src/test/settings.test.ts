/** Unit tests for the pure modules: settings -> server command and options, status view, preflight. */

import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { checkPython } from "../preflight";
import { commandArgument, isServerStatus } from "../protocol";
import { CLIENT_SETTINGS, DEFAULTS, isEnabledFor, needsRestart, readSettings, serverCommand, serverOptions, serverSettingNames } from "../settings";
import { statusView } from "../status";

const packageJson: unknown = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));

function fromObject(values: Record<string, unknown>): ReturnType<typeof readSettings> {
  return readSettings((key) => values[key]);
}

test("no settings: python3 -m infill_lsp (python on Windows), or the Python extension's interpreter", () => {
  const { settings, problems } = fromObject({});
  assert.deepEqual(problems, []);
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(serverCommand(settings, undefined, "linux"), { command: "python3", args: ["-m", "infill_lsp"], python: "python3" });
  assert.deepEqual(serverCommand(settings, undefined, "win32"), { command: "python", args: ["-m", "infill_lsp"], python: "python" });
  assert.equal(serverCommand(settings, "/venv/bin/python", "linux").command, "/venv/bin/python");
});

test("pythonPath beats the selected interpreter; serverCommand beats both and is not checked as a Python", () => {
  const python = fromObject({ pythonPath: "/opt/py/bin/python" }).settings;
  assert.deepEqual(serverCommand(python, "/venv/bin/python"), { command: "/opt/py/bin/python", args: ["-m", "infill_lsp"], python: "/opt/py/bin/python" });
  const custom = fromObject({ pythonPath: "/opt/py/bin/python", serverCommand: ["infill-lsp", "--log-level", "DEBUG"] }).settings;
  assert.deepEqual(serverCommand(custom, "/venv/bin/python"), { command: "infill-lsp", args: ["--log-level", "DEBUG"] });
});

test("the server's settings are package.json's beyond the client's, and all of them go on the wire", () => {
  const names = serverSettingNames(packageJson);
  for (const client of CLIENT_SETTINGS) {
    assert.ok(!names.includes(client), `${client} stays in the client`);
  }
  for (const name of ["modelPath", "device", "steps", "confidence", "remask", "length", "lengthsDecoded", "maxSpanTokens", "contextTokens", "hints", "languages", "candidates"]) {
    assert.ok(names.includes(name), `${name} is forwarded`);
  }
  const wire = serverOptions(names, (name) => ({ steps: 8, hints: true, languages: ["python"] })[name]);
  assert.deepEqual(Object.keys(wire).sort(), [...names].sort());
  assert.equal(wire.steps, 8);
  assert.equal(wire.hints, true);
  assert.deepEqual(wire.languages, ["python"]);
  assert.equal(wire.temperature, null, "unset settings go as null: the server's (the model's) default");
});

test("bad client settings fall back to defaults with one message each", () => {
  const { settings, problems } = fromObject({ serverCommand: "infill-lsp", pythonPath: 3, completionFallback: "yes" });
  assert.deepEqual(settings, DEFAULTS);
  assert.equal(problems.length, 3);
  assert.match(problems[0] ?? "", /^infill\.pythonPath: expected a path/);
});

test("languages: empty or unset means all", () => {
  assert.equal(isEnabledFor([], "rust"), true);
  assert.equal(isEnabledFor(undefined, "rust"), true);
  assert.equal(isEnabledFor(["python"], "python"), true);
  assert.equal(isEnabledFor(["python"], "plaintext"), false);
});

test("a restart is needed only when the command line changes (the server reloads models itself)", () => {
  const base = serverCommand(DEFAULTS, undefined, "linux");
  assert.equal(needsRestart(base, serverCommand(DEFAULTS, undefined, "linux")), false);
  assert.equal(needsRestart(base, serverCommand({ ...DEFAULTS, pythonPath: "/usr/bin/python3.12" }, undefined, "linux")), true);
  assert.equal(needsRestart(base, serverCommand({ ...DEFAULTS, serverCommand: ["python3", "-m", "infill_lsp"] }, undefined, "linux")), false);
  assert.equal(needsRestart(base, serverCommand({ ...DEFAULTS, serverCommand: ["python3", "-m", "infill_lsp", "--log-level", "DEBUG"] }, undefined, "linux")), true);
});

test("preflight: a missing interpreter is one message that names it and the setting", async () => {
  const message = await checkPython("/nonexistent/bin/python3");
  assert.match(message ?? "", /^infill: Python \/nonexistent\/bin\/python3 not found: set infill\.pythonPath/);
});

test("command argument carries the range only when there is one", () => {
  const range = { start: { line: 1, character: 0 }, end: { line: 2, character: 4 } };
  assert.deepEqual(commandArgument("file:///a.py", range, false), { uri: "file:///a.py", range, apply: false });
  assert.deepEqual(commandArgument("file:///a.py", undefined, true), { uri: "file:///a.py", apply: true });
});

test("status bar view follows the server state", () => {
  const ready = { state: "ready", model: "tiny", message: "" } as const;
  assert.equal(statusView("ready", 0, ready).text, "$(check) infill");
  assert.equal(statusView("ready", 0, ready).tooltip, "infill: ready (tiny)");
  assert.equal(statusView("ready", 2, ready).text, "$(sync~spin) infill");
  assert.equal(statusView("loading", 0).text, "$(loading~spin) infill");
  const error = statusView("error", 0, { state: "error", model: "x", message: "no such directory" });
  assert.equal(error.error, true);
  assert.match(error.tooltip, /no such directory/);
  assert.equal(isServerStatus(ready), true);
  assert.equal(isServerStatus({ state: "busy", model: "" }), false);
});
