"""Rewrite, revise and fill holes over a range: the commands and the code actions that resolve to
the same WorkspaceEdit.

A command takes one object `{"uri", "range", "apply"}`. Rewrite and revise change exactly the
selection, unless `snapSelection` widens it to whole syntax nodes (by default only a selection of
whole lines), which the user is told; fill holes fills the markers inside the range (every
marker in the file without one). The engine job runs step by step (with `$/progress` when the
client gave a token), and a candidate that adds a parse error is passed over for the next best.
Edits touch only the range; when nothing changes, the user is told why.
Bad input raises InputError, which the handler turns into a clear JSON-RPC error.

Everything is computed on the document as it was when the command started (its `Document` value
never changes). If the user typed meanwhile, the edit is moved onto the current version when no
change touched the selection and the client checks versions (`documentChanges`); otherwise the
command fails with ContentModified and nothing is sent. Closing the document stops the command.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from infill_lsp import regions
from infill_lsp.errors import ContentModified, InputError, ModelUnavailable, Superseded
from infill_lsp.lsp.documents import Document, syntax_window, usable_text
from infill_lsp.lsp.server import InfillServer
from infill_lsp.lsp.wire import ERROR, FILL_HOLES, REVISE, REWRITE, cancelled_error
from infill_lsp.postprocess import changed_span
from infill_lsp.window import CHARS_PER_TOKEN

if TYPE_CHECKING:
    from infill_lsp.engine import Engine

log = logging.getLogger(__name__)

TITLES = {
    REWRITE: "Rewrite selection",
    REVISE: "Revise low-confidence tokens",
    FILL_HOLES: "Fill holes",
}
DOING = {REWRITE: "rewriting", REVISE: "revising", FILL_HOLES: "filling holes"}
KINDS = {
    REWRITE: types.CodeActionKind.RefactorRewrite,
    REVISE: types.CodeActionKind.RefactorRewrite,
    FILL_HOLES: types.CodeActionKind.QuickFix,
}


@dataclass(frozen=True)
class Target:
    """What a command works on: a document, an optional range, whether to apply the edit."""

    uri: str
    range: types.Range | None
    apply: bool


def parse_target(ls: InfillServer, name: str, args: tuple[Any, ...]) -> Target:
    """Read the single argument object of a command; InputError when it is malformed."""
    if len(args) != 1 or not isinstance(args[0], dict):
        raise InputError(f'{name} takes one argument {{"uri": ..., "range": ..., "apply": ...}}')
    raw = args[0]
    uri, raw_range, apply = raw.get("uri"), raw.get("range"), raw.get("apply", True)
    if not isinstance(uri, str):
        raise InputError(f"{name}: 'uri' must be a string")
    if not isinstance(apply, bool):
        raise InputError(f"{name}: 'apply' must be true or false")
    range_: types.Range | None = None
    if raw_range is not None:
        try:
            range_ = ls.protocol.read_as(raw_range, types.Range)
        except Exception as error:
            raise InputError(f"{name}: 'range' is not an LSP range ({error})") from error
    if range_ is None and name != FILL_HOLES:
        raise InputError(f"{name} needs a 'range'")
    return Target(uri, range_, apply)


def _document(ls: InfillServer, uri: str) -> Document:
    document = ls.documents.get(uri)
    if document is None:
        raise InputError(f"{uri} is not open in the editor")
    return document


@dataclass(frozen=True)
class Planned:
    """A command's result in the offsets of the version it was computed on."""

    snapshot: Document  # the document as it was when the command started
    encoding: str  # the position encoding its ranges are written in
    span: tuple[int, int]  # the (snapped) selection: no edit reaches outside it
    edits: list[tuple[int, int, str]]  # (start, end, new text), not overlapping


def _takes_versions(ls: InfillServer) -> bool:
    """Whether the client takes versioned edits (`documentChanges`) and so refuses stale ones."""
    workspace = ls.client_capabilities.workspace
    return bool(
        workspace and workspace.workspace_edit and workspace.workspace_edit.document_changes
    )


