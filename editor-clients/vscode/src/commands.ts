/**
 * The extension's commands: rewrite / revise the selection and fill holes (server commands run
 * with progress and applied as one edit), restart the server, show its log. Knows the `vscode`
 * API and the language client; the wire shapes come from protocol.ts.
 */

import * as vscode from "vscode";
import { ExecuteCommandRequest, WorkDoneProgress, type WorkspaceEdit } from "vscode-languageclient";
import type { LanguageClient } from "vscode-languageclient/node";
import { SERVER_COMMANDS, commandArgument, type ServerCommandName } from "./protocol";

const TITLES: Record<ServerCommandName, string> = {
  rewrite: "Rewriting selection",
  revise: "Revising selection",
  fillHoles: "Filling holes",
};

const CONTENT_MODIFIED = -32801; // the server's answer when the file changed under the command

const DOING: Record<ServerCommandName, string> = { rewrite: "rewriting", revise: "revising", fillHoles: "filling holes" };

/** The one message for an edit dropped because the file changed while the command ran. */
function changedWhile(name: ServerCommandName): string {
  return `infill: the file changed while ${DOING[name]}; nothing applied.`;
}

/** The message for an edit dropped because the file was closed (maybe reopened) while it ran. */
function closedWhile(name: ServerCommandName): string {
  return `infill: the file was closed while ${DOING[name]}; nothing applied.`;
}

/**
 * Whether `document` is still the one open for its URI. Closing a file marks its TextDocument
 * closed; reopening it gives a new object whose version restarts, so an unchanged version alone
 * does not prove the text is the one the edit was computed from.
 */
function stillOpen(document: vscode.TextDocument): boolean {
  const uri = document.uri.toString();
  return !document.isClosed && vscode.workspace.textDocuments.find((open) => open.uri.toString() === uri) === document;
}

let nextToken = 0;

/** Run server command `name` on the active editor's selection (or whole file for fillHoles). */
export async function runServerCommand(
  client: LanguageClient | undefined,
  name: ServerCommandName,
  busy: (delta: number) => void,
): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (client === undefined || !client.isRunning()) {
    void vscode.window.showWarningMessage("infill: the server is not running (Infill: Show Log).");
    return;
  }
  if (editor === undefined) {
    return;
  }
  const document = editor.document;
  const selection = editor.selection;
  if (selection.isEmpty && name !== "fillHoles") {
    void vscode.window.showInformationMessage("infill: select the code to " + (name === "rewrite" ? "rewrite." : "revise."));
    return;
  }
  const range = selection.isEmpty ? undefined : client.code2ProtocolConverter.asRange(selection);
  const argument = commandArgument(client.code2ProtocolConverter.asUri(document.uri), range, false);
  const version = document.version;
  const token = `infill-vscode-${++nextToken}`;

  busy(1);
  try {
    const edit = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `infill: ${TITLES[name]}`, cancellable: true },
      async (progress, cancel) => {
        let reported = 0;
        const listener = client.onProgress(WorkDoneProgress.type, token, (value) => {
          if (value.kind !== "end" && value.percentage !== undefined) {
            progress.report({ increment: value.percentage - reported, message: value.message ?? "" });
            reported = value.percentage;
          } else if (value.kind !== "end" && value.message !== undefined) {
            progress.report({ message: value.message });
          }
        });
        try {
          return (await client.sendRequest(
            ExecuteCommandRequest.type,
            { command: SERVER_COMMANDS[name], arguments: [argument], workDoneToken: token },
            cancel,
          )) as WorkspaceEdit | null;
        } finally {
          listener.dispose();
        }
      },
    );
    if (edit === null || edit === undefined || (edit.changes === undefined && edit.documentChanges === undefined)) {
      void vscode.window.setStatusBarMessage(`infill: ${TITLES[name].toLowerCase()}: no change`, 3000);
      return;
    }
    // Converted first, so that nothing awaited lies between the checks and applyEdit.
    const converted = await client.protocol2CodeConverter.asWorkspaceEdit(edit);
    if (!stillOpen(document)) {
      void vscode.window.showWarningMessage(closedWhile(name));
      return;
    }
    if (document.version !== version) {
      void vscode.window.showWarningMessage(changedWhile(name));
      return;
    }
    await vscode.workspace.applyEdit(converted);
  } catch (error) {
    if ((error as { code?: number } | null)?.code === CONTENT_MODIFIED) {
      void vscode.window.showWarningMessage(changedWhile(name));
    } else if (!(error instanceof vscode.CancellationError) && !isCancelled(error)) {
      void vscode.window.showErrorMessage(`infill: ${TITLES[name]} failed: ${String(error)}`);
    }
  } finally {
    busy(-1);
  }
}

function isCancelled(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: number }).code === -32800;
}
