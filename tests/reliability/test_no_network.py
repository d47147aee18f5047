"""No network at run time: the server and training run under `guard`, which refuses and records
every host lookup, non-Unix socket, connect and URL open (HF_*_OFFLINE variables removed, so the
code has to stay offline by itself).

Training's own proof is in test_training_faults (the killed and the resumed `infill-train
train` run guarded) and in the `train_inputs` fixture (`infill-train corpus` guarded).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.reliability.conftest import (
    CAPABILITIES,
    TrainInputs,
    fast_options,
    guarded,
    run_guarded,
)
from tests.reliability.rpc import RpcPeer


def test_the_guard_catches_a_phone_home(tmp_path: Path) -> None:
    log = tmp_path / "guard.log"
    assert run_guarded(log, None, "--phone-home").returncode == 0
    found = log.read_text()
    assert "socket.getaddrinfo" in found and "socket.__new__" in found, found


def test_server_session_makes_no_connection(tiny_model_dir: Path, tmp_path: Path) -> None:
    log = tmp_path / "guard.log"
    env = {k: "" for k in os.environ if k.endswith("_OFFLINE")}
    with (tmp_path / "stderr.log").open("wb") as stderr:
        peer = RpcPeer(
            guarded(log, None, "infill_lsp", "--log-level", "INFO"), env=env, stderr=stderr
        )
    try:
        peer.settings = fast_options(tiny_model_dir)
        peer.initialize(peer.settings, CAPABILITIES)
        assert peer.wait_ready()["state"] == "ready"
        uri = "file:///net/a.py"
        peer.open(uri, "def add(a, b):\n    return a + b\n# 🕳\n", "python")
        where = {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 4}}
        peer.result("textDocument/inlineCompletion", {**where, "context": {"triggerKind": 1}})
        peer.result("textDocument/completion", where)
        whole = {"start": {"line": 0, "character": 0}, "end": {"line": 2, "character": 0}}
        for name in ("infill.rewrite", "infill.revise", "infill.fillHoles"):
            peer.result(
                "workspace/executeCommand",
                {"command": name, "arguments": [{"uri": uri, "range": whole, "apply": False}]},
            )
        seen = len(peer.statuses())
        peer.notify(
            "workspace/didChangeConfiguration",
            {"settings": {"infill": {"modelPath": "gpt2", "hints": True}}},  # a hub name
        )
        assert "still using" in peer.wait_ready(after=seen)["message"]
        assert peer.close() == 0
    finally:
        if peer.alive():
            peer.process.kill()
    assert log.read_text() == "", "the server touched the network"


def test_corpus_builder_makes_no_connection(train_inputs: TrainInputs) -> None:
    lines = train_inputs.guard_log.read_text().splitlines()
    assert [line for line in lines if line.startswith("network:")] == []


def test_no_telemetry_switches_needed() -> None:
    """The guard runs without HF_HUB_OFFLINE & co.: nothing relies on them being set."""
    result = subprocess.run(
        ["grep", "-rn", "-E", "telemetry|posthog|sentry|analytics", "infill_lsp", "training"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
    )  # fmt: skip
    assert result.stdout == "", result.stdout