def _landing(ls: InfillServer, name: str, planned: Planned) -> tuple[Document, int]:
    """The version the edit applies to now and how far its offsets moved; ContentModified when
    the document was closed, or changed where (or in a way) the edit cannot follow."""
    snapshot = planned.snapshot
    if not ls.documents.is_open(snapshot):
        raise ContentModified(f"the file was closed while {DOING[name]}; nothing applied")
    current = ls.documents.get(snapshot.uri)
    if current is snapshot:
        return snapshot, 0
    moved = ls.documents.moved(snapshot, *planned.span) if _takes_versions(ls) else None
    if moved is None:
        raise ContentModified(f"the file changed while {DOING[name]}; nothing applied")
    return moved


def _workspace_edit(ls: InfillServer, name: str, planned: Planned) -> types.WorkspaceEdit:
    """The WorkspaceEdit for the version open now: versioned when the client takes
    documentChanges (then stamped with the version its ranges belong to)."""
    document, shift = _landing(ls, name, planned)
    encoding = planned.encoding
    edits = [
        types.TextEdit(range=document.range_of(start + shift, end + shift, encoding), new_text=new)
        for start, end, new in planned.edits
    ]
    if not _takes_versions(ls):
        return types.WorkspaceEdit(changes={document.uri: edits})
    identifier = types.OptionalVersionedTextDocumentIdentifier(
        uri=document.uri, version=document.version
    )
    return types.WorkspaceEdit(
        document_changes=[types.TextDocumentEdit(text_document=identifier, edits=edits)]
    )


def _replacement(text: str, start: int, end: int, new: str) -> list[tuple[int, int, str]]:
    """The smallest edit replacing text[start:end] with `new` (none when equal)."""
    lead, trail, changed = changed_span(text[start:end], new)
    if lead == trail and not changed:
        return []
    return [(start + lead, start + trail, changed)]


class _Reporter:
    """Work-done progress for one command, when the client offered a token."""

    def __init__(self, ls: InfillServer, token: types.ProgressToken | None, title: str) -> None:
        self.ls, self.token = ls, token
        if token is not None:
            ls.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title=title, cancellable=True, percentage=0)
            )

    def step(self, progress: Any) -> None:
        if self.token is None:
            return
        cancel = self.ls.work_done_progress.tokens.get(self.token)
        if cancel is not None and cancel.cancelled():
            raise cancelled_error("cancelled from the progress indicator")
        percentage = int(100 * progress.step / max(progress.total, 1))
        message = f"step {progress.step} of {progress.total}"
        self.ls.work_done_progress.report(
            self.token, types.WorkDoneProgressReport(message=message, percentage=percentage)
        )

    def end(self, message: str) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self.ls.work_done_progress.tokens.pop(self.token, None)


def _first_that_parses(
    window: str, start: int, end: int, texts: list[str], language: str | None
) -> str | None:
    """The first text that, put in window[start:end], adds no parse error."""
    for text in texts:
        if not regions.introduces_error(window, window[:start] + text + window[end:], language):
            return text
        log.info("candidate rejected: it introduces a parse error")
    return None


