/**
 * The extension as VS Code runs it, minus VS Code: the real `activate()` and the real
 * vscode-languageclient, through a stand-in for the `vscode` module, against the real Python
 * server. The server is started by the client's own command line (TransportKind.stdio appends
 * --stdio), providers are called with VS Code's trigger kinds, settings change through
 * onDidChangeConfiguration.
 *
 * Needs INFILL_PYTHON (a Python with infill_lsp installed) and INFILL_MODEL_PATH (a model
 * directory, e.g. from `python tests/tiny_model.py OUT`); tests/test_vscode.py sets both.
 */

import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, test } from "node:test";
import { CancellationTokenSource, InlineCompletionList, Selection, StandIn, install, type TextDocumentLike } from "./vscodeStandIn";

const python = process.env.INFILL_PYTHON;
const modelPath = process.env.INFILL_MODEL_PATH;
const skip = python && modelPath ? false : "INFILL_PYTHON and INFILL_MODEL_PATH are not set";
const TIMEOUT_MS = Number(process.env.INFILL_TEST_TIMEOUT_MS ?? 120_000);
const INVOKE = 0; // vscode.InlineCompletionTriggerKind.Invoke (Alt+\, Alt+], Alt+[)
const AUTOMATIC = 1; // vscode.InlineCompletionTriggerKind.Automatic (typing)

const packageJson = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
const standIn = new StandIn(packageJson);
install(standIn);
// What VS Code loads (package.json's main: the bundle of the extension and vscode-languageclient),
// after install(), so that its `require("vscode")` gets the stand-in.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const extension = require(join(__dirname, "..", "..", packageJson.main)) as typeof import("../extension");

const SOURCE = "def add(a, b):\n    total = a\n    return total\n\nprint(add(1, 2))\n";

function context(): unknown {
  return { subscriptions: [] as { dispose(): unknown }[], extension: { packageJSON: packageJson }, extensionPath: join(__dirname, "..", "..") };
}

let activeContext: { subscriptions: { dispose(): unknown }[] } | undefined;

async function activate(settings: Record<string, unknown>, selectedPython?: string): Promise<void> {
  standIn.reset();
  standIn.selectedPython = selectedPython;
  for (const [key, value] of Object.entries(settings)) {
    standIn.user.set(key, value);
  }
  activeContext = context() as { subscriptions: { dispose(): unknown }[] };
  await extension.activate(activeContext as never);
}

async function deactivate(): Promise<void> {
  await extension.deactivate();
  for (const item of activeContext?.subscriptions ?? []) {
    item.dispose();
  }
  activeContext = undefined;
}

/** Command lines of this process's children that run the server. */
function servers(): string[] {
  const out = execFileSync("ps", ["-o", "args=", "--ppid", String(process.pid)], { encoding: "utf8" });
  return out
    .split("\n")
    .filter((line) => line.includes("infill_lsp") && !line.includes("import infill_lsp"))
    .map((line) => line.trim());
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = TIMEOUT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined && value !== false) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}\nmessages: ${JSON.stringify(standIn.messages)}\nlog:\n${standIn.log.slice(-40).join("\n")}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function ready(): Promise<void> {
  await waitFor("the status bar to say ready", () => standIn.statusItems[0]?.text === "$(check) infill");
}

function liveInlineProvider(): { provideInlineCompletionItems: (...args: unknown[]) => Promise<unknown> } {
  const live = standIn.inlineProviders.filter((entry) => !entry.disposed);
  assert.equal(live.length, 1, "exactly one inline completion provider is registered");
  return live[0]!.provider;
}

async function inline(doc: TextDocumentLike, line: number, character: number, triggerKind: number): Promise<{ insertText: string }[]> {
  const { Position } = standIn.module;
  const token = new CancellationTokenSource().token;
  const result = await liveInlineProvider().provideInlineCompletionItems(doc, new Position(line, character), { triggerKind, selectedCompletionInfo: undefined }, token);
  const items = result instanceof InlineCompletionList ? result.items : ((result ?? []) as { insertText: string }[]);
  return items.map((item) => ({ insertText: typeof item.insertText === "string" ? item.insertText : (item.insertText as { value: string }).value }));
}

afterEach(async () => {
  if (skip) {
    return;
  }
  await deactivate();
  await waitFor("the servers to exit", () => servers().length === 0, 15_000);
});

after(() => {
  // vscode-languageclient keeps timers; the suite is done.
  setTimeout(() => process.exit(process.exitCode ?? 0), 500).unref();
});

const working = (): Record<string, unknown> => ({
  "infill.pythonPath": python,
  "infill.modelPath": modelPath,
  "infill.steps": 4,
});

