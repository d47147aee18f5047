"""Run a Python module under audit hooks that refuse the network and watch file reads.

    python -m tests.reliability.guard LOG WATCH MODULE [ARGS...]

Every attempt to resolve a host name, open a non-Unix socket or connect one, send a datagram or
open a URL is refused (the call raises PermissionError) and written to LOG, so a library that
swallows the error still leaves a trace. Every file or directory opened under WATCH (a folder
the run must never read; "-" for none) is written to LOG as well. LOG stays empty when the run
behaved. Audit hooks see everything Python does, including code in imported libraries.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import socket
import sys

NAME_LOOKUPS = {
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyname_ex",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
}
URL_OPENERS = {"urllib.Request", "http.client.connect", "ftplib.connect", "smtplib.connect"}
READS = {"open", "os.scandir", "os.listdir", "os.walk"}


def install(log_path: str, watch: str | None) -> None:
    """Install the hook; findings go to `log_path` (opened now, written with os.write)."""
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    watched = os.path.realpath(watch) + os.sep if watch else None

    def record(what: str) -> None:
        os.write(log, (what.replace("\n", " ") + "\n").encode("utf-8", "replace"))

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "socket.__new__":
            family = args[1]
            if family not in (socket.AF_UNIX, -1):
                record(f"network: {event} family={family}")
                raise PermissionError("network sockets are refused in this test")
        elif event == "socket.connect" or event == "socket.sendto":
            sock = args[0]
            if getattr(sock, "family", None) != socket.AF_UNIX:
                record(f"network: {event} {args[1]!r}")
                raise PermissionError("network connections are refused in this test")
        elif event in NAME_LOOKUPS or event in URL_OPENERS:
            record(f"network: {event} {args[:2]!r}")
            raise PermissionError("network access is refused in this test")
        elif watched and event in READS and args:
            path = args[0]
            if isinstance(path, str | bytes | os.PathLike):
                text = os.fsdecode(path)
                if os.path.realpath(text).startswith(watched) or text.startswith(watched):
                    record(f"read: {event} {text}")

    sys.addaudithook(hook)


def phone_home() -> None:
    """What the guard must catch (its own test): a name lookup and a TCP connect."""
    for attempt in (
        lambda: socket.getaddrinfo("example.com", 443),
        lambda: socket.create_connection(("127.0.0.1", 9), timeout=1),
        lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", 9)),
    ):
        with contextlib.suppress(OSError):
            attempt()


def main() -> None:
    log_path, watch, module, *args = sys.argv[1:]
    install(log_path, None if watch == "-" else watch)
    if module == "--phone-home":
        return phone_home()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
