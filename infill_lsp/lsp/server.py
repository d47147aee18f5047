"""The language server's state: settings, documents, the model and its status.

`InfillServer` holds everything a request needs; the handlers (in `handlers`) stay thin and the
features live in `completion`, `actions` and `hints`. The model loads in a background thread
after `initialize`; model calls run one at a time on a single worker thread, one denoising step
per await, so the event loop keeps answering and `$/cancelRequest` lands between steps. The wire
rules live in `wire`. Nothing here writes to stdout.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from lsprotocol import types
from pygls.exceptions import FeatureRequestError
from pygls.lsp.server import LanguageServer

from infill_lsp import __version__
from infill_lsp.errors import InfillError, Superseded
from infill_lsp.jobs import Steps, advance
from infill_lsp.lsp.documents import Documents
from infill_lsp.lsp.positions import UTF16
from infill_lsp.lsp.wire import ERROR, LOADING, READY, STATUS, InfillProtocol, Status
from infill_lsp.options import SECTION, Settings, parse_settings

if TYPE_CHECKING:
    from infill_lsp.engine import DecodeOptions, Engine, Progress

log = logging.getLogger(__name__)

T = TypeVar("T")
PROGRESS_CREATE_TIMEOUT = 5.0


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
        self.generations: dict[str, int] = {}  # uri -> number of the latest completion request
        self.hint_tasks: dict[str, asyncio.Task[None]] = {}
        self.hinted: set[str] = set()  # URIs with hint diagnostics on screen
        self._shown: set[str] = set()
        self._load_number = 0
        self._loaded_key: tuple[str | None, str, str, str] | None = None
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

    def show(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """Show `message` to the user and log it: the outcome of something the user asked for,
        said again each time it happens."""
        log.log(logging.WARNING if kind <= types.MessageType.Warning else logging.INFO, message)
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

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
            self.protocol.refuse_unreadable(error)
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

    def _model_key(self) -> tuple[str | None, str, str, str]:
        settings = self.settings
        return settings.model_path, settings.device, settings.model_family, settings.dtype

    def set_status(self, state: str, model: str, message: str) -> None:
        """Change the status and tell the client (`infill/status` notification)."""
        loaded = self.engine.model if self.engine is not None else None
        name, version = (loaded.name, loaded.version) if loaded is not None else ("", "")
        self.status = Status(state, model, message, name, version)
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
        key = self._model_key()
        path = key[0]
        shown = path or "default model"
        self.set_status(LOADING, shown, f"loading {shown}")
        token = await self._create_progress(f"infill-load-{number}")
        if token is not None:
            self.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title="infill-lsp", message=f"loading {shown}")
            )
        loaded = False
        try:
            engine = await asyncio.to_thread(_build_engine, *key)
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
        self.show(f"infill-lsp: {note}", types.MessageType.Error)  # each load is asked for

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
        job: Steps[Progress, T],
        on_step: Callable[[Progress], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> T:
        """Run an engine job one step per await on the model worker.

        Cancelling the awaiting task (e.g. `$/cancelRequest`) stops it between steps, and a step
        still queued for the worker never runs. `stop` returning True raises Superseded; it is
        asked before every step, the first included, and again when the worker takes the step
        off its queue, so a superseded request costs the model nothing more. The job is closed
        on the worker when abandoned.
        """
        loop = asyncio.get_running_loop()
        msg_id = self.protocol.msg_id
        task = asyncio.current_task()
        if msg_id is not None and task is not None:
            self.protocol.running[msg_id] = task
        wanted = stop or _never
        finished, steps = False, 0
        try:
            while True:
                if wanted():
                    raise Superseded()
                step = await loop.run_in_executor(self.model_worker, _advance_unless, job, wanted)
                if step is None:
                    raise Superseded()
                steps += 1
                finished = step[0]
                if step[0]:
                    return step[1]
                if on_step is not None:
                    on_step(step[1])
        finally:
            if msg_id is not None:
                self.protocol.running.pop(msg_id, None)
            if not finished:
                log.info("job stopped after %d steps", steps)
                self.model_worker.submit(job.close)

    async def run_model(self, function: Callable[..., T], *args: Any) -> T:
        """Run one plain model call (e.g. Engine.score) on the model worker."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.model_worker, function, *args)

    def shutdown(self) -> None:
        """Stop the worker threads with the server."""
        self.model_worker.shutdown(wait=False, cancel_futures=True)
        super().shutdown()


def _never() -> bool:
    return False


def _advance_unless(
    job: Steps[Progress, T], stopped: Callable[[], bool]
) -> tuple[Literal[False], Progress] | tuple[Literal[True], T] | None:
    """On the model worker: one step of `job`, or None when it was stopped while queued."""
    return None if stopped() else advance(job)


def _build_engine(path: str | None, device: str, family: str, dtype: str) -> Engine:
    """Load a model directory and wrap it in an Engine (runs on a thread)."""
    from infill_lsp.engine import Engine
    from infill_lsp.model import load_model

    return Engine(load_model(path, device, family, dtype))