test("the server starts through the client's command line (--stdio appended) once an enabled document opens", { skip }, async () => {
  await activate({ ...working(), "infill.languages": ["python"] });
  standIn.open("/work/notes.txt", "plaintext", "shopping list\n");
  await sleep(500);
  assert.deepEqual(servers(), [], "a plaintext document does not start the server when languages is [python]");
  const doc = standIn.open("/work/add.py", "python", SOURCE);
  await ready();
  const running = servers();
  assert.equal(running.length, 1, `one server: ${running.join(" | ")}`);
  assert.match(running[0]!, /-m infill_lsp --stdio$/, "the client's own command line, --stdio included");
  assert.deepEqual(standIn.messages.filter((m) => m.kind === "error"), [], "no error messages");
  const items = await inline(doc, 1, "    total = a".length, INVOKE);
  assert.ok(items.length >= 1, "ghost text arrives");
});

test("typing asks for one debounced item; an explicit trigger (Alt+\\) for several", { skip }, async () => {
  await activate({ ...working(), "infill.debounceMs": 300 });
  const doc = standIn.open("/work/add.py", "python", SOURCE);
  await ready();
  // Two keystrokes in a row: the first request is superseded during the debounce, the second
  // waits it out and gets one candidate.
  const first = standIn.type(doc, 1, " ");
  const firstAnswer = inline(doc, first.line, first.character, AUTOMATIC);
  const second = standIn.type(doc, 1, "+");
  const started = Date.now();
  const secondAnswer = await inline(doc, second.line, second.character, AUTOMATIC);
  const waited = Date.now() - started;
  assert.deepEqual(await firstAnswer, [], "the superseded keystroke gets nothing");
  assert.equal(secondAnswer.length, 1, `typing gets one item: ${JSON.stringify(secondAnswer)}`);
  assert.ok(waited >= 300, `the server waited out debounceMs (${waited} ms)`);
  const explicit = await inline(doc, second.line, second.character, INVOKE);
  assert.ok(explicit.length >= 2, `an explicit trigger gets several items: ${JSON.stringify(explicit)}`);
  assert.equal(new Set(explicit.map((item) => item.insertText)).size, explicit.length, "distinct");
  assert.deepEqual(standIn.messages.filter((m) => m.kind === "error"), [], "no error pop-ups (an Invoke sent as 0 is refused)");
});

test("setting changes reach the running server, every setting included", { skip }, async () => {
  await activate(working());
  const doc = standIn.open("/work/add.py", "python", SOURCE);
  await ready();
  const cursor = "    total = a".length;
  assert.ok((await inline(doc, 1, cursor, INVOKE)).length >= 2, "several candidates by default");
  standIn.configure({ "infill.candidates": 1 });
  await waitFor("candidates: 1 to apply", async () => (await inline(doc, 1, cursor, INVOKE)).length === 1, 20_000);
  // A setting the old client never forwarded: the server's own check answers for it.
  standIn.configure({ "infill.maxSpanTokens": 0 });
  await waitFor("the server's word on maxSpanTokens", () => standIn.messages.some((m) => m.text.includes("infill.maxSpanTokens")), 20_000);
  assert.equal(servers().length, 1, "sampling settings do not restart the server");
});

test("the suggest-widget fallback stays off unless infill.completionFallback is on", { skip }, async () => {
  await activate(working());
  const doc = standIn.open("/work/add.py", "python", SOURCE);
  await ready();
  const { Position } = standIn.module;
  const live = () => standIn.completionProviders.filter((entry) => !entry.disposed)[0]?.provider;
  const provider = await waitFor("a completion provider", live);
  const ask = () => provider.provideCompletionItems(doc, new Position(1, "    total = a".length), { triggerKind: 0 }, new CancellationTokenSource().token);
  assert.equal(await ask(), null, "off: no request, no items");
  standIn.configure({ "infill.completionFallback": true });
  const answer = (await ask()) as { items?: unknown[] } | unknown[] | null;
  const items = Array.isArray(answer) ? answer : answer?.items ?? [];
  assert.ok(items.length >= 1, `on: infill items: ${JSON.stringify(answer)}`);
});

