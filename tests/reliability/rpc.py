"""A raw JSON-RPC peer for the real server process: bytes in, every frame out checked.

The reliability tests need what a typed LSP client hides: malformed frames sent on purpose, and a
strict reading of every byte the server writes on stdout (any byte that is not part of a valid
JSON-RPC frame is recorded as a violation). It answers the server's own requests the way a plain
editor would, and knows nothing about infill-lsp beyond the `infill/status` notification.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

SERVER = [sys.executable, "-m", "infill_lsp"]
REPO = Path(__file__).resolve().parents[2]


class RpcTimeout(AssertionError):
    """A request got no answer within its time limit."""


def frame(body: bytes) -> bytes:
    """One base-protocol frame around `body`."""
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def encode(message: Any) -> bytes:
    """A frame holding `message` as compact JSON (lone surrogates escaped, as JSON allows)."""
    return frame(json.dumps(message, separators=(",", ":")).encode("ascii"))


def check_message(message: Any) -> str | None:
    """Why `message` is not a valid JSON-RPC 2.0 message from a server, or None when it is."""
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return f"not a JSON-RPC 2.0 object: {message!r:.200}"
    if "method" in message:
        if not isinstance(message["method"], str):
            return f"method is not a string: {message!r:.200}"
        return None
    if "id" not in message:
        return f"neither request, notification nor response: {message!r:.200}"
    if ("result" in message) == ("error" in message):
        return f"a response needs exactly one of result and error: {message!r:.200}"
    if "error" in message:
        error = message["error"]
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            return f"malformed error object: {message!r:.200}"
        if not isinstance(error.get("message"), str):
            return f"error without a message: {message!r:.200}"
    return None


class RpcPeer:
    """The client end of one server process over stdio."""

    def __init__(
        self,
        argv: list[str] | None = None,
        *,
        env: dict[str, str] | None = None,
        stderr: IO[bytes] | int | None = subprocess.DEVNULL,
        settings: dict[str, Any] | None = None,
        apply_edits: bool = False,
    ) -> None:
        self.process = subprocess.Popen(
            argv or SERVER,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO,
            env={**os.environ, **(env or {})},
        )
        self.settings = settings or {}  # answered to workspace/configuration
        self.apply_edits = apply_edits
        self.violations: list[str] = []  # stdout bytes that were not a valid frame
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self.responses: dict[Any, dict[str, Any]] = {}
        self.null_answers: list[dict[str, Any]] = []  # errors with id null (unreadable messages)
        self.frames = 0
        self._ids = itertools.count(1)
        self._lock = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    # --- writing ----------------------------------------------------------------------

    def send_bytes(self, data: bytes) -> None:
        """Write raw bytes to the server's stdin."""
        assert self.process.stdin is not None
        with self._write_lock:
            self.process.stdin.write(data)
            self.process.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_bytes(encode(message))

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def request_async(self, method: str, params: Any = None, msg_id: Any = None) -> Any:
        """Send a request; return its id without waiting."""
        msg_id = next(self._ids) if msg_id is None else msg_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return msg_id

    def wait(self, msg_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        """The response to `msg_id` (result or error); RpcTimeout after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while msg_id not in self.responses:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    alive = "running" if self.process.poll() is None else "exited"
                    raise RpcTimeout(f"no answer to request {msg_id!r} in {timeout:.0f}s ({alive})")
                self._lock.wait(min(left, 0.5))
            return self.responses.pop(msg_id)

    def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        """Send a request and wait for its whole response message."""
        return self.wait(self.request_async(method, params), timeout)

    def result(self, method: str, params: Any = None, timeout: float = 30.0) -> Any:
        """Send a request; its result, or AssertionError carrying the error it got."""
        response = self.request(method, params, timeout)
        assert "error" not in response, f"{method} failed: {response['error']}"
        return response["result"]

    # --- reading ----------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Wait until `predicate()` holds (checked whenever a frame arrives)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.5))
        return True

    def _read_loop(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            while True:
                message = self._read_frame(stream)
                if message is None:
                    break
                self._dispatch(message)
        finally:
            with self._lock:
                self._closed = True
                self._lock.notify_all()

    def _read_frame(self, stream: IO[bytes]) -> Any:
        length = None
        while True:
            line = stream.readline()
            if not line:
                return None
            if line == b"\r\n":
                break
            name, sep, value = line.partition(b":")
            if not sep or not line.endswith(b"\r\n"):
                self._violation(f"not a header line: {line[:200]!r}")
                continue
            if name.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    self._violation(f"bad Content-Length: {line[:200]!r}")
            elif name.strip().lower() != b"content-type":
                self._violation(f"unknown header: {line[:200]!r}")
        if length is None:
            self._violation("a frame without Content-Length")
            return {}
        body = stream.read(length)
        if len(body) < length:
            self._violation("stdout closed in the middle of a frame")
            return None
        try:
            message = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            self._violation(f"frame body is not JSON ({error}): {body[:200]!r}")
            return {}
        problem = check_message(message)
        if problem:
            self._violation(problem)
        return message

    def _violation(self, what: str) -> None:
        with self._lock:
            self.violations.append(what)

    def _dispatch(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        with self._lock:
            self.frames += 1
        if "method" in message and isinstance(message.get("id"), str | int):
            self._answer_server_request(message)
            return
        with self._lock:
            if "method" in message:
                self.notifications.append(message)
            elif "id" not in message:
                pass  # already recorded as a violation by _read_frame
            elif message["id"] is None:  # an answer to a message that had no readable id
                self.null_answers.append(message)
            elif not isinstance(message["id"], str | int):
                self.violations.append(f"response with an invalid id: {message!r:.200}")
            else:
                if message["id"] in self.responses:
                    self.violations.append(f"second answer to request {message['id']!r}")
                self.responses[message["id"]] = message
            self._lock.notify_all()

    def _answer_server_request(self, message: dict[str, Any]) -> None:
        """Answer the server's requests as a plain editor would."""
        method = message["method"]
        with self._lock:
            self.server_requests.append(message)
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        if method == "workspace/configuration":
            items = (message.get("params") or {}).get("items") or [{}]
            reply["result"] = [self.settings for _ in items]
        elif method == "workspace/applyEdit":
            applied = self.apply_edits
            reply["result"] = {"applied": applied}
            if not applied:
                reply["result"]["failureReason"] = "this test client applies no edits"
        elif method in (
            "window/workDoneProgress/create",
            "client/registerCapability",
            "client/unregisterCapability",
            "window/showMessageRequest",
        ):
            reply["result"] = None
        else:
            reply["error"] = {"code": -32601, "message": f"client has no {method}"}
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            self.send(reply)

    # --- sessions ---------------------------------------------------------------------

    def initialize(
        self,
        options: dict[str, Any] | None = None,
        capabilities: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """initialize + initialized; the server's InitializeResult."""
        params = {
            "processId": os.getpid(),
            "rootUri": None,
            "capabilities": capabilities if capabilities is not None else {},
            "initializationOptions": options or {},
        }
        result = self.result("initialize", params, timeout)
        self.notify("initialized", {})
        return result

    def statuses(self) -> list[dict[str, Any]]:
        with self._lock:
            return [n["params"] for n in self.notifications if n["method"] == "infill/status"]

    def wait_ready(self, timeout: float = 120.0, after: int = 0) -> dict[str, Any]:
        """The first `infill/status` past index `after` that is not "loading"."""

        def settled() -> bool:
            return any(s["state"] != "loading" for s in self.statuses()[after:])

        assert self.wait_for(settled, timeout), f"model still loading after {timeout}s"
        return next(s for s in self.statuses()[after:] if s["state"] != "loading")

    def open(self, uri: str, text: str, language: str = "plaintext", version: int = 1) -> None:
        document = {"uri": uri, "languageId": language, "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": document})

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self, timeout: float = 20.0) -> int:
        """shutdown + exit when still running; kill after `timeout`. The exit code."""
        if self.alive():
            try:
                self.request("shutdown", None, timeout)
                self.notify("exit")
            except (AssertionError, BrokenPipeError, OSError):
                pass
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        self._reader.join(5)
        return self.process.returncode

    def rss_kib(self) -> int:
        """Resident memory of the server process (Linux), in KiB."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0
