/** The status-bar item: shows loading / ready / busy / error from the server's infill/status. */

import * as vscode from "vscode";
import type { ServerStatus } from "./protocol";
import { statusView, type ClientState } from "./status";

export class StatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  private state: ClientState = "starting";
  private status: ServerStatus | undefined;
  private busyCount = 0;

  constructor(command: string) {
    this.item.command = command;
    this.render();
    this.item.show();
  }

  /** Record the client's or the server's state. */
  set(state: ClientState, status?: ServerStatus): void {
    this.state = state;
    if (status !== undefined) {
      this.status = status;
    }
    this.render();
  }

  /** Count a request in (+1) or out (-1). */
  busy(delta: number): void {
    this.busyCount = Math.max(0, this.busyCount + delta);
    this.render();
  }

  private render(): void {
    const view = statusView(this.state, this.busyCount, this.status);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.error ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
