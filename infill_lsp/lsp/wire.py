"""The wire: our method and command names, the status message, and pygls' protocol made strict.

Everything a client sees of the server's JSON-RPC lives here (the VS Code extension's
`protocol.ts` mirrors these names): the `infill/status` method and its states, the three
commands, the stdio frame reader and `InfillProtocol`, which fills pygls' gaps: -32002 before
`initialize`, -32600 after `shutdown`, an answer (-32602) to requests whose params cannot be read,
-32700 to a frame that is not JSON. `InfillProtocol` is the one place that touches pygls' private
attributes. This module knows nothing about documents or the model.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, TypeVar

import attrs
import cattrs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.io_ import StdinAsyncReader, StdoutWriter
from pygls.protocol import LanguageServerProtocol, lsp_method

log = logging.getLogger(__name__)

T = TypeVar("T")

STATUS = "infill/status"  # request (the status now) and notification (the status changed)
LOADING, READY, ERROR = "loading", "ready", "error"
REWRITE, REVISE, FILL_HOLES = "infill.rewrite", "infill.revise", "infill.fillHoles"
COMMANDS = (REWRITE, REVISE, FILL_HOLES)


@dataclass(frozen=True)
class Status:
    """What the server tells clients about its model (`infill/status`)."""

    state: str  # LOADING, READY or ERROR
    model: str  # the model directory (or what is being loaded)
    message: str
    name: str = ""  # the model's name and version, once one is loaded
    version: str = ""

    def to_wire(self) -> dict[str, str]:
        return {
            "state": self.state,
            "model": self.model,
            "message": self.message,
            "name": self.name,
            "version": self.version,
        }


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


def cancelled_error(message: str = "cancelled") -> JsonRpcException:
    """The -32800 error for a request stopped by the client."""
    return JsonRpcRequestCancelled(message)


@attrs.define
class _Answered:
    """A message the protocol already answered while reading it; handle_message skips it."""

    jsonrpc: str = "answered"


class InfillProtocol(LanguageServerProtocol):
    """pygls' protocol plus the JSON-RPC/LSP rules it leaves to the server."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        # the workDoneToken of the executeCommand request being handled (pygls spreads
        # command arguments, so the handler never sees the params)
        self.command_token: contextvars.ContextVar[types.ProgressToken | None] = (
            contextvars.ContextVar("command_token", default=None)
        )
        self.running: dict[Any, Cancellable] = {}  # request id -> the task running its job

    # --- what the rest of the server may ask of pygls ----------------------------------

    @property
    def shut_down(self) -> bool:
        """Whether the client sent `shutdown`."""
        return bool(self._shutdown)

    def read_as(self, value: Any, kind: type[T]) -> T:
        """A JSON value read as an lsprotocol type (exceptions as cattrs raises them)."""
        result: T = self._converter.structure(value, kind)
        return result

    def to_json(self, value: Any) -> Any:
        """An lsprotocol value as JSON."""
        return self._converter.unstructure(value)

    def refuse_unreadable(self, error: Exception) -> None:
        """Answer a frame whose body is not JSON (or not UTF-8): -32700 with a null id."""
        self._refuse(None, types.ErrorCodes.ParseError, f"parse error: {error}")

    def serve_stdio(self, stdin: BinaryIO, stdout: BinaryIO) -> None:
        """Serve JSON-RPC frames from `stdin` to `stdout` until the client exits or leaves."""
        server = self._server
        server._stop_event = threading.Event()
        self.set_writer(StdoutWriter(stdout))
        reader = StdinAsyncReader(stdin, server.thread_pool)
        try:
            asyncio.run(read_frames(server._stop_event, reader, self, server._report_server_error))
        except BrokenPipeError:
            log.error("the client closed the connection")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            server.shutdown()

    # --- pygls' gaps ------------------------------------------------------------------

    def structure_message(self, data: dict[str, Any]) -> Any:
        """Read a message, answering at once the requests pygls would mishandle.

        Before `initialize`: -32002; after `shutdown`: -32600; params that do not fit the
        method: -32602 (pygls would log and never answer). A missing "params" is allowed.
        """
        if not isinstance(data, dict) or "jsonrpc" not in data or "method" not in data:
            return super().structure_message(data)
        method = data["method"]
        if "id" in data:
            if self._shutdown:
                return self._refuse(
                    data["id"], types.ErrorCodes.InvalidRequest, "server is shut down"
                )
            if method == types.INITIALIZE:
                self.initialize_received = True
            elif not self.initialize_received:
                return self._refuse(
                    data["id"], types.ErrorCodes.ServerNotInitialized, "not initialized"
                )
        elif not self.initialize_received and method != types.EXIT:
            log.warning("dropping notification %s sent before initialize", method)
            return _Answered()
        data.setdefault("params", None)
        try:
            return super().structure_message(data)
        except JsonRpcException as error:
            if "id" not in data:
                raise
            reason = str(error)
            cause = error.__cause__
            if isinstance(cause, cattrs.ClassValidationError):
                reason = "; ".join(cattrs.transform_error(cause)[:3])
            message = f"invalid params for {method}: {reason or 'cannot be read'}"
            log.warning("%s", message)
            return self._refuse(data["id"], JsonRpcInvalidParams.CODE, message)

    def handle_message(self, message: Any) -> None:
        """Dispatch a message unless it was already answered while being read.

        JSON that is not a JSON-RPC message object (an array, a number, an object without
        "jsonrpc") gets -32600 with a null id, as JSON-RPC 2.0 asks.
        """
        if isinstance(message, _Answered):
            return
        if not hasattr(message, "jsonrpc"):
            self._refuse(None, types.ErrorCodes.InvalidRequest, "not a JSON-RPC message object")
            return
        super().handle_message(message)

    def _refuse(self, msg_id: Any, code: int, reason: str) -> _Answered:
        if msg_id is None:  # pygls would drop the null id that JSON-RPC requires here
            error = {"code": code, "message": reason}
            self._send_data({"jsonrpc": "2.0", "id": None, "error": error})
        else:
            self._send_response(msg_id, error=types.ResponseError(code=code, message=reason))
        return _Answered()

    def _execute_handler(
        self,
        msg_id: Any,
        handler: Any,
        callback: Any,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """pygls' dispatch, minus its leak: it files a future for every notification and every
        handler a built-in one hands on to (executeCommand, didChangeConfiguration...) and
        forgets only those of requests. Each is dropped here once done."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        future = self._request_futures.get(msg_id)
        if future is not None:
            future.add_done_callback(lambda done: self._forget(msg_id, done))

    def _forget(self, msg_id: Any, future: Any) -> None:
        if self._request_futures.get(msg_id) is future:
            del self._request_futures[msg_id]

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """Stop every request still running, then refuse all but `exit`.

        pygls cancels while iterating `_request_futures`, which a cancelled request's callback
        changes (-32603 "dictionary changed size during iteration"), and then never sets the
        shut-down flag: the server answered requests after `shutdown` and exited with code 1.
        """
        if (handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield handler, args, None
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()  # a request's own answer is -32800
        for task in list(self.running.values()):
            task.cancel()
        self.running.clear()
        self._shutdown = True

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """Cancel the request's future (pygls) and the denoise running for it (ours)."""
        super()._handle_cancel_notification(msg_id)
        task = self.running.pop(msg_id, None)
        if task is not None:
            task.cancel()

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(
        self, params: types.ExecuteCommandParams
    ) -> Generator[Any, Any, Any]:
        """Run a command, remembering its workDoneToken for the handler."""
        self.command_token.set(params.work_done_token)
        return (yield from super().lsp_workspace__execute_command(params))

    # Documents live in the server's own store (see `documents`), not in pygls' workspace.
    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams) -> Any:
        """Hand didOpen to the server's handler only."""
        yield self.fm.features[types.TEXT_DOCUMENT_DID_OPEN], (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams) -> Any:
        """Hand didChange to the server's handler only."""
        yield self.fm.features[types.TEXT_DOCUMENT_DID_CHANGE], (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        """Hand didClose to the server's handler only."""
        yield self.fm.features[types.TEXT_DOCUMENT_DID_CLOSE], (params,), None


# A header line, found at the end of a line so that a header glued to the unterminated body of a
# malformed frame still counts: the reader finds its way back to the next frame.
CONTENT_LENGTH = re.compile(rb"Content-Length: *(\d+)\r?\n$", re.IGNORECASE)


async def read_frames(
    stop: threading.Event, reader: Any, protocol: InfillProtocol, on_error: Callable[..., Any]
) -> None:
    """pygls' stdio reading loop, made to recover from frames without a valid Content-Length."""
    length = 0
    while not stop.is_set():
        line = await reader.readline()
        if not line:
            break
        header = CONTENT_LENGTH.search(line)
        if header:
            length = int(header.group(1))
            continue
        if line.strip() or not length:  # another header, or a blank line with nothing to read
            continue
        body = await reader.readexactly(length)
        length = 0
        if not body:
            break
        try:
            protocol.handle_message(json.loads(body, object_hook=protocol.structure_message))
        except Exception as error:
            on_error(error, JsonRpcException)
