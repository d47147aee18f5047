/**
 * Starts, stops and restarts the language client, one change at a time: restarts queue behind
 * each other (a burst of setting changes runs only the last), a client that never started is
 * dropped rather than disposed, and a Python without infill_lsp is one message, not a server
 * that dies on start and gets restarted.
 */

import { CloseAction, ErrorAction, State, type ErrorHandler } from "vscode-languageclient";
import type { LanguageClient } from "vscode-languageclient/node";
import { checkPython } from "./preflight";
import { needsRestart, type ServerCommand } from "./settings";

export interface LauncherHooks {
  /** The command line to start with now (settings and the selected interpreter). */
  plan(): Promise<ServerCommand>;
  /** A new, unstarted client for `command`, using `errorHandler`. */
  create(command: ServerCommand, errorHandler: ErrorHandler): LanguageClient;
  /** Tell the user why the server cannot start (once per attempt). */
  failed(message: string): void;
  /** Log a line in the extension's output. */
  log(message: string): void;
}

const STOP_TIMEOUT_MS = 2000;

export class Launcher {
  private client: LanguageClient | undefined;
  private command: ServerCommand | undefined;
  private queue: Promise<void> = Promise.resolve();
  private generation = 0;
  /** Whether the server is wanted (an enabled document opened, or the user asked). */
  wanted = false;

  constructor(private readonly hooks: LauncherHooks) {}

  /** The client when it is running, else undefined. */
  get running(): LanguageClient | undefined {
    return this.client?.state === State.Running ? this.client : undefined;
  }

  /** Start the server unless it is wanted already. */
  ensureStarted(): Promise<void> {
    return this.wanted ? this.queue : this.restart();
  }

  /** Stop the current server (if any) and start one with the current settings. */
  restart(): Promise<void> {
    this.wanted = true;
    return this.enqueue(async () => {
      await this.stopClient();
      await this.startClient();
    });
  }

  /** Restart when the command line changed; else true: the running server can take the change. */
  async restartIfNeeded(): Promise<boolean> {
    if (!this.wanted) {
      return false;
    }
    const next = await this.hooks.plan();
    if (this.command === undefined || needsRestart(this.command, next)) {
      await this.restart();
      return false;
    }
    return true;
  }

  /** Stop the server; never throws. */
  stop(): Promise<void> {
    this.wanted = false;
    return this.enqueue(() => this.stopClient());
  }

  /** Run `step` after everything queued; skip it when a later request replaced it meanwhile. */
  private enqueue(step: () => Promise<void>): Promise<void> {
    const mine = ++this.generation;
    this.queue = this.queue.then(async () => {
      if (mine !== this.generation) {
        return;
      }
      try {
        await step();
      } catch (error) {
        this.hooks.log(`infill: ${String(error)}`);
      }
    });
    return this.queue;
  }

  private async stopClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.command = undefined;
    // Only a running client can be stopped; one whose start failed has no server left to stop
    // (vscode-languageclient throws when asked to stop it).
    if (client !== undefined && client.state === State.Running) {
      try {
        await client.dispose(STOP_TIMEOUT_MS);
      } catch (error) {
        this.hooks.log(`infill: stopping the server: ${String(error)}`);
      }
    }
  }

  private async startClient(): Promise<void> {
    const command = await this.hooks.plan();
    if (command.python !== undefined) {
      const problem = await checkPython(command.python);
      if (problem !== undefined) {
        this.hooks.log(problem);
        this.hooks.failed(problem);
        return;
      }
    }
    this.command = command;
    let reachedRunning = false;
    let fallback: ErrorHandler | undefined;
    const errorHandler: ErrorHandler = {
      error: (_error, _message, count) => (count !== undefined && count <= 3 ? { action: ErrorAction.Continue } : { action: ErrorAction.Shutdown }),
      closed: () => {
        if (!reachedRunning) {
          // It died before answering initialize: restarting would only repeat that.
          return { action: CloseAction.DoNotRestart, message: "infill: the server exited while starting.", handled: true };
        }
        fallback ??= client.createDefaultErrorHandler(4);
        return fallback.closed();
      },
    };
    const client = this.hooks.create(command, errorHandler);
    this.client = client;
    try {
      await client.start();
      reachedRunning = true;
    } catch (error) {
      // vscode-languageclient has shown its own message; the client stays dropped-not-disposed.
      this.hooks.log(`infill: the server did not start: ${String(error)}`);
    }
  }
}
