"""The transport flags LSP clients append to the server's command line.

vscode-languageclient runs `<command> <args> --stdio` for stdio (and --node-ipc, --socket=N,
--pipe=NAME, --clientProcessId=N for its other transports); other clients do the same. The
server serves stdio whatever the flag says and refuses the transports it cannot serve with one
line and exit code 2, instead of argparse's usage dump.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infill_lsp.cli import USAGE_ERROR, main


def message(payload: dict[str, object]) -> bytes:
    body = json.dumps(payload).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def test_stdio_flag_serves_lsp_on_stdio() -> None:
    """`python -m infill_lsp --stdio --clientProcessId=N` answers initialize and shuts down."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"processId": None, "rootUri": None, "capabilities": {}},
    }
    shutdown = {"jsonrpc": "2.0", "id": 2, "method": "shutdown"}
    done = {"jsonrpc": "2.0", "method": "exit"}
    result = subprocess.run(
        [sys.executable, "-m", "infill_lsp", "--stdio", "--clientProcessId=4242"],
        input=message(initialize) + message(shutdown) + message(done),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert b"unrecognized arguments" not in result.stderr
    assert b'"id": 1' in result.stdout or b'"id":1' in result.stdout
    assert b"capabilities" in result.stdout


@pytest.mark.parametrize("flag", ["--node-ipc", "--socket=5007", "--pipe=/tmp/lsp.sock"])
def test_unservable_transport_is_one_clear_line(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([flag])
    assert exit_info.value.code == USAGE_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    name = flag.split("=")[0]
    assert err.startswith(f"infill-lsp: {name} is not supported"), err
    assert "--tcp HOST:PORT" in err
