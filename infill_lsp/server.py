"""The language server: its state (settings, documents, model, status) and its process.

`InfillServer` holds everything a request needs; handlers (in `handlers`) stay thin and the
features live in `completion` and `actions`. The model loads in a background thread after
`initialize`; model calls run one at a time on a single worker thread, one denoising step per
await, so the event loop keeps answering and `$/cancelRequest` lands between steps.
`InfillProtocol` fills pygls' gaps: -32002 before `initialize`, -32600 after `shutdown`, and an
answer (-32602) to requests whose params cannot be read. Nothing here writes to stdout.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import cattrs
from lsprotocol import types
from pygls.exceptions import (
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInvalidParams,
    JsonRpcRequestCancelled,
)
from pygls.io_ import StdinAsyncReader, StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from infill_lsp import __version__
from infill_lsp.documents import Documents
from infill_lsp.errors import InfillError
from infill_lsp.options import SECTION, Settings, parse_settings
from infill_lsp.positions import UTF16

if TYPE_CHECKING:
    from infill_lsp.engine import DecodeOptions, Engine, Progress

log = logging.getLogger(__name__)

T = TypeVar("T")
STATUS = "infill/status"
LOADING, READY, ERROR = "loading", "ready", "error"
PROGRESS_CREATE_TIMEOUT = 5.0


@attrs.define
class _Answered:
    """A message the protocol already answered while reading it; handle_message skips it."""

    jsonrpc: str = "answered"


class Superseded(Exception):
    """A newer request for the same document made this one pointless."""


class InfillProtocol(LanguageServerProtocol):
    """pygls' protocol plus the JSON-RPC/LSP rules it leaves to the server."""

    _server: InfillServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initialize_received = False
        # the workDoneToken of the executeCommand request being handled (pygls spreads
        # command arguments, so the handler never sees the params)
        self.command_token: contextvars.ContextVar[types.ProgressToken | None] = (
            contextvars.ContextVar("command_token", default=None)
        )

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

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """Cancel the request's future (pygls) and the denoise running for it (ours)."""
        super()._handle_cancel_notification(msg_id)
        task = self._server.running.pop(msg_id, None)
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


@dataclass(frozen=True)
class Status:
    """What the server tells clients about its model (`infill/status`)."""

    state: str
    model: str
    message: str

    def to_wire(self) -> dict[str, str]:
        return {"state": self.state, "model": self.model, "message": self.message}


def _advance(job: Generator[Any, None, Any]) -> tuple[bool, Any]:
    """Run one step of a job: (False, progress) or (True, result).

    StopIteration must not escape into a Future, so the generator's return value is caught here.
    """
    try:
        return False, next(job)
    except StopIteration as stop:
        return True, stop.value


