"""Thin LSP handlers: unpack params, call the feature, turn expected misses into empty results.

`create_server()` builds a server and `register(server)` wires every method it answers. The
features live in `completion`, `actions` and `hints`; state lives in `server.InfillServer`.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import (
    JsonRpcContentModified,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
)

from infill_lsp.errors import ContentModified, InfillError, InputError, ModelUnavailable
from infill_lsp.lsp import actions, completion, hints
from infill_lsp.lsp.server import InfillServer
from infill_lsp.lsp.wire import COMMANDS, STATUS

log = logging.getLogger(__name__)


def create_server() -> InfillServer:
    """A fully wired server, ready to start on any transport."""
    server = InfillServer()
    register(server)
    return server


def register(server: InfillServer) -> None:
    """Attach every handler to `server`."""

    @server.feature(types.INITIALIZE)
    def initialize(ls: InfillServer, params: types.InitializeParams) -> None:
        """Read initializationOptions; the model loads once the client is initialized."""
        ls.apply_settings(params.initialization_options, "initializationOptions")

    @server.feature(types.INITIALIZED)
    async def initialized(ls: InfillServer, params: types.InitializedParams) -> None:
        """Pull workspace settings, then start loading the model in the background."""
        await ls.pull_settings()
        ls.start_loading()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: InfillServer, params: types.DidChangeConfigurationParams
    ) -> None:
        """Apply pushed settings, or pull them when the push carries none."""
        if isinstance(params.settings, dict) and params.settings:
            ls.apply_settings(params.settings, "workspace/didChangeConfiguration")
        else:
            await ls.pull_settings()
        hints.settings_changed(ls)

    @server.feature(STATUS)
    def status(ls: InfillServer, params: Any = None) -> dict[str, Any]:
        """The model's state: loading, ready or error; once loaded, also what its forward
        passes have cost so far (`forwardPasses`, `forwardSeconds`: read before and after a
        request, the rest of its time is the server's own)."""
        answer: dict[str, Any] = dict(ls.status.to_wire())
        if ls.engine is not None:
            meter = ls.engine.model.meter
            answer.update(forwardPasses=meter.passes, forwardSeconds=meter.seconds)
        return answer

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: InfillServer, params: types.DidOpenTextDocumentParams) -> None:
        """Track a newly opened document."""
        ls.documents.open(params.text_document)
        hints.schedule(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: InfillServer, params: types.DidChangeTextDocumentParams) -> None:
        """Apply the client's edits to our copy."""
        ls.documents.change(params, ls.encoding)
        changes = [c for c in params.content_changes if hasattr(c, "range")]
        line = changes[-1].range.start.line if changes else 0
        hints.schedule(ls, params.text_document.uri, line)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: InfillServer, params: types.DidCloseTextDocumentParams) -> None:
        """Forget a closed document: its hints go, its commands stop at their next step."""
        ls.documents.close(params.text_document.uri)
        hints.forget(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(
        ls: InfillServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        """Ghost text at the cursor."""
        return await completion.inline_completion(ls, params)

    @server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[]))
    async def complete(ls: InfillServer, params: types.CompletionParams) -> types.CompletionList:
        """Infill as completion items, for clients without inline completion."""
        return await completion.completion(ls, params)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[
                types.CodeActionKind.RefactorRewrite,
                types.CodeActionKind.QuickFix,
            ],
            resolve_provider=True,
        ),
    )
    def code_action(ls: InfillServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        """Rewrite, revise and fill-holes actions on a selection."""
        return actions.code_actions(ls, params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    async def resolve(ls: InfillServer, action: types.CodeAction) -> types.CodeAction:
        """Compute the edit of a chosen action."""
        try:
            return await actions.resolve_code_action(ls, action)
        except InfillError as error:
            raise rpc_error(error, str(error)) from error

    for name in COMMANDS:
        _register_command(server, name)


def _register_command(server: InfillServer, name: str) -> None:
    @server.command(name)
    async def command(ls: InfillServer, *args: Any) -> Any:
        """Run one of the infill commands on its single object argument."""
        try:
            return await actions.execute(ls, name, args)
        except InfillError as error:
            log.info("%s refused: %s", name, error)
            raise rpc_error(error, f"{name}: {error}") from error


def rpc_error(error: InfillError, message: str) -> JsonRpcException:
    """The JSON-RPC error a client gets for one of ours: bad input -32602, a document that
    changed under the request -32801 (ContentModified), no model to run -32803 (RequestFailed),
    anything else -32603."""
    if isinstance(error, InputError):
        return JsonRpcInvalidParams(message)
    if isinstance(error, ContentModified):
        return JsonRpcContentModified(message)
    if isinstance(error, ModelUnavailable):
        return JsonRpcException(message, code=int(types.LSPErrorCodes.RequestFailed))
    return JsonRpcInternalError(message)
