"""The server process: logging kept off stdout, then LSP over stdio (default) or TCP.

This is the top of the server side: `cli` calls `run_server`, which builds the server with
`handlers.create_server` and hands stdio to `wire.InfillProtocol`.
"""

from __future__ import annotations

import logging
import os
import sys

from infill_lsp import __version__
from infill_lsp.errors import InfillError
from infill_lsp.lsp.handlers import create_server

log = logging.getLogger(__name__)


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
        return 0 if server.protocol.shut_down else 1
    # stdout belongs to JSON-RPC: keep a private handle on it and point fd 1 at stderr, so that
    # a stray print() anywhere (a library, a C extension) cannot corrupt the stream.
    rpc_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    log.info("infill-lsp %s serving on stdio", __version__)
    server.protocol.serve_stdio(sys.stdin.buffer, rpc_out)
    return 0 if server.protocol.shut_down else 1


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
