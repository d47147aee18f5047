/**
 * End-to-end: start the real Python server with the command line and initializationOptions the
 * extension computes from its settings, talk to it over stdio with vscode-jsonrpc (the transport
 * vscode-languageclient uses), and exercise inline completion and rewrite with the tiny model.
 *
 * Needs INFILL_PYTHON (a Python with infill_lsp installed) and INFILL_MODEL_PATH (a model
 * directory, e.g. from `python tests/tiny_model.py OUT`); tests/test_vscode.py sets both.
 */

import * as assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { after, before, test } from "node:test";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from "vscode-jsonrpc/node";
import { SERVER_COMMANDS, STATUS_METHOD, commandArgument, isServerStatus, type ServerStatus, type WirePosition, type WireRange } from "../protocol";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { readSettings, serverCommand, serverOptions, serverSettingNames } from "../settings";

const python = process.env.INFILL_PYTHON;
const modelPath = process.env.INFILL_MODEL_PATH;
const skip = python && modelPath ? false : "INFILL_PYTHON and INFILL_MODEL_PATH are not set";
const TIMEOUT_MS = Number(process.env.INFILL_TEST_TIMEOUT_MS ?? 120_000);

interface TextEdit {
  range: WireRange;
  newText: string;
}

interface WorkspaceEdit {
  changes?: Record<string, TextEdit[]>;
  documentChanges?: { textDocument: { uri: string }; edits: TextEdit[] }[];
}

interface InlineItem {
  insertText: string | { value: string };
  range?: WireRange;
}

/** Offset of an LSP position in `text` (JavaScript strings index UTF-16 code units, like LSP). */
function offsetAt(text: string, position: WirePosition): number {
  let offset = 0;
  for (let line = 0; line < position.line; line++) {
    const newline = text.indexOf("\n", offset);
    assert.notEqual(newline, -1, `line ${position.line} exists`);
    offset = newline + 1;
  }
  return offset + position.character;
}

/** `text` after the edits (applied from the last to the first). */
function applyEdits(text: string, edits: TextEdit[]): string {
  const sorted = [...edits].sort((a, b) => offsetAt(text, b.range.start) - offsetAt(text, a.range.start));
  let out = text;
  for (const edit of sorted) {
    out = out.slice(0, offsetAt(out, edit.range.start)) + edit.newText + out.slice(offsetAt(out, edit.range.end));
  }
  return out;
}

function editsFor(edit: WorkspaceEdit, uri: string): TextEdit[] {
  if (edit.changes) {
    return edit.changes[uri] ?? [];
  }
  return (edit.documentChanges ?? []).filter((change) => change.textDocument.uri === uri).flatMap((change) => change.edits);
}

