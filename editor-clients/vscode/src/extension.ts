/**
 * Wires the infill-lsp language client into VS Code: start the server over stdio once a
 * document of an enabled language is open, forward every server setting, keep the suggest-widget
 * fallback off unless asked, and register the commands and the status-bar item. Starting,
 * stopping and restarting live in launcher.ts; the settings logic in settings.ts.
 */

import * as vscode from "vscode";
import { DidChangeConfigurationNotification, RevealOutputChannelOn, State, type ErrorHandler } from "vscode-languageclient";
import { LanguageClient, TransportKind } from "vscode-languageclient/node";
import { runServerCommand } from "./commands";
import { Launcher } from "./launcher";
import { STATUS_METHOD, isServerStatus } from "./protocol";
import { onInterpreterChange, selectedInterpreter } from "./python";
import { isEnabledFor, readSettings, serverCommand, serverOptions, serverSettingNames, type ClientSettings, type ServerCommand } from "./settings";
import { StatusBar } from "./statusBar";

const SECTION = "infill";
const SCHEMES = ["file", "untitled"];

let launcher: Launcher | undefined;

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

function clientSettings(output: vscode.LogOutputChannel): ClientSettings {
  const { settings, problems } = readSettings((key) => config().get(key));
  for (const problem of problems) {
    output.warn(problem);
    void vscode.window.showWarningMessage(problem);
  }
  return settings;
}

/** The user's own value of a setting (any scope), or undefined when it is left at its default. */
function explicitValue(name: string): unknown {
  const section = config();
  const info = section.inspect(name);
  const set = info !== undefined && [info.globalValue, info.workspaceValue, info.workspaceFolderValue].some((v) => v !== undefined);
  return set ? section.get(name) : undefined;
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const names = serverSettingNames(context.extension.packageJSON);
  const wire = (): Record<string, unknown> => serverOptions(names, explicitValue);
  const output = vscode.window.createOutputChannel("infill-lsp", { log: true });
  const status = new StatusBar("infill.showLog");
  const busy = (delta: number): void => status.busy(delta);
  let settings = clientSettings(output);
  const languageOn = (languageId: string): boolean => isEnabledFor(config().get("languages"), languageId);
  const enabled = (document: vscode.TextDocument): boolean => SCHEMES.includes(document.uri.scheme) && languageOn(document.languageId);

  const plan = async (): Promise<ServerCommand> => {
    const useSelected = settings.serverCommand.length === 0 && settings.pythonPath === "";
    return serverCommand(settings, useSelected ? await selectedInterpreter() : undefined);
  };

  const create = (command: ServerCommand, errorHandler: ErrorHandler): LanguageClient => {
    output.info(`starting: ${[command.command, ...command.args].join(" ")} (the client adds --stdio)`);
    const client = new LanguageClient(
      SECTION,
      "infill-lsp",
      { command: command.command, args: command.args, transport: TransportKind.stdio },
      {
        documentSelector: SCHEMES.map((scheme) => ({ scheme })),
        initializationOptions: wire,
        outputChannel: output,
        // One pop-up per failed start (the client's own "couldn't create connection"), not three.
        revealOutputChannelOn: RevealOutputChannelOn.Never,
        initializationFailedHandler: (error) => {
          output.error(`initialize failed: ${String(error)}`);
          return false;
        },
        errorHandler,
        middleware: {
          // The server pulls section "infill": answer with its settings only (not pythonPath etc.).
          workspace: {
            configuration: (params) => params.items.map((item) => (item.section === SECTION ? wire() : null)),
          },
          provideInlineCompletionItems: (document, position, context, token, next) =>
            languageOn(document.languageId) ? next(document, position, context, token) : null,
          // Ghost text is the product: VS Code asks completion providers at the start of every
          // word, and each answer would be a model run competing with ghost text.
          provideCompletionItem: (document, position, context, token, next) =>
            settings.completionFallback && languageOn(document.languageId)
              ? next(document, position, context, token)
              : null,
        },
      },
    );
    client.onDidChangeState(({ newState }) => {
      if (newState !== State.Running) {
        status.set(newState === State.Stopped ? "stopped" : "starting");
      }
    });
    client.onNotification(STATUS_METHOD, (params: unknown) => {
      if (isServerStatus(params)) {
        status.set(params.state, params);
      }
    });
    return client;
  };

  const started = new Launcher({
    plan,
    create,
    failed: (message) => {
      status.set("error", { state: "error", model: "", message });
      void vscode.window.showErrorMessage(message, "Open Settings").then((choice) => {
        if (choice === "Open Settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "infill.pythonPath");
        }
      });
    },
    log: (message) => output.info(message),
  });
  launcher = started;

  const startIfNeeded = (): void => {
    if (!started.wanted && vscode.workspace.textDocuments.some(enabled)) {
      void started.ensureStarted();
    }
  };

  context.subscriptions.push(
    output,
    status,
    vscode.commands.registerCommand("infill.rewriteSelection", () => runServerCommand(started.running, "rewrite", busy)),
    vscode.commands.registerCommand("infill.reviseSelection", () => runServerCommand(started.running, "revise", busy)),
    vscode.commands.registerCommand("infill.fillHolesInFile", () => runServerCommand(started.running, "fillHoles", busy)),
    vscode.commands.registerCommand("infill.restartServer", () => started.restart()),
    vscode.commands.registerCommand("infill.showLog", () => output.show(true)),
    vscode.workspace.onDidOpenTextDocument(startIfNeeded),
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (!event.affectsConfiguration(SECTION)) {
        return;
      }
      settings = clientSettings(output);
      if (await started.restartIfNeeded()) {
        await started.running?.sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: wire() } });
      }
      startIfNeeded();
    }),
  );
  // Not awaited: activating the Python extension must not hold up ours.
  void onInterpreterChange(() => {
    if (settings.serverCommand.length === 0 && settings.pythonPath === "") {
      void started.restartIfNeeded();
    }
  }).then((watch) => watch && context.subscriptions.push(watch));
  status.set("stopped");
  startIfNeeded();
}

export async function deactivate(): Promise<void> {
  await launcher?.stop();
  launcher = undefined;
}