async def compute_edit(
    ls: InfillServer, name: str, target: Target, token: types.ProgressToken | None = None
) -> types.WorkspaceEdit:
    """The WorkspaceEdit a command would make (empty when there is nothing to change)."""
    engine = _engine(ls)
    document = _document(ls, target.uri)  # the snapshot everything below is computed on
    encoding = ls.encoding
    text = document.text
    language = regions.language_for(document.uri, document.language_id)
    if target.range is None:
        start, end = 0, len(text)
    else:
        start, end = document.span_of(target.range, encoding, allow_empty=name == FILL_HOLES)
        if start == end:
            start, end = 0, len(text)
    if name != FILL_HOLES:
        start, end = _snapped(ls, text, start, end, language)
        options = ls.decode_options()
        if end - start > options.context_tokens * CHARS_PER_TOKEN:
            raise InputError(
                f"the selection is {end - start} characters long, too long for the "
                f"{options.context_tokens}-token window (infill.contextTokens): select less"
            )
    if not usable_text(document, start, end):
        raise InputError("the text holds binary data or invalid characters; it cannot be infilled")
    reporter = _Reporter(ls, token, TITLES[name])
    planned = Planned(document, encoding, (start, end), [])

    def pointless() -> bool:  # checked between steps: closed, or changed where it cannot land
        try:
            _landing(ls, name, planned)
        except ContentModified:
            return True
        return False

    try:
        edits = await _run(
            ls, engine, name, document, (start, end), language, reporter.step, pointless
        )
    except Superseded:
        _landing(ls, name, planned)  # raises ContentModified, saying why
        raise
    finally:
        reporter.end("done")
    return _workspace_edit(ls, name, Planned(document, encoding, (start, end), edits))


def _snapped(
    ls: InfillServer, text: str, start: int, end: int, language: str | None
) -> tuple[int, int]:
    """The span a rewrite or revise works on: the selection, or (as `snapSelection` asks) the
    selection widened to whole syntax nodes, which the user is told."""
    mode = ls.settings.snap_selection
    if mode == "never" or (mode == "lines" and not regions.selects_whole_lines(text, start, end)):
        return start, end
    window, shift = syntax_window(text, start, end)
    low, high = regions.snap_to_nodes(window, start - shift, end - shift, language)
    low, high = low + shift, high + shift
    if text[low:start].strip() or text[end:high].strip():
        first, last = text.count("\n", 0, low) + 1, text.count("\n", 0, max(low, high - 1)) + 1
        where = f"line {first}" if first == last else f"lines {first}-{last}"
        ls.show(
            f"infill-lsp: the selection was widened to whole syntax nodes ({where}); "
            'infill.snapSelection "never" keeps a selection as made'
        )
    return low, high


def _engine(ls: InfillServer) -> Engine:
    """The loaded engine; ModelUnavailable saying why there is none (each time it is asked)."""
    if ls.engine is not None:
        return ls.engine
    if ls.status.state == ERROR:
        raise ModelUnavailable(f"the model failed to load ({ls.status.message})")
    raise ModelUnavailable("the model is still loading; try again in a moment")


async def _run(
    ls: InfillServer,
    engine: Engine,
    name: str,
    document: Document,
    span: tuple[int, int],
    language: str | None,
    on_step: Callable[[Any], None],
    stop: Callable[[], bool],
) -> list[tuple[int, int, str]]:
    """Run the engine job of command `name` over the span; its edits in the document's offsets.
    `stop` returning True between steps raises Superseded."""
    start, end = span
    text, options = document.text, ls.decode_options()
    prefix, region, suffix = text[:start], text[start:end], text[end:]
    window, shift = syntax_window(text, start, end)
    low, high = start - shift, end - shift
    if name == FILL_HOLES:
        marker = ls.settings.hole_marker
        if marker not in region:
            ls.show(f"infill-lsp: no {marker} marker to fill", types.MessageType.Info)
            return []
        if (start, end) == (0, len(text)):
            count = text.count(marker)
            ls.show(f"infill-lsp: filling all {count} {marker} markers in the file")
        holes_job = engine.fill_holes_job(text, marker, within=(start, end), options=options)
        holes = await ls.run_job(holes_job, on_step, stop)
        inside = [h for h in holes if start <= h.start and h.end <= end]
        filled = region
        for hole in reversed(inside):
            filled = filled[: hole.start - start] + hole.text + filled[hole.end - start :]
        if _first_that_parses(window, low, high, [filled], language) is None:
            ls.show("infill-lsp: the filled holes do not parse; nothing changed")
            return []
        return [(hole.start, hole.end, hole.text) for hole in inside]
    if name == REWRITE:
        count = max(ls.settings.candidates, 1)
        job = engine.rewrite_job(prefix, region, suffix, candidates=count, options=options)
        texts = [infill.text for infill in await ls.run_job(job, on_step, stop)]
        texts = [t for t in texts if t != region] or texts
    else:
        job_one = engine.revise_job(prefix, region, suffix, options=options)
        revised = await ls.run_job(job_one, on_step, stop)
        if revised.steps == 0:
            ls.show("infill-lsp: no token of the selection is unlikely enough to revise")
            return []
        texts = [revised.text]
    chosen = _first_that_parses(window, low, high, texts, language)
    if chosen is None:
        ls.show("infill-lsp: every candidate broke the syntax; nothing changed")
        return []
    if chosen == region:
        ls.show(f"infill-lsp: {DOING[name]} gave back the selection as it was; nothing changed")
        return []
    return _replacement(text, start, end, chosen)