class InfillServer(LanguageServer):
    """The infill language server and everything it knows between requests."""

    protocol: InfillProtocol

    def __init__(self) -> None:
        super().__init__("infill-lsp", __version__, protocol_cls=InfillProtocol)
        self.settings = Settings()
        self.documents = Documents()
        self.engine: Engine | None = None
        self.base_options: DecodeOptions | None = None
        self.status = Status(LOADING, "", "waiting for initialize")
        self.model_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="infill-model")
        self.running: dict[Any, asyncio.Task[Any]] = {}  # request id -> task running a job
        self.generations: dict[str, int] = {}  # uri -> number of the latest completion request
        self.hint_tasks: dict[str, asyncio.Task[None]] = {}
        self._shown: set[str] = set()
        self._load_number = 0
        self._loaded_key: tuple[str | None, str] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # --- settings and messages ----------------------------------------------------------

    @property
    def encoding(self) -> str:
        """The negotiated position encoding ("utf-16" unless the client chose another)."""
        try:
            kind = self.workspace.position_encoding or UTF16
        except RuntimeError:
            return UTF16
        # lsprotocol's PositionEncodingKind is a str enum whose str() is its *name*.
        return str(getattr(kind, "value", kind))

    def apply_settings(self, raw: Any, origin: str) -> None:
        """Merge camelCase settings from the client; report problems once; reload if needed."""
        self.settings, problems = parse_settings(raw, self.settings)
        for problem in problems:
            self.show_once(f"infill-lsp: {problem}", types.MessageType.Warning)
        log.info("settings from %s applied", origin)
        if self.settings.threads or self.engine is not None:  # torch loads with the model
            from infill_lsp.model import use_threads

            use_threads(self.settings.threads)
        if self._loaded_key is not None and self._model_key() != self._loaded_key:
            self.start_loading()

    async def pull_settings(self) -> None:
        """Ask the client for the "infill" section when it supports workspace/configuration."""
        workspace = self.client_capabilities.workspace
        if workspace is None or not workspace.configuration:
            return
        params = types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(params), PROGRESS_CREATE_TIMEOUT
            )
        except Exception as error:  # includes TimeoutError
            log.warning("workspace/configuration failed: %s", error)
            return
        if result and isinstance(result[0], dict):
            self.apply_settings(result[0], "workspace/configuration")

    def show_once(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """Show `message` to the user the first time only; always log it."""
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, message)
        if message in self._shown:
            return
        self._shown.add(message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def report_server_error(self, error: Exception, source: Any) -> None:
        """Log errors; show one message per distinct out-of-band error, none for requests.

        A frame whose body is not JSON (or not UTF-8) is answered with -32700 and a null id.
        """
        if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
            log.warning("unreadable message: %s", error)
            self.protocol._refuse(None, types.ErrorCodes.ParseError, f"parse error: {error}")
        elif source is FeatureRequestError:  # the client got it as the request's error
            log.info("request failed: %s", error)
        else:
            log.error("%s: %s", getattr(source, "__name__", source), error)
            self.show_once(f"infill-lsp error: {error}", types.MessageType.Error)

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        """Run a coroutine in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- the model --------------------------------------------------------------------

    def _model_key(self) -> tuple[str | None, str]:
        return self.settings.model_path, self.settings.device

    def set_status(self, state: str, model: str, message: str) -> None:
        """Change the status and tell the client (`infill/status` notification)."""
        self.status = Status(state, model, message)
        log.info("status %s: %s %s", state, model, message)
        self.protocol.notify(STATUS, self.status.to_wire())

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def start_loading(self) -> None:
        """Load the model of the current settings in the background."""
        self._loaded_key = self._model_key()
        self._load_number += 1
        self.spawn(self._load(self._load_number))

    async def _load(self, number: int) -> None:
        path, device = self._model_key()
        shown = path or "default model"
        self.set_status(LOADING, shown, f"loading {shown}")
        token = await self._create_progress(f"infill-load-{number}")
        if token is not None:
            self.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title="infill-lsp", message=f"loading {shown}")
            )
        loaded = False
        try:
            engine = await asyncio.to_thread(_build_engine, path, device)
        except Exception as error:  # a broken model must never take the server down
            message = str(error) if isinstance(error, InfillError) else repr(error)
            if number == self._load_number:
                self._load_failed(shown, message)
        else:
            loaded = True
            if number == self._load_number:
                self.engine, self.base_options = engine, engine.options
                self.set_status(READY, str(engine.model.directory), "model loaded")
        if token is not None:
            done = "ready" if loaded else "failed"
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=done))

    def _load_failed(self, shown: str, message: str) -> None:
        if self.engine is not None:
            kept = str(self.engine.model.directory)
            note = f"could not load {shown}: {message}; still using {kept}"
            self.set_status(READY, kept, note)
        else:
            note = f"could not load {shown}: {message}"
            self.set_status(ERROR, shown, note)
        self.show_once(f"infill-lsp: {note}", types.MessageType.Error)

    async def _create_progress(self, token: str) -> str | None:
        """Create a server-initiated progress token if the client supports it."""
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        try:
            await asyncio.wait_for(
                self.work_done_progress.create_async(token), PROGRESS_CREATE_TIMEOUT
            )
        except Exception as error:  # includes TimeoutError
            log.warning("window/workDoneProgress/create failed: %s", error)
            return None
        return token

    def decode_options(self) -> DecodeOptions:
        """The engine's options with the user's explicit settings on top."""
        if self.base_options is None:
            raise InfillError("the model is not loaded")
        return replace(self.base_options, **self.settings.decode_overrides())

    async def run_job(
        self,
        job: Generator[Progress, None, T],
        on_step: Callable[[Progress], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> T:
        """Run an engine job one step per await on the model worker.

        Cancelling the awaiting task (e.g. `$/cancelRequest`) stops it between steps; `stop`
        returning True raises Superseded. The job is closed on the worker when abandoned.
        """
        loop = asyncio.get_running_loop()
        msg_id = self.protocol.msg_id
        task = asyncio.current_task()
        if msg_id is not None and task is not None:
            self.running[msg_id] = task
        finished = False
        try:
            while True:
                finished, value = await loop.run_in_executor(self.model_worker, _advance, job)
                if finished:
                    return value
                if on_step is not None:
                    on_step(value)
                if stop is not None and stop():
                    raise Superseded()
        finally:
            if msg_id is not None:
                self.running.pop(msg_id, None)
            if not finished:
                log.info("job stopped between steps")
                self.model_worker.submit(job.close)

    async def run_model(self, function: Callable[..., T], *args: Any) -> T:
        """Run one plain model call (e.g. Engine.score) on the model worker."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.model_worker, function, *args)

    def shutdown(self) -> None:
        """Stop the worker threads with the server."""
        self.model_worker.shutdown(wait=False, cancel_futures=True)
        super().shutdown()


def _build_engine(path: str | None, device: str) -> Engine:
    """Load a model directory and wrap it in an Engine (runs on a thread)."""
    from infill_lsp.engine import Engine
    from infill_lsp.model import load_model

    return Engine(load_model(path, device))


def cancelled_error(message: str = "cancelled") -> JsonRpcException:
    """The -32800 error for a request stopped by the client."""
    return JsonRpcRequestCancelled(message)


def create_server() -> InfillServer:
    """A fully wired server, ready to start on any transport."""
    from infill_lsp import handlers

    server = InfillServer()
    handlers.register(server)
    return server


def _configure_logging(log_file: str | None, log_level: str) -> None:
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        level = logging.INFO
    handler: logging.Handler = (
        logging.FileHandler(log_file, encoding="utf-8") if log_file else logging.StreamHandler()
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pygls logs whole messages (document text) at INFO/DEBUG: only when asked for debug
    quiet = logging.DEBUG if level <= logging.DEBUG else logging.WARNING
    logging.getLogger("pygls").setLevel(quiet)
    if level > logging.DEBUG:
        handler.addFilter(_without_values)  # a handler filter sees every pygls.* logger


def _without_values(record: logging.LogRecord) -> bool:
    """Keep a pygls record but not its arguments or traceback: they can quote document text."""
    if not record.name.startswith("pygls"):
        return True
    first = str(record.msg).split("\n", 1)[0].split(":", 1)[0]
    record.msg = f"{first} (details at --log-level debug)"
    record.args = None
    record.exc_info = None
    record.exc_text = None
    return True


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


def run_server(tcp: str | None, log_file: str | None, log_level: str) -> int:
    """Serve LSP over stdio (default) or TCP ("HOST:PORT") until the client exits.

    Returns the exit code LSP asks for: 0 after `shutdown`, 1 when the client left without it.
    """
    _configure_logging(log_file, log_level)
    server = create_server()
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not port.isdigit():
            raise InfillError(f"--tcp wants HOST:PORT, got {tcp!r}")
        log.info("infill-lsp %s serving on %s:%s", __version__, host or "127.0.0.1", port)
        server.start_tcp(host or "127.0.0.1", int(port))
        return 0 if server.protocol._shutdown else 1
    # stdout belongs to JSON-RPC: keep a private handle on it and point fd 1 at stderr, so that
    # a stray print() anywhere (a library, a C extension) cannot corrupt the stream.
    rpc_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    log.info("infill-lsp %s serving on stdio", __version__)
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(rpc_out))
    reader = StdinAsyncReader(sys.stdin.buffer, server.thread_pool)
    try:
        asyncio.run(
            read_frames(server._stop_event, reader, server.protocol, server._report_server_error)
        )
    except BrokenPipeError:
        log.error("the client closed the connection")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
    return 0 if server.protocol._shutdown else 1
