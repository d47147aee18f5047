/** Unit tests for the pure modules: settings -> server command and options, status view. */

import * as assert from "node:assert/strict";
import { test } from "node:test";
import { commandArgument, isServerStatus } from "../protocol";
import { DEFAULTS, isEnabledFor, needsRestart, readSettings, serverCommand, serverOptions, type InfillSettings } from "../settings";
import { statusView } from "../status";

function fromObject(values: Record<string, unknown>): ReturnType<typeof readSettings> {
  return readSettings((key) => values[key]);
}

test("no settings: python3 -m infill_lsp and no initialization options", () => {
  const { settings, problems } = fromObject({});
  assert.deepEqual(problems, []);
  assert.deepEqual(settings, DEFAULTS);
  assert.deepEqual(serverCommand(settings, "linux"), { command: "python3", args: ["-m", "infill_lsp"] });
  assert.deepEqual(serverCommand(settings, "win32"), { command: "python", args: ["-m", "infill_lsp"] });
  assert.deepEqual(serverOptions(settings), {});
});

test("pythonPath and serverCommand choose the command line", () => {
  const python = fromObject({ pythonPath: "/venv/bin/python" }).settings;
  assert.deepEqual(serverCommand(python), { command: "/venv/bin/python", args: ["-m", "infill_lsp"] });
  const custom = fromObject({ pythonPath: "/venv/bin/python", serverCommand: ["infill-lsp", "--log-level", "debug"] }).settings;
  assert.deepEqual(serverCommand(custom), { command: "infill-lsp", args: ["--log-level", "debug"] });
});

test("set values go to the server in camelCase; unset (empty, null) ones stay server defaults", () => {
  const { settings } = fromObject({
    modelPath: "/models/mine",
    steps: 8,
    threshold: 0.8,
    temperature: 0,
    holeMarker: "???",
    device: "",
    threads: 1,
    debounceMs: null,
    candidates: 3,
  });
  assert.deepEqual(serverOptions(settings), {
    modelPath: "/models/mine",
    holeMarker: "???",
    threads: 1,
    steps: 8,
    threshold: 0.8,
    temperature: 0,
    candidates: 3,
  });
});

test("for a running server, unset settings go as null (back to the default)", () => {
  const { settings } = fromObject({ steps: 8 });
  assert.deepEqual(serverOptions(settings, true), {
    modelPath: null,
    device: null,
    holeMarker: null,
    threads: null,
    steps: 8,
    threshold: null,
    temperature: null,
    debounceMs: null,
    candidates: null,
  });
});

test("bad values fall back to defaults with one message each", () => {
  const { settings, problems } = fromObject({ steps: 0, threshold: 2, serverCommand: "infill-lsp", enable: { python: "yes" }, modelPath: 3 });
  assert.equal(settings.steps, null);
  assert.equal(settings.threshold, null);
  assert.deepEqual(settings.serverCommand, []);
  assert.deepEqual(settings.enable, { "*": true });
  assert.equal(settings.modelPath, "");
  assert.equal(problems.length, 5);
  assert.match(problems[0] ?? "", /^infill\.serverCommand: expected a list of strings/);
});

test("enable per language: own entry, then '*', then on", () => {
  const settings: InfillSettings = { ...DEFAULTS, enable: { "*": false, python: true } };
  assert.equal(isEnabledFor(settings, "python"), true);
  assert.equal(isEnabledFor(settings, "markdown"), false);
  assert.equal(isEnabledFor({ ...DEFAULTS, enable: {} }, "rust"), true);
  assert.equal(isEnabledFor({ ...DEFAULTS, enable: { plaintext: false } }, "plaintext"), false);
});

test("a restart is needed for command, model or device changes, not for sampling settings", () => {
  assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, steps: 4, temperature: 0.5 }), false);
  assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, pythonPath: "/usr/bin/python3.12" }), true);
  assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, modelPath: "/m" }), true);
  assert.equal(needsRestart(DEFAULTS, { ...DEFAULTS, serverCommand: ["python3", "-m", "infill_lsp"] }), false);
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