test("rewrite applies its edit, but not to a file closed (and reopened) while the server worked", { skip }, async () => {
  await activate(working());
  const path = "/work/add.py";
  const selection = new Selection(1, 0, 1, "    total = a".length);
  const rewrite = async (doc: TextDocumentLike): Promise<void> => {
    standIn.showEditor(doc, selection);
    await standIn.commands.get("infill.rewriteSelection")!();
  };
  const first = standIn.open(path, "python", SOURCE);
  await ready();
  // Untouched: the edit lands (so the refusals below are not an edit that never came).
  await rewrite(first);
  assert.equal(standIn.appliedEdits.length, 1, `one edit applied: ${JSON.stringify(standIn.messages)}`);
  assert.notEqual(first.text, SOURCE, "the rewrite changed the file");
  standIn.close(first);

  // Closed and reopened with the same text once the answer is in, before it is applied: a new
  // document whose version equals the one the command started from.
  const second = standIn.open(path, "python", SOURCE);
  let reopened: (TextDocumentLike & { text: string }) | undefined;
  let reopenedVersion = -1;
  standIn.afterProgress = () => {
    standIn.close(second);
    reopened = standIn.open(path, "python", SOURCE);
    reopenedVersion = reopened.version;
  };
  await rewrite(second);
  assert.ok(reopened !== undefined, "the document was reopened while the command ran");
  assert.equal(reopenedVersion, second.version, "same version: the version check alone cannot tell");
  assert.equal(standIn.appliedEdits.length, 1, "no edit applied to the reopened file");
  assert.equal(reopened.text, SOURCE);
  const refusal = "infill: the file was closed while rewriting; nothing applied.";
  assert.deepEqual(standIn.messages.filter((m) => m.kind !== "info"), [{ kind: "warning", text: refusal }]);

  // Closed and left closed: nothing applied either (VS Code would open it from disk to apply it).
  standIn.afterProgress = () => standIn.close(reopened!);
  await rewrite(reopened);
  assert.equal(standIn.appliedEdits.length, 1, "no edit applied to the closed file");
  assert.deepEqual(standIn.messages.filter((m) => m.kind !== "info"), [{ kind: "warning", text: refusal }, { kind: "warning", text: refusal }]);
});

test("the Python extension's interpreter without infill_lsp: one clear message, no loop; selecting another recovers", { skip }, async () => {
  const bare = join(mkdtempSync(join(tmpdir(), "infill-bare-")), "python3");
  writeFileSync(bare, `#!/bin/sh\nexec "${python}" -I -S "$@"\n`); // isolated: no site-packages
  chmodSync(bare, 0o755);
  await activate({ "infill.modelPath": modelPath, "infill.steps": 4 }, bare); // no pythonPath
  const doc = standIn.open("/work/add.py", "python", SOURCE);
  await waitFor("the message", () => standIn.messages.length > 0, 30_000);
  await sleep(3000);
  assert.equal(standIn.messages.length, 1, `one message: ${JSON.stringify(standIn.messages)}`);
  assert.equal(standIn.messages[0]!.kind, "error");
  assert.equal(
    standIn.messages[0]!.text,
    `infill: No module named infill_lsp in ${bare}: set infill.pythonPath to the Python that has infill-lsp, or pip install /path/to/infill-lsp into this one.`,
  );
  assert.deepEqual(servers(), []);
  assert.equal(standIn.statusItems[0]?.text, "$(error) infill");
  standIn.selectPython(python!);
  await ready();
  assert.ok(standIn.log.some((line) => line.includes(`starting: ${python} -m infill_lsp`)), "the selected interpreter runs the server");
  assert.equal(servers().length, 1);
  assert.ok((await inline(doc, 1, "    total = a".length, INVOKE)).length >= 1, "ghost text");
});

test("a restart after a failed start recovers; quick setting changes leave one server", { skip }, async () => {
  await activate({ ...working(), "infill.serverCommand": [python, "-c", "import sys; sys.exit(3)"] });
  const doc = standIn.open("/work/add.py", "python", SOURCE);
  await waitFor("the failed start", () => standIn.log.some((line) => line.includes("did not start")), 30_000);
  await sleep(2000);
  const errors = standIn.messages.filter((m) => m.kind === "error");
  assert.equal(errors.length, 1, `one pop-up for a failed start, no restart loop: ${JSON.stringify(standIn.messages)}`);
  await standIn.commands.get("infill.restartServer")!(); // still broken: must not throw
  standIn.configure({ "infill.serverCommand": [] }); // back to pythonPath: recovers
  await ready();
  assert.ok((await inline(doc, 1, "    total = a".length, INVOKE)).length >= 1, "ghost text after recovery");
  // Two changes that each need a restart, in quick succession.
  standIn.configure({ "infill.serverCommand": [python, "-m", "infill_lsp", "--log-level", "INFO"] });
  standIn.configure({ "infill.serverCommand": [python, "-m", "infill_lsp", "--log-level", "WARNING"] });
  await waitFor("the last command line to run", () => servers().some((line) => line.includes("--log-level WARNING --stdio")));
  await ready();
  await sleep(1000);
  assert.equal(servers().length, 1, `one server: ${servers().join(" | ")}`);
  liveInlineProvider();
});
