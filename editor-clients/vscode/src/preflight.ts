/**
 * The check before the server starts: does this Python exist, and does it have infill_lsp?
 * A missing interpreter or package becomes one message that says what to set, instead of a
 * server that dies on start and a client that restarts it. Pure Node: no `vscode` import.
 */

import { spawn } from "node:child_process";

const INSTALL = "pip install /path/to/infill-lsp";
const IMPORT_TIMEOUT_MS = 60_000;

/** Undefined when `<python> -c "import infill_lsp"` works; else the message for the user. */
export function checkPython(python: string, timeoutMs: number = IMPORT_TIMEOUT_MS): Promise<string | undefined> {
  return new Promise((resolve) => {
    let stderr = "";
    let done = false;
    const finish = (message: string | undefined): void => {
      if (!done) {
        done = true;
        clearTimeout(timer);
        resolve(message);
      }
    };
    const child = spawn(python, ["-c", "import infill_lsp"], { stdio: ["ignore", "ignore", "pipe"] });
    const timer = setTimeout(() => {
      child.kill();
      finish(undefined); // slow is not broken: let the server start and speak for itself
    }, timeoutMs);
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      const why = error.code === "ENOENT" ? "not found" : error.code === "EACCES" ? "not executable" : error.message;
      finish(`infill: Python ${python} ${why}: set infill.pythonPath to the Python that has infill-lsp (${INSTALL}).`);
    });
    child.on("close", (code) => {
      if (code === 0) {
        finish(undefined);
      } else if (/No module named '?infill_lsp'?/.test(stderr)) {
        finish(`infill: No module named infill_lsp in ${python}: set infill.pythonPath to the Python that has infill-lsp, or ${INSTALL} into this one.`);
      } else {
        const last = stderr.trim().split("\n").pop() ?? `exit code ${String(code)}`;
        finish(`infill: ${python} cannot import infill_lsp (${last}): set infill.pythonPath to a Python where it works.`);
      }
    });
  });
}