let server: ChildProcessWithoutNullStreams;
let connection: MessageConnection;
let wire: Record<string, unknown>;
let stderr = "";
const statuses: ServerStatus[] = [];
const progress: { token: string | number; value: { kind: string } }[] = [];
const appliedEdits: { edit: WorkspaceEdit }[] = [];

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + TIMEOUT_MS;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) {
      return value;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}; server stderr:\n${stderr.slice(-3000)}`);
}

before(async () => {
  if (skip) {
    return;
  }
  // The same settings -> command line -> initializationOptions path as the extension.
  const values: Record<string, unknown> = { pythonPath: python, modelPath, steps: 8 };
  const settings = readSettings((key) => values[key]).settings;
  const names = serverSettingNames(JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")));
  wire = serverOptions(names, (name) => values[name]);
  const { command, args } = serverCommand(settings, undefined);
  // --stdio as vscode-languageclient appends it (TransportKind.stdio).
  server = spawn(command, [...args, "--stdio"], { stdio: ["pipe", "pipe", "pipe"] });
  server.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  connection = createMessageConnection(new StreamMessageReader(server.stdout), new StreamMessageWriter(server.stdin));
  connection.onNotification(STATUS_METHOD, (params: unknown) => {
    if (isServerStatus(params)) {
      statuses.push(params);
    }
  });
  connection.onNotification("$/progress", (params: { token: string | number; value: { kind: string } }) => {
    progress.push(params);
  });
  connection.onNotification("window/showMessage", () => undefined);
  connection.onNotification("window/logMessage", () => undefined);
  connection.onRequest("window/workDoneProgress/create", () => null);
  connection.onRequest("client/registerCapability", () => null);
  connection.onRequest("workspace/configuration", (params: { items: unknown[] }) =>
    params.items.map(() => wire),
  );
  connection.onRequest("workspace/applyEdit", (params: { edit: WorkspaceEdit }) => {
    appliedEdits.push(params);
    return { applied: true };
  });
  connection.listen();
});

after(async () => {
  if (skip || !connection) {
    return;
  }
  const exited = new Promise<number | null>((resolve) => server.once("exit", (code) => resolve(code)));
  await connection.sendRequest("shutdown");
  await connection.sendNotification("exit");
  const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 10_000))]);
  connection.dispose();
  if (code === "timeout") {
    server.kill();
  }
  assert.equal(code, 0, "the server exits cleanly after shutdown + exit");
});

test("initialize advertises inline completion and the commands; the model loads", { skip }, async () => {
  const result = (await connection.sendRequest("initialize", {
    processId: process.pid,
    rootUri: null,
    capabilities: {
      general: { positionEncodings: ["utf-16"] },
      textDocument: {
        synchronization: { dynamicRegistration: false },
        inlineCompletion: { dynamicRegistration: false },
      },
      workspace: { applyEdit: true, configuration: true, workspaceEdit: { documentChanges: true } },
      window: { workDoneProgress: true },
    },
    initializationOptions: wire,
  })) as { capabilities: { inlineCompletionProvider?: unknown; executeCommandProvider?: { commands: string[] } } };
  assert.ok(result.capabilities.inlineCompletionProvider, "inlineCompletionProvider");
  const commands = result.capabilities.executeCommandProvider?.commands ?? [];
  for (const command of Object.values(SERVER_COMMANDS)) {
    assert.ok(commands.includes(command), `executeCommandProvider has ${command}`);
  }
  await connection.sendNotification("initialized", {});
  const status = await waitFor("the model to load", async () => {
    const answer = await connection.sendRequest(STATUS_METHOD, {});
    assert.ok(isServerStatus(answer), `infill/status answers a status: ${JSON.stringify(answer)}`);
    assert.notEqual(answer.state, "error", answer.message);
    return answer.state === "ready" ? answer : undefined;
  });
  assert.ok(status.model.length > 0, "the status names the model");
  assert.ok(statuses.some((s) => s.state === "ready"), "a ready notification arrived");
});

test("inline completion: the buffer becomes prefix + completion + suffix", { skip }, async () => {
  const uri = "file:///work/add.py";
  const prefix = "def add(a, b):\n    total = a +";
  const suffix = "\n    return total\n\nprint(add(1, 2))\n";
  const text = prefix + suffix;
  await connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "python", version: 1, text } });
  const cursor = { line: 1, character: "    total = a +".length };
  const answer = (await connection.sendRequest("textDocument/inlineCompletion", {
    textDocument: { uri },
    position: cursor,
    context: { triggerKind: 1 },
  })) as InlineItem[] | { items: InlineItem[] } | null;
  const items = Array.isArray(answer) ? answer : answer?.items ?? [];
  assert.ok(items.length >= 1, `at least one item: ${JSON.stringify(answer)}`);
  const item = items[0]!;
  const insert = typeof item.insertText === "string" ? item.insertText : item.insertText.value;
  assert.ok(insert.length > 0, "the completion is not empty");
  const range = item.range ?? { start: cursor, end: cursor };
  assert.ok(offsetAt(text, range.start) <= prefix.length && prefix.length <= offsetAt(text, range.end), "the range covers the cursor");
  const accepted = applyEdits(text, [{ range, newText: insert }]);
  const swallowed = text.slice(prefix.length, offsetAt(text, range.end));
  const kept = text.slice(offsetAt(text, range.start), prefix.length);
  assert.equal(accepted, text.slice(0, offsetAt(text, range.start)) + insert + text.slice(offsetAt(text, range.end)));
  assert.ok(insert.startsWith(kept), "an item that starts before the cursor repeats what is typed");
  assert.equal(accepted, prefix + insert.slice(kept.length) + suffix.slice(swallowed.length), "prefix + completion + suffix");
});

test("rewrite: the returned edit changes only the range, with work-done progress", { skip }, async () => {
  const uri = "file:///work/notes.txt";
  const text = "Shopping list\napples and pears\nbread and butter\nmilk\n\nCall the bank.\n";
  await connection.sendNotification("textDocument/didOpen", { textDocument: { uri, languageId: "plaintext", version: 1, text } });
  const range = { start: { line: 1, character: 0 }, end: { line: 2, character: "bread and butter".length } };
  const edit = (await connection.sendRequest("workspace/executeCommand", {
    command: SERVER_COMMANDS.rewrite,
    arguments: [commandArgument(uri, range, false)],
    workDoneToken: "rewrite-1",
  })) as WorkspaceEdit;
  const edits = editsFor(edit, uri);
  assert.ok(edits.length >= 1, `a rewrite edit: ${JSON.stringify(edit)}`);
  for (const e of edits) {
    assert.ok(offsetAt(text, e.range.start) >= offsetAt(text, range.start), "edit starts inside the range");
    assert.ok(offsetAt(text, e.range.end) <= offsetAt(text, range.end), "edit ends inside the range");
  }
  const rewritten = applyEdits(text, edits);
  assert.notEqual(rewritten, text, "the rewrite changes the text");
  assert.ok(rewritten.startsWith("Shopping list\n"), "text before the range is kept");
  assert.ok(rewritten.endsWith("\nmilk\n\nCall the bank.\n"), "text after the range is kept");
  const kinds = progress.filter((p) => p.token === "rewrite-1").map((p) => p.value.kind);
  assert.equal(kinds[0], "begin", `progress begins: ${kinds.join(",")}`);
  assert.equal(kinds[kinds.length - 1], "end", `progress ends: ${kinds.join(",")}`);
});

test("rewrite with apply: the server sends workspace/applyEdit and reports it applied", { skip }, async () => {
  const uri = "file:///work/notes.txt";
  const range = { start: { line: 1, character: 0 }, end: { line: 2, character: "bread and butter".length } };
  const result = await connection.sendRequest("workspace/executeCommand", {
    command: SERVER_COMMANDS.rewrite,
    arguments: [commandArgument(uri, range, true)],
  });
  assert.deepEqual(result, { applied: true });
  assert.equal(appliedEdits.length, 1, "one workspace/applyEdit request");
  assert.ok(editsFor(appliedEdits[0]!.edit, uri).length >= 1, "it edits the document");
});
