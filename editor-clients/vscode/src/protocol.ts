/**
 * The infill-lsp wire contract as the extension uses it: custom method names, the status object,
 * and the argument of the server commands. Pure: no `vscode` import.
 */

export const STATUS_METHOD = "infill/status";

export type ServerState = "loading" | "ready" | "error";

export interface ServerStatus {
  state: ServerState;
  model: string;
  message: string;
}

/** Server commands (workspace/executeCommand), keyed by what the user asks for. */
export const SERVER_COMMANDS = {
  rewrite: "infill.rewrite",
  revise: "infill.revise",
  fillHoles: "infill.fillHoles",
} as const;

export type ServerCommandName = keyof typeof SERVER_COMMANDS;

export interface WirePosition {
  line: number;
  character: number;
}

export interface WireRange {
  start: WirePosition;
  end: WirePosition;
}

export interface CommandArgument {
  uri: string;
  range?: WireRange;
  apply: boolean;
}

/** The single object argument of infill.rewrite / infill.revise / infill.fillHoles. */
export function commandArgument(uri: string, range: WireRange | undefined, apply: boolean): CommandArgument {
  return range === undefined ? { uri, apply } : { uri, range, apply };
}

/** True when `value` looks like a ServerStatus (the server is another program: check). */
export function isServerStatus(value: unknown): value is ServerStatus {
  if (typeof value !== "object" || value === null) {
    return false;
  }
  const v = value as Record<string, unknown>;
  return (v.state === "loading" || v.state === "ready" || v.state === "error") && typeof v.model === "string";
}
