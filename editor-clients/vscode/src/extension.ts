/**
 * Wires the infill-lsp language client into VS Code: start the server over stdio from the
 * settings, turn on inline completion (a proposed feature of vscode-languageclient 9), forward
 * settings changes, and register the commands and the status-bar item. Logic lives elsewhere.
 */

import * as vscode from "vscode";
import { DidChangeConfigurationNotification, State } from "vscode-languageclient";
import { LanguageClient, TransportKind } from "vscode-languageclient/node";
import { runServerCommand } from "./commands";
import { STATUS_METHOD, isServerStatus } from "./protocol";
import { isEnabledFor, needsRestart, readSettings, serverCommand, serverOptions, type InfillSettings } from "./settings";
import { StatusBar } from "./statusBar";

let client: LanguageClient | undefined;
let settings: InfillSettings;

function loadSettings(): InfillSettings {
  const config = vscode.workspace.getConfiguration("infill");
  const { settings: read, problems } = readSettings((key) => config.get(key));
  for (const problem of problems) {
    void vscode.window.showWarningMessage(problem);
  }
  return read;
}

function createClient(output: vscode.OutputChannel, status: StatusBar): LanguageClient {
  const { command, args } = serverCommand(settings);
  const created = new LanguageClient(
    "infill",
    "infill-lsp",
    { command, args, transport: TransportKind.stdio },
    {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      initializationOptions: serverOptions(settings),
      outputChannel: output,
      middleware: {
        // The server pulls section "infill": answer with what it reads, not the raw VS Code
        // section (which also holds client-only settings like pythonPath).
        workspace: {
          configuration: (params) => params.items.map((item) => (item.section === "infill" ? serverOptions(settings) : null)),
        },
        provideInlineCompletionItems: (document, position, context, token, next) =>
          isEnabledFor(settings, document.languageId) ? next(document, position, context, token) : null,
      },
    },
  );
  created.registerProposedFeatures();
  created.onDidChangeState(({ newState }) => status.set(newState === State.Stopped ? "stopped" : "starting"));
  created.onNotification(STATUS_METHOD, (params: unknown) => {
    if (isServerStatus(params)) {
      status.set(params.state, params);
    }
  });
  return created;
}

async function restart(output: vscode.OutputChannel, status: StatusBar): Promise<void> {
  await client?.dispose();
  client = createClient(output, status);
  await client.start();
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  settings = loadSettings();
  const output = vscode.window.createOutputChannel("infill-lsp");
  const status = new StatusBar("infill.showLog");
  const busy = (delta: number): void => status.busy(delta);
  context.subscriptions.push(
    output,
    status,
    vscode.commands.registerCommand("infill.rewriteSelection", () => runServerCommand(client, "rewrite", busy)),
    vscode.commands.registerCommand("infill.reviseSelection", () => runServerCommand(client, "revise", busy)),
    vscode.commands.registerCommand("infill.fillHolesInFile", () => runServerCommand(client, "fillHoles", busy)),
    vscode.commands.registerCommand("infill.restartServer", () => restart(output, status)),
    vscode.commands.registerCommand("infill.showLog", () => output.show(true)),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration("infill")) {
        return;
      }
      const before = settings;
      settings = loadSettings();
      if (needsRestart(before, settings)) {
        await restart(output, status);
      } else if (client?.isRunning()) {
        await client.sendNotification(DidChangeConfigurationNotification.type, { settings: { infill: serverOptions(settings, true) } });
      }
    }),
  );
  await restart(output, status);
}

export async function deactivate(): Promise<void> {
  await client?.dispose();
  client = undefined;
}