async def execute(ls: InfillServer, name: str, args: tuple[Any, ...]) -> Any:
    """Run command `name`: return the edit (apply false) or apply it and return {"applied"}.

    The edit is checked against the open version and sent with no await in between, so no
    change can slip in after the check."""
    target = parse_target(ls, name, args)
    if ls.engine is None and target.apply and ls.status.state != ERROR:
        ls.show("infill-lsp: the model is still loading; try again in a moment")
        return {"applied": False}
    edit = await compute_edit(ls, name, target, ls.protocol.command_token.get())
    if not target.apply:
        return edit
    if not _has_edits(edit):
        return {"applied": False}
    result = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=edit, label=TITLES[name])
    )
    return {"applied": bool(result.applied)}


def _has_edits(edit: types.WorkspaceEdit) -> bool:
    if edit.changes:
        return any(edit.changes.values())
    return any(
        isinstance(change, types.TextDocumentEdit) and change.edits
        for change in edit.document_changes or []
    )


def _resolves_edits(ls: InfillServer) -> bool:
    text_document = ls.client_capabilities.text_document
    code_action = text_document.code_action if text_document else None
    support = code_action.resolve_support if code_action else None
    return support is not None and "edit" in support.properties


def code_actions(ls: InfillServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """The actions on offer for a selection (cheap: nothing runs until one is resolved)."""
    document = ls.documents.get(params.text_document.uri)
    if document is None or not ls.settings.enabled_for(document.language_id):
        return []
    try:
        start, end = document.span_of(params.range, ls.encoding)
    except InputError:
        return []
    selection = {"uri": document.uri, "range": ls.protocol.to_json(params.range)}
    offers = [(REWRITE, TITLES[REWRITE], selection), (REVISE, TITLES[REVISE], selection)]
    offers = offers if end > start else []
    marker = ls.settings.hole_marker
    if marker in document.text[start:end]:  # the selection's own markers only
        offers.append((FILL_HOLES, TITLES[FILL_HOLES], selection))
    count = document.text.count(marker)
    if count:  # every marker in the file is its own action, saying how many
        markers = f"{count} {marker} marker" + ("s" if count > 1 else "")
        everywhere = f"Fill holes in the whole file ({markers})"
        offers.append((FILL_HOLES, everywhere, {"uri": document.uri}))
    only = params.context.only
    if only:
        offers = [o for o in offers if any(KINDS[o[0]].value.startswith(k) for k in only)]
    actions = []
    for name, title, arguments in offers:
        action = types.CodeAction(title=title, kind=KINDS[name])
        if _resolves_edits(ls):
            action.data = {"command": name, "arguments": arguments}
        else:
            action.command = types.Command(
                title=title, command=name, arguments=[{**arguments, "apply": True}]
            )
        actions.append(action)
    return actions


async def resolve_code_action(ls: InfillServer, action: types.CodeAction) -> types.CodeAction:
    """Fill in the edit of a code action offered by `code_actions`."""
    data = action.data if isinstance(action.data, dict) else {}
    name = data.get("command")
    if name not in TITLES:
        return action
    target = parse_target(ls, name, ({**data.get("arguments", {}), "apply": False},))
    action.edit = await compute_edit(ls, name, target)
    return action
