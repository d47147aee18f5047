"""The newcomer's demo: what the language server writes in examples/invoices.py, beside what a
person wrote there.

examples/invoices.py was written for this demo, so no model trained on the Python standard library
or on PyPI sources has seen it. The four places below were chosen, and their text fixed, before
the model ever ran on them; they stay as they are whatever it writes, so the demo shows the model
as it is today and a better model shows up here by itself. Each place is taken out of (or, for
the revise, broken in) a copy of the file, the real server (`python -m infill_lsp`, the embedded
model, default settings) is asked over LSP exactly as an editor asks, and its answer is printed
under the person's text. Then one rewrite is shown step by step, as `infill-lsp fill
--show-steps` prints it (masked tokens are `░`).

Run: .venv/bin/python scripts/demo.py  (bash scripts/demo.sh sets up .venv first)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "invoices.py"
TIMEOUT_S = 120.0
STEPS_SHOWN = 4  # canvases printed in the step-by-step view, the last one included


@dataclass(frozen=True)
class Place:
    """One place of the example: the person's text, and what the editor gives the server."""

    title: str
    kind: str  # "line", "block", "rewrite" or "revise"
    truth: str  # what the person wrote there (whole lines, except for "line")
    typed: str = ""  # "line": what the person has typed of it so far
    slip: str = ""  # "revise": the person's lines with one slip in them


PLACES = [
    Place(
        "1. A line at the cursor (ghost text while typing)",
        "line",
        truth="    return (today - invoice.due).days\n",
        typed="    return ",
    ),
    Place(
        "2. A block: the body of a loop (ghost text on the empty line under `for ...:`)",
        "block",
        truth="        if not invoice.paid:\n            owed[invoice.customer] += invoice.cents\n",
    ),
    Place(
        "3. Rewrite a selection (:InfillRewrite, `infill.rewrite`): the body of read_invoices",
        "rewrite",
        truth='    with open(path, newline="", encoding="utf-8") as handle:\n'
        "        return [parse_row(row) for row in csv.DictReader(handle)]\n",
    ),
    Place(
        "4. Revise a selection (:InfillRevise, `infill.revise`): a line with a slip in it",
        "revise",
        truth="    for customer, cents in owed_by_customer(invoices).items():\n",
        slip="    for customer, cents in owed_by_customer(invoices).keys():\n",
    ),
]


class Server:
    """The language server over stdio, as an editor drives it (a minimal LSP client)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infill_lsp", "--log-level", "ERROR"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.next_id = 0
        self.ready = False
        self.messages: list[str] = []  # window/showMessage texts: what the editor would pop up

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        stdin.flush()

    def receive(self) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        length = read_header(stdout)
        message: dict[str, Any] = json.loads(stdout.read(length))
        if message.get("method") == "infill/status":
            state = message.get("params", {}).get("state")
            self.ready = self.ready or state == "ready"
            if state == "error":
                raise SystemExit(f"demo: the server could not load the model: {message['params']}")
        if message.get("method") == "window/showMessage":
            self.messages.append(message["params"]["message"])
        if "method" in message and "id" in message:  # the server asks: answer as an editor would
            items = message.get("params", {}).get("items", [])
            result = [{}] * len(items) if message["method"] == "workspace/configuration" else None
            self.send({"id": message["id"], "result": result})
        return message

    def request(self, method: str, params: dict[str, Any]) -> Any:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        while True:
            message = self.receive()
            if message.get("id") == self.next_id and "method" not in message:
                if "error" in message:
                    raise SystemExit(f"demo: {method} failed: {message['error']}")
                return message.get("result")

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def start(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "initialize",
            {"processId": None, "rootUri": None, "capabilities": {}, "initializationOptions": {}},
        )
        self.notify("initialized", {})
        deadline = time.monotonic() + TIMEOUT_S
        while not self.ready:
            if time.monotonic() > deadline:
                raise SystemExit("demo: the model did not load in time")
            status = self.request("infill/status", {})
            self.ready = isinstance(status, dict) and status.get("state") == "ready"
            if not self.ready:
                time.sleep(0.2)
        return result

    def stop(self) -> None:
        try:
            self.request("shutdown", {})
            self.notify("exit", {})
            self.process.wait(timeout=10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


def read_header(stream: BinaryIO) -> int:
    length = -1
    while True:
        line = stream.readline()
        if not line:
            raise SystemExit("demo: the server stopped")
        if line in (b"\r\n", b"\n"):
            return length
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)


def position(text: str, offset: int) -> dict[str, int]:
    """The LSP position of a str offset (the example is ASCII, so UTF-16 units are characters)."""
    line = text.count("\n", 0, offset)
    return {"line": line, "character": offset - (text.rfind("\n", 0, offset) + 1)}


def offset(text: str, where: dict[str, int]) -> int:
    lines = text.split("\n")
    return sum(len(line) + 1 for line in lines[: where["line"]]) + where["character"]


def apply_edit(text: str, edit: dict[str, Any] | None) -> str:
    """The text after a WorkspaceEdit (changes or documentChanges) on its one document."""
    if not edit:
        return text
    edits = [e for changes in (edit.get("changes") or {}).values() for e in changes]
    for change in edit.get("documentChanges") or []:
        edits += change.get("edits", [])
    spans = [(offset(text, e["range"]["start"]), offset(text, e["range"]["end"]), e) for e in edits]
    for start, end, e in sorted(spans, key=lambda span: span[0], reverse=True):
        text = text[:start] + e["newText"] + text[end:]
    return text


def ask(server: Server, place: Place, original: str, number: int) -> tuple[str, str, str]:
    """Ask the server at this place of an editor's copy of the file.

    Returns (what the editor holds there, what it holds after the server's answer is taken,
    the server's message when it changed nothing)."""
    start = original.index(place.truth)
    end = start + len(place.truth)
    prefix, suffix = original[:start], original[end:]
    uri = f"file:///demo/{number}/invoices.py"
    if place.kind == "line":
        text = prefix + place.typed + "\n" + suffix
        cursor = len(prefix + place.typed)
    elif place.kind == "block":
        indent = place.truth[: len(place.truth) - len(place.truth.lstrip())]
        text = prefix + indent + "\n" + suffix
        cursor = len(prefix + indent)
    elif place.kind == "revise":
        text = prefix + place.slip + suffix
    else:
        text = original
    server.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
    )
    try:
        if place.kind in ("line", "block"):
            result = server.request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": uri},
                    "position": position(text, cursor),
                    "context": {"triggerKind": 2},  # automatic: what appears while typing
                },
            )
            items = result.get("items", []) if isinstance(result, dict) else result or []
            if not items:
                return (place.typed, text[start : len(text) - len(suffix)], "no ghost text")
            item = items[0]  # what the editor shows; <Tab> puts it over its range
            here = position(text, cursor)
            taken = {"range": item.get("range") or {"start": here, "end": here}}
            after = apply_edit(text, {"changes": {uri: [{**taken, "newText": item["insertText"]}]}})
            return (place.typed, after[start : len(after) - len(suffix)], "")
        region_end = start + len(place.slip or place.truth)
        command = "infill.revise" if place.kind == "revise" else "infill.rewrite"
        selection = {"start": position(text, start), "end": position(text, region_end)}
        server.messages.clear()
        edit = server.request(
            "workspace/executeCommand",
            {"command": command, "arguments": [{"uri": uri, "range": selection, "apply": False}]},
        )
        after = apply_edit(text, edit)
        note = "" if after != text else "; ".join(server.messages) or "nothing changed"
        return (place.slip or place.truth, after[start : len(after) - len(suffix)], note)
    finally:
        server.notify("textDocument/didClose", {"textDocument": {"uri": uri}})


