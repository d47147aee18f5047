"""Optional "unlikely token" hints: the revise scores of the lines around the latest edit,
published as Hint diagnostics when the user turns `hints` on (off by default).

Scoring waits until typing pauses and runs on the model worker like every other model call;
a newer edit cancels a pending one. Only the lines around the latest edit (or the top of a
freshly opened file) are scored, so the cost stays a few forward passes. Hints are computed on
one version of the document and published with that version, only while it is still the
current one; they are cleared when the document closes or hints are turned off.
"""

from __future__ import annotations

import asyncio
import logging
import math

from lsprotocol import types

from infill_lsp.lsp.documents import usable_text
from infill_lsp.lsp.server import InfillServer

log = logging.getLogger(__name__)

DELAY = 1.0  # seconds of quiet before scoring
LINES_AROUND = 12
MAX_CHARS = 2_000


def schedule(ls: InfillServer, uri: str, line: int = 0) -> None:
    """Rescore the lines around `line` of `uri` once typing pauses (when hints are on)."""
    pending = ls.hint_tasks.pop(uri, None)
    if pending is not None:
        pending.cancel()
    if not ls.settings.hints:
        return
    ls.hint_tasks[uri] = ls.spawn(_publish(ls, uri, line))


def forget(ls: InfillServer, uri: str) -> None:
    """Drop pending work and hints of a closed document."""
    pending = ls.hint_tasks.pop(uri, None)
    if pending is not None:
        pending.cancel()
    _clear(ls, uri)


def settings_changed(ls: InfillServer) -> None:
    """Hints turned off: stop pending work and take every published hint off the screen."""
    if ls.settings.hints:
        return
    for uri in list(ls.hint_tasks):
        forget(ls, uri)
    for uri in list(ls.hinted):
        _clear(ls, uri)


def _clear(ls: InfillServer, uri: str) -> None:
    if uri in ls.hinted:
        ls.hinted.discard(uri)
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=[])
        )


async def _publish(ls: InfillServer, uri: str, line: int) -> None:
    await asyncio.sleep(DELAY)
    document, engine = ls.documents.get(uri), ls.engine  # the version the hints are for
    if document is None or engine is None or not ls.settings.enabled_for(document.language_id):
        return
    index = document.index
    first = max(0, line - LINES_AROUND)
    last = min(index.line_count - 1, line + LINES_AROUND)
    start = index.starts[first]
    end = index.starts[last + 1] if last + 1 < index.line_count else len(document.text)
    end = min(end, start + MAX_CHARS)
    if end <= start or not usable_text(document, start, end):
        return
    text = document.text
    unlikely = engine.options.unlikely_below  # the same cut revise uses
    try:
        scores = await ls.run_model(engine.score, text[:start], text[start:end], text[end:])
    except Exception as error:  # hints are a nicety: never an error for the user
        log.info("hints skipped: %s", error)
        return
    if ls.documents.get(uri) is not document or not ls.settings.hints:
        return  # edited meanwhile (a newer task will publish), closed, or hints turned off
    encoding = ls.encoding
    diagnostics = [
        types.Diagnostic(
            range=document.range_of(start + score.start, start + score.end, encoding),
            message=f"unlikely token (p={math.exp(score.logprob):.2f})",
            severity=types.DiagnosticSeverity.Hint,
            source="infill",
        )
        for score in scores
        if score.logprob < unlikely and text[start + score.start : start + score.end].strip()
    ]
    ls.hinted.add(uri)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version)
    )
