"""Completion at the cursor: inline (ghost text) and the `textDocument/completion` fallback.

One flow for both: find the document, wait out the debounce, ask `regions` for line or block,
run the engine's infill job step by step (giving up as soon as a newer request supersedes it
or the document changes: a completion for text that is gone is dropped, never sent),
then shape each candidate with `postprocess`. Expected misses (model not ready,
unknown document, language turned off, binary text) are empty results, never errors.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from lsprotocol import types

from infill_lsp import regions
from infill_lsp.errors import InputError, Superseded
from infill_lsp.lsp.documents import syntax_window, usable_text
from infill_lsp.lsp.server import InfillServer
from infill_lsp.postprocess import Insertion, shape_insertion

log = logging.getLogger(__name__)

LABEL_LENGTH = 60


@dataclass(frozen=True)
class Candidate:
    """One shaped completion and the LSP range it replaces."""

    insertion: Insertion
    range: types.Range


async def complete(
    ls: InfillServer, uri: str, position: types.Position, invoked: bool, kind: str
) -> list[Candidate]:
    """Infill at `position` of `uri`: up to `candidates` shaped completions, best first.

    A newer inline request supersedes this one whatever its document (a user types in one place
    at a time); a newer "completion" request, one for the same document.
    """
    key = kind if kind == "inline" else f"{kind} {uri}"
    generation = ls.generations.get(key, 0) + 1
    ls.generations[key] = generation

    document = ls.documents.get(uri)  # the snapshot: positions below are computed on it

    def superseded() -> bool:
        return ls.generations.get(key) != generation or ls.documents.get(uri) is not document

    if ls.engine is None or document is None or not ls.settings.enabled_for(document.language_id):
        return []
    if not invoked and ls.settings.debounce_ms > 0:
        await asyncio.sleep(ls.settings.debounce_ms / 1000)
        if superseded():
            return []
    encoding = ls.encoding
    try:
        cursor = document.offset_at(position, encoding)
    except InputError as error:
        log.info("completion skipped: %s", error)
        return []
    if not usable_text(document, cursor, cursor):
        log.info("completion skipped: binary or invalid text near the cursor in %s", uri)
        return []
    text = document.text
    language = regions.language_for(uri, document.language_id)
    window, shift = syntax_window(text, cursor, cursor)
    single_line = regions.completion_scope(window, cursor - shift, language) == "line"
    prefix, suffix = text[:cursor], text[cursor:]
    count = max(ls.settings.candidates, 1) if invoked else 1
    engine = ls.engine
    try:
        job = engine.infill_job(
            prefix, suffix, single_line=single_line, candidates=count, options=ls.decode_options()
        )
        infills = await ls.run_job(job, stop=superseded)
    except Superseded:
        return []
    except InputError as error:
        log.info("completion skipped: %s", error)
        return []
    if superseded():  # changed during the last step
        return []
    start = document.position_at(cursor, encoding)  # a column past the line end is clamped
    shaped: list[Candidate] = []
    seen: set[str] = set()
    for infill in infills:
        insertion = shape_insertion(infill.text, prefix, suffix, single_line)
        if insertion is None or insertion.text in seen:
            continue
        seen.add(insertion.text)
        end = document.position_at(cursor + insertion.replace, encoding)
        shaped.append(Candidate(insertion, types.Range(start=start, end=end)))
    log.info("completion at %s:%d: %d candidates", uri, position.line, len(shaped))
    return shaped


async def inline_completion(
    ls: InfillServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    """Ghost text at the cursor: several candidates when invoked, one while typing."""
    invoked = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    candidates = await complete(ls, params.text_document.uri, params.position, invoked, "inline")
    # A range only when the item replaces text after the cursor (exactly that text), or when the
    # cursor asked for lies past its line's end (the range says where the text really goes):
    # clients draw a ranged item over what it covers, so an empty range would paint over code.
    items = [
        types.InlineCompletionItem(
            insert_text=c.insertion.text,
            range=c.range if c.insertion.replace or c.range.start != params.position else None,
        )
        for c in candidates
    ]
    return types.InlineCompletionList(items=items)


async def completion(ls: InfillServer, params: types.CompletionParams) -> types.CompletionList:
    """The same infill as completion items, for clients without inline completion."""
    invoked = (
        params.context is None or params.context.trigger_kind == types.CompletionTriggerKind.Invoked
    )
    uri = params.text_document.uri
    candidates = await complete(ls, uri, params.position, invoked, "completion")
    items = []
    for rank, candidate in enumerate(candidates):
        text = candidate.insertion.text
        first = text.strip().split("\n", 1)[0]
        label = first if len(first) <= LABEL_LENGTH else first[: LABEL_LENGTH - 1] + "…"
        items.append(
            types.CompletionItem(
                label=label,
                kind=types.CompletionItemKind.Snippet,
                detail="infill",
                documentation=types.MarkupContent(kind=types.MarkupKind.PlainText, value=text),
                sort_text=f"{rank:02d}",
                filter_text=text,
                text_edit=types.TextEdit(range=candidate.range, new_text=text),
                insert_text_format=types.InsertTextFormat.PlainText,
            )
        )
    return types.CompletionList(is_incomplete=True, items=items)
