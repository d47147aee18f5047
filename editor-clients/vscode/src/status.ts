/**
 * What the status-bar item shows for a server state: text (with a codicon), tooltip and whether
 * it is an error. Pure: the `vscode` status-bar item itself lives in statusBar.ts.
 */

import type { ServerStatus } from "./protocol";

export type ClientState = "starting" | "stopped" | ServerStatus["state"];

export interface StatusView {
  text: string;
  tooltip: string;
  error: boolean;
}

/** The view of `state` (the server's last status) with `busy` requests running. */
export function statusView(state: ClientState, busy: number, status?: ServerStatus): StatusView {
  const model = status?.model ? ` (${status.model})` : "";
  const message = status?.message ? `: ${status.message}` : "";
  if (state === "error") {
    return { text: "$(error) infill", tooltip: `infill: error${model}${message}`, error: true };
  }
  if (state === "stopped") {
    return { text: "$(circle-slash) infill", tooltip: "infill: server stopped", error: false };
  }
  if (state === "starting" || state === "loading") {
    return { text: "$(loading~spin) infill", tooltip: `infill: loading model${model}${message}`, error: false };
  }
  if (busy > 0) {
    return { text: "$(sync~spin) infill", tooltip: `infill: working${model}`, error: false };
  }
  return { text: "$(check) infill", tooltip: `infill: ready${model}`, error: false };
}