def show(label: str, text: str) -> None:
    lines = text.rstrip("\n").split("\n") if text.strip() else ["(nothing)"]
    for i, line in enumerate(lines):
        print(f"  {label if i == 0 else '':<14}| {line}")


def step_by_step(place: Place, original: str) -> None:
    """A rewrite of the place's lines by `infill-lsp fill --show-steps`, a few canvases of it."""
    start = original.index(place.truth)
    first = original.count("\n", 0, start) + 1
    last = first + place.truth.count("\n")
    command = [sys.executable, "-m", "infill_lsp", "fill", str(EXAMPLE)]
    command += ["--range", f"{first}:1-{last}:1", "--show-steps"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        print(f"  (infill-lsp fill failed: {done.stderr.strip()})")
        return
    steps = [s for s in done.stderr.split("--- step ") if s.strip()]
    chosen = sorted({round(i * (len(steps) - 1) / (STEPS_SHOWN - 1)) for i in range(STEPS_SHOWN)})
    for i in chosen:
        head, _, canvas = steps[i].partition("\n")
        show(f"step {head}", canvas)


def main() -> int:
    original = EXAMPLE.read_text(encoding="utf-8")
    print(f"{EXAMPLE.relative_to(ROOT)}: a file written for this demo, never seen in training.")
    print("Each place was chosen before the model ran and is kept whatever it writes.\n")
    server = Server()
    try:
        info = server.start().get("serverInfo") or {}
        status = server.request("infill/status", {})
        model = " ".join(str(status.get(k, "")) for k in ("name", "version")).strip()
        name = " ".join(str(info.get(k, "")) for k in ("name", "version")).strip()
        print(f"server: {name or 'infill-lsp'}; model: {model or status.get('model')}\n")
        exact = 0
        for number, place in enumerate(PLACES, 1):
            given, written, note = ask(server, place, original, number)
            same = written == place.truth and not note  # an unchanged region is no answer
            exact += same
            print(place.title)
            if place.kind == "line":
                show("typed", given)
            elif place.kind == "revise":
                show("selected", given)
            show("person wrote", place.truth)
            show("model wrote", "" if note else written)
            verdict = "the same" if same else "differs"
            if note:
                verdict = f"nothing written: {note}"
            print(f"  {'':<14}  ({verdict})\n")
    finally:
        server.stop()
    print(f"{exact} of {len(PLACES)} the same as the person's text.\n")
    print(
        "How a span is written, step by step: place 3 by `infill-lsp fill --range ... "
        "--show-steps` (one candidate, ░ = still masked):"
    )
    step_by_step(PLACES[2], original)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
