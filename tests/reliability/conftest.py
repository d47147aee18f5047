"""Fixtures of the reliability suite: real server processes on the tiny random model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infill_train.corpus import is_heldout, load_corpus
from infill_train.tokenizer import train_tokenizer
from tests.reliability.rpc import REPO, SERVER, RpcPeer

MARKER = "🕳"  # the hole marker of the fuzzed sessions: outside the BMP, two UTF-16 units
CAPABILITIES: dict[str, Any] = {
    "window": {"workDoneProgress": True},
    "workspace": {"configuration": True, "applyEdit": True},
    "textDocument": {"codeAction": {"resolveSupport": {"properties": ["edit"]}}},
}


def fast_options(model_dir: Path, **extra: Any) -> dict[str, Any]:
    """Settings that keep every model call short: few steps, short spans, no debounce wait."""
    return {
        "modelPath": str(model_dir),
        "steps": 2,
        "maxSpanTokens": 8,
        "contextTokens": 128,
        "debounceMs": 5,
        "candidates": 2,
        "holeMarker": MARKER,
        **extra,
    }


def start_server(
    model_dir: Path, log: Path, argv: list[str] | None = None, **extra: Any
) -> RpcPeer:
    """A server process, initialized on the tiny model and ready."""
    with log.open("ab") as stderr:
        peer = RpcPeer(argv or [*SERVER, "--log-level", "INFO"], stderr=stderr)
    peer.settings = fast_options(model_dir, **extra)
    peer.initialize(peer.settings, CAPABILITIES)
    status = peer.wait_ready()
    assert status["state"] == "ready", status
    return peer


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcPeer]:
    """One server for a whole test module; it must survive the module and exit cleanly."""
    log = tmp_path_factory.mktemp("server") / "stderr.log"
    peer = start_server(tiny_model_dir, log)
    yield peer
    assert peer.alive(), f"the server exited (code {peer.process.returncode}); see {log}"
    assert not peer.violations, peer.violations[:5]
    assert peer.close() == 0


GUARD = [sys.executable, "-m", "tests.reliability.guard"]
SECRET = "sk-live-ZEBRA-QUOKKA-0451"  # a string no log and no corpus may ever hold


@dataclass(frozen=True)
class TrainInputs:
    """A corpus and a tokenizer built by the real `infill-train` under the network guard."""

    tree: Path  # the source tree (with secrets and symlinks that must be skipped)
    outside: Path  # a folder next to it that must never be read
    corpus: Path
    tokenizer: Path
    corpus_output: str  # what `infill-train corpus` told the user
    guard_log: Path


def guarded(log: Path, watch: Path | None, module: str, *args: str) -> list[str]:
    """The argv running `python -m module args` under tests.reliability.guard."""
    return [*GUARD, str(log), str(watch) if watch else "-", module, *args]


def run_guarded(
    log: Path, watch: Path | None, module: str, *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_OFFLINE")}
    return subprocess.run(
        guarded(log, watch, module, *args),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def build_tree(base: Path) -> tuple[Path, Path]:
    """A small source tree holding real code, secrets and symlinks out; and the outside."""
    tree, outside = base / "tree", base / "outside"
    (outside / "private").mkdir(parents=True)
    (outside / "leak.py").write_text(f"TOKEN = {SECRET!r}\n")
    (outside / "private" / "notes.py").write_text(f"# {SECRET}\n")
    src = tree / "src"
    src.mkdir(parents=True)
    for path in sorted((REPO / "infill_lsp").glob("*.py")):
        (src / path.name).write_text(path.read_text())
    # at least one held-out file: a corpus with an empty split cannot be loaded (see report)
    held = next(f"held_{i}.py" for i in range(1000) if is_heldout(f"tree/src/held_{i}.py"))
    (src / held).write_text("def held_out(x):\n    return x * 2\n")
    (tree / ".env").write_text(f"API_KEY={SECRET}\n")
    (tree / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n")
    (tree / "secrets.json").write_text(json.dumps({"key": SECRET}))
    (tree / "aws.py").write_text('KEY = "AKIA' + "Q" * 16 + '"\n')
    (tree / "server.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    (tree / "ignored").mkdir()
    (tree / "ignored" / "x.py").write_text(f"# {SECRET}\n")
    (tree / ".gitignore").write_text("ignored/\n")
    (tree / "leak.py").symlink_to(outside / "leak.py")
    (tree / "private").symlink_to(outside / "private", target_is_directory=True)
    (tree / "inside_link.py").symlink_to(src / "errors.py")
    return tree, outside


@pytest.fixture(scope="session")
def train_inputs(tmp_path_factory: pytest.TempPathFactory) -> TrainInputs:
    """Corpus and tokenizer for the training tests (built once, under the guard)."""
    base = tmp_path_factory.mktemp("train")
    tree, outside = build_tree(base)
    log = base / "guard.log"
    corpus, tokenizer = base / "corpus", base / "tokenizer"
    made = run_guarded(log, outside, "infill_train.cli", "corpus", str(tree), "--out", str(corpus))
    assert made.returncode == 0, made.stderr
    texts = load_corpus(corpus)["train"]["text"]  # the tokenizer in-process: one process less
    tokenizer.mkdir()
    train_tokenizer(list(texts), vocab_size=300).save(str(tokenizer / "tokenizer.json"))
    return TrainInputs(tree, outside, corpus, tokenizer, made.stdout + made.stderr, log)


def train_args(inputs: TrainInputs, out: Path, *extra: str) -> list[str]:
    """`infill-train train` arguments for a tiny, quick run."""
    return [
        "train", "--corpus", str(inputs.corpus), "--tokenizer", str(inputs.tokenizer),
        "--size", "test", "--out", str(out), "--batch", "4", "--context", "64",
        "--warmup-tokens", "1000", "--quiet", *extra,
    ]  # fmt: skip


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The fuzzing figures, for the issue's closing table."""
    from tests.reliability import test_fuzz

    if test_fuzz.TOTALS["sessions"]:
        figures = ", ".join(f"{n} {name}" for name, n in test_fuzz.TOTALS.items())
        terminalreporter.write_line(f"reliability fuzzing: {figures}")
