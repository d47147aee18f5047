"""Privacy: no document text in the server's logs (unless the user asks for debug logging), and
a corpus builder that stays inside its tree, skips secrets and says what it skipped and why.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infill_train.corpus import collect, load_corpus
from tests.reliability.conftest import CAPABILITIES, SECRET, TrainInputs, build_tree, fast_options
from tests.reliability.rpc import SERVER, RpcPeer, frame

DIAGNOSTICS = "textDocument/publishDiagnostics"
DOCUMENT = f'KEY = "{SECRET}"\n\n\ndef f(x):\n    return x  # 🕳 {SECRET}\n'


def run_session(tiny_model_dir: Path, tmp_path: Path, level: str) -> tuple[str, str]:
    """Edit a secret document through every feature, then send bad input carrying the secret.

    Returns what the server logged (log file and stderr) before the bad input, and after it.
    """
    log, stderr_path = tmp_path / f"server-{level}.log", tmp_path / f"stderr-{level}.log"
    with stderr_path.open("wb") as stderr:
        peer = RpcPeer([*SERVER, "--log-file", str(log), "--log-level", level], stderr=stderr)
    try:
        peer.settings = fast_options(tiny_model_dir, hints=True)
        peer.initialize(peer.settings, CAPABILITIES)
        assert peer.wait_ready()["state"] == "ready"
        uri = "file:///private/secret.py"
        peer.open(uri, DOCUMENT, "python")
        change = {
            "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 0}}
        }
        peer.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": uri, "version": 2},
                "contentChanges": [{**change, "text": f"# {SECRET}\n"}],
            },
        )
        where = {"textDocument": {"uri": uri}, "position": {"line": 4, "character": 10}}
        peer.result("textDocument/inlineCompletion", {**where, "context": {"triggerKind": 1}})
        peer.result("textDocument/completion", where)
        whole = {"start": {"line": 0, "character": 0}, "end": {"line": 5, "character": 0}}
        actions = peer.result(
            "textDocument/codeAction",
            {"textDocument": {"uri": uri}, "range": whole, "context": {"diagnostics": []}},
        )
        for action in actions:
            peer.request("codeAction/resolve", action)
        for name in ("infill.rewrite", "infill.revise", "infill.fillHoles"):
            peer.request(
                "workspace/executeCommand",
                {"command": name, "arguments": [{"uri": uri, "range": whole, "apply": True}]},
            )
        peer.wait_for(
            lambda: any(n["method"] == DIAGNOSTICS for n in peer.notifications), 10
        )  # the hints ran too
        peer.result("infill/status")
        normal = log.read_text(errors="replace")
        # bad input that carries document text must not get logged either
        peer.request("textDocument/inlineCompletion", {**where, "position": {"line": SECRET}})
        peer.request("textDocument/codeAction", {"textDocument": {"uri": uri}, "text": SECRET})
        peer.send_bytes(frame(json.dumps({"text": SECRET}).encode()[:-3]))
        peer.wait_for(
            lambda: any(
                n["method"] == "textDocument/publishDiagnostics" for n in peer.notifications
            ),
            10,
        )
        assert peer.close() == 0
    finally:
        if peer.alive():
            peer.process.kill()
    everything = log.read_text(errors="replace") + stderr_path.read_text(errors="replace")
    return normal, everything[len(normal) :]


@pytest.fixture(scope="module")
def info_logs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    return run_session(tiny_model_dir, tmp_path_factory.mktemp("privacy"), "INFO")


def lines_with_secret(logged: str) -> list[str]:
    return [line for line in logged.splitlines() if SECRET in line][:3]


def test_logs_hold_no_document_text(info_logs: tuple[str, str]) -> None:
    normal, _ = info_logs
    assert "completion at" in normal  # the log is written, and about this session
    assert SECRET not in normal, lines_with_secret(normal)


def test_bad_input_is_logged_without_its_values(info_logs: tuple[str, str]) -> None:
    _, bad = info_logs
    assert "invalid params" in bad
    assert SECRET not in bad, lines_with_secret(bad)


def test_corpus_builder_stays_inside_and_skips_secrets(tmp_path: Path) -> None:
    tree, _ = build_tree(tmp_path)
    columns, report = collect([tree])
    kept = columns["train"]["path"] + columns["heldout"]["path"]
    texts = columns["train"]["text"] + columns["heldout"]["text"]
    assert not any(SECRET in text for text in texts)
    assert all(path.startswith("tree/src/") for path in kept), kept
    assert "tree/src/errors.py" in kept and "tree/inside_link.py" not in kept
    reasons = {reason: report.examples[reason] for reason in report.skipped}
    assert reasons["looks like a secret"].startswith(str(tree))
    assert report.skipped["looks like a secret"] >= 4  # .env, id_rsa, secrets.json, server.pem
    assert reasons["contains something like a secret"].endswith("aws.py")
    assert reasons["symlink out of the tree"].endswith("leak.py")
    assert reasons["symlink"].endswith(("private", "inside_link.py"))
    assert reasons["ignored by .gitignore"].endswith("ignored")
    summary = report.summary()
    for reason in reasons:
        assert reason in summary


def test_corpus_cli_reads_nothing_outside_and_says_what_it_skipped(
    train_inputs: TrainInputs,
) -> None:
    reads = [line for line in train_inputs.guard_log.read_text().splitlines() if "read:" in line]
    assert reads == [], reads  # the audit hook watched the folder next to the tree
    said = train_inputs.corpus_output
    for reason in (
        "looks like a secret",
        "contains something like a secret",
        "symlink out of the tree",
    ):
        assert reason in said, said
    corpus = load_corpus(train_inputs.corpus)
    for split in ("train", "heldout"):
        assert not any(SECRET in text for text in corpus[split]["text"])
