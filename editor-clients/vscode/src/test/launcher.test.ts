/**
 * The launcher with stand-in clients (no server, no Python): restarts run one at a time and a
 * burst runs only the last, a client whose start failed is dropped and never disposed, stopping
 * never throws, and a Python without infill_lsp stops at the preflight with one message.
 */

import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { LauncherHooks } from "../launcher";
import type { ServerCommand } from "../settings";
import { StandIn, install } from "./vscodeStandIn";

install(new StandIn(JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"))));
// After install(): vscode-languageclient loads against the stand-in.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Launcher } = require("../launcher") as typeof import("../launcher");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { State } = require("vscode-languageclient") as typeof import("vscode-languageclient");

class FakeClient {
  state: number = State.Stopped;
  disposed = 0;
  constructor(
    readonly id: number,
    private readonly fail: boolean,
    private readonly events: string[],
  ) {}
  async start(): Promise<void> {
    this.events.push(`start ${this.id}`);
    this.state = State.Starting;
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (this.fail) {
      this.state = State.Stopped;
      throw new Error("the server exited");
    }
    this.state = State.Running;
  }
  async dispose(): Promise<void> {
    this.disposed += 1;
    if (this.state !== State.Running) {
      throw new Error("Client is not running and can't be stopped"); // as vscode-languageclient does
    }
    this.events.push(`stop ${this.id}`);
    this.state = State.Stopped;
  }
  createDefaultErrorHandler(): unknown {
    return { closed: () => ({ action: 1 }) };
  }
}

function harness(options: { failFirst?: boolean; python?: string } = {}) {
  const events: string[] = [];
  const clients: FakeClient[] = [];
  const failures: string[] = [];
  const command: ServerCommand = options.python === undefined ? { command: "infill-lsp", args: [] } : { command: options.python, args: ["-m", "infill_lsp"], python: options.python };
  const hooks: LauncherHooks = {
    plan: () => Promise.resolve(command),
    create: () => {
      const client = new FakeClient(clients.length + 1, options.failFirst === true && clients.length === 0, events);
      clients.push(client);
      return client as never;
    },
    failed: (message) => failures.push(message),
    log: (message) => events.push(`log ${message}`),
  };
  return { launcher: new Launcher(hooks), events, clients, failures };
}

test("restarts run one at a time; a burst runs only the last of those still waiting", async () => {
  const { launcher, events, clients } = harness();
  await Promise.all([launcher.restart(), launcher.restart(), launcher.restart()]);
  assert.deepEqual(events, ["start 1"], "three at once: one server start");
  const first = launcher.restart();
  await new Promise((resolve) => setTimeout(resolve, 5)); // client 2 is starting now
  await Promise.all([first, launcher.restart(), launcher.restart(), launcher.restart()]);
  assert.deepEqual(events, ["start 1", "stop 1", "start 2", "stop 2", "start 3"], "no overlap; the waiting burst ran once");
  assert.equal(clients.filter((c) => c.state === State.Running).length, 1, "one server at the end");
  assert.equal(launcher.running, clients[2] as never);
});

test("a client whose start failed is dropped, not disposed; the next restart starts a fresh one", async () => {
  const { launcher, clients } = harness({ failFirst: true });
  await launcher.restart();
  assert.equal(launcher.running, undefined);
  await launcher.restart();
  assert.equal(clients[0]!.disposed, 0, "the never-started client is not disposed");
  assert.equal(clients[1]!.state, State.Running);
  await launcher.stop();
  assert.equal(clients[1]!.state, State.Stopped);
  await launcher.stop(); // twice, and with nothing running: never throws
});

test("a Python without infill_lsp stops at the preflight: one message, no client", async () => {
  const { launcher, clients, failures } = harness({ python: "/nonexistent/bin/python3" });
  await launcher.restart();
  assert.equal(clients.length, 0);
  assert.equal(failures.length, 1);
  assert.match(failures[0]!, /set infill\.pythonPath/);
});
