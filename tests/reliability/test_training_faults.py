"""Training under faults: kill -9 mid-run then --resume; an unwritable or full output.

The real `infill-train` runs on a tiny corpus with the smallest size preset: in a subprocess
under `guard` (no network, see test_no_network) when it is killed and resumed, in-process when
it must refuse its output. A model directory is only ever complete or absent: no directory
named like the output (or a hidden scratch copy of it) may hold a config and weights.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from infill_lsp.model import load_model
from infill_train import cli
from infill_train.corpus import build_corpus, is_heldout, load_corpus
from tests.reliability.conftest import TrainInputs, guarded, run_guarded, train_args
from tests.reliability.rpc import REPO


def checkpoint_state(out: Path) -> dict[str, float] | None:
    """The state of the last complete checkpoint of the run writing `out`, if any."""
    try:
        state = (out.parent / f"{out.name}.checkpoint" / "state.json").read_text()
        return json.loads(state)["state"]
    except (OSError, ValueError, KeyError):
        return None


def complete_looking(folder: Path) -> list[Path]:
    """Directories under `folder` that hold a config and weights (look like a model)."""
    found = folder.rglob("config.json")
    return sorted(p.parent for p in found if (p.parent / "model.safetensors").exists())


def test_kill_nine_then_resume(train_inputs: TrainInputs, tmp_path: Path) -> None:
    out, log = tmp_path / "model", tmp_path / "guard.log"
    endless = train_args(
        train_inputs, out, "--max-tokens", "50000000", "--checkpoint-minutes", "0.005"
    )
    run = subprocess.Popen(
        guarded(log, None, "infill_train.cli", *endless),
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and run.poll() is None:
        state = checkpoint_state(out)
        if state and state["step"] >= 3:
            break
        time.sleep(0.2)
    assert run.poll() is None, run.stderr.read().decode() if run.stderr else ""
    time.sleep(0.5)  # land the kill anywhere: in a step or in a checkpoint write
    os.kill(run.pid, signal.SIGKILL)
    run.wait(30)
    killed_at = checkpoint_state(out)
    assert killed_at is not None and killed_at["step"] >= 3
    assert not out.exists(), "a model directory appeared although training never finished"
    assert complete_looking(tmp_path) == []

    budget = int(killed_at["tokens"]) + 4 * 4 * 64  # about four more steps
    again = train_args(train_inputs, out, "--resume", "--max-tokens", str(budget))
    resumed = run_guarded(log, None, "infill_train.cli", *again)
    assert resumed.returncode == 0, resumed.stderr
    recipe = json.loads((out / "infill.json").read_text())["recipe"]
    assert killed_at["step"] < recipe["steps"] <= killed_at["step"] + 8, (killed_at, recipe)
    assert recipe["tokens_seen"] >= budget
    assert recipe["train_seconds"] >= killed_at["seconds"]
    model = load_model(out)
    assert model.encode("def f():") and model.vocab_size >= model.tokenizer.get_vocab_size()
    assert complete_looking(tmp_path) == [out]
    assert log.read_text() == "", "training touched the network"


def test_unwritable_output_stops_with_a_message(
    train_inputs: TrainInputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for out in (blocker / "model", Path("/proc/infill-lsp-test/model")):
        assert cli.main(train_args(train_inputs, out, "--max-tokens", "2000")) == 2
        message = capsys.readouterr().err
        assert message.startswith(f"infill-train: cannot write to {out}"), message
    assert complete_looking(tmp_path) == []


@functools.cache
def _full_disk_run(inputs: TrainInputs, out: Path) -> tuple[int | None, str]:
    """Train with every file write past 64 KiB failing as on a full disk (EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))  # Python ignores SIGXFSZ
    err = io.StringIO()
    code: int | None
    try:
        with contextlib.redirect_stderr(err):
            code = cli.main(train_args(inputs, out, "--max-tokens", "3000"))
    except Exception as error:  # what escapes main is what the user would see as a traceback
        code, err = None, io.StringIO(f"Traceback: {error!r}")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    return code, err.getvalue()


def test_full_disk_leaves_no_model(train_inputs: TrainInputs, tmp_path_factory) -> None:
    folder = tmp_path_factory.getbasetemp() / "full-disk"
    folder.mkdir(exist_ok=True)
    _full_disk_run(train_inputs, folder / "model")
    assert not (folder / "model").exists()
    assert complete_looking(folder) == []
    leftovers = [p.name for p in folder.iterdir() if p.name.startswith(".")]
    assert leftovers == [], f"scratch directories left behind: {leftovers}"


def test_full_disk_stops_with_a_message(train_inputs: TrainInputs, tmp_path_factory) -> None:
    folder = tmp_path_factory.getbasetemp() / "full-disk"
    folder.mkdir(exist_ok=True)
    code, message = _full_disk_run(train_inputs, folder / "model")
    assert code == 2 and message.startswith("infill-train:"), message
    assert "too large" in message.lower()


def test_a_tiny_tree_makes_a_loadable_corpus(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    # two files neither of which is held out (a hash of the path decides)
    names = [n for n in (f"module_{i}.py" for i in range(50)) if not is_heldout(f"tree/{n}")][:2]
    for name, source in zip(names, ("errors.py", "window.py"), strict=True):
        (tree / name).write_text((REPO / "infill_lsp" / source).read_text())
    report = build_corpus([tree], tmp_path / "corpus")
    assert report.heldout_files == 0
    assert len(load_corpus(tmp_path / "corpus")["train"]) == 2
