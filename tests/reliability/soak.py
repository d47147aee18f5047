"""Soak benchmark: hours of typing compressed into minutes against one real server process.

    python -m tests.reliability.soak --minutes 10 [--model DIR] [--out soak.json]

Several documents get random edits, each followed by an inline completion (mostly automatic,
some invoked); 30 % of the completions are cancelled after a random delay, as an editor does
while the user keeps typing. A few requests stay in flight at once. Every so often the server's
copy of a document is compared with ours (hole-marker probe, see test_fuzz). Reported: requests
served, cancelled, failed and hung (no answer within --limit seconds), latency percentiles, the
backlog of unanswered requests over time, and resident memory (growth after the warm-up).
Not run in CI; without --model it builds the tiny random test model.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.reliability.conftest import MARKER, fast_options
from tests.reliability.rpc import SERVER, RpcPeer
from tests.reliability.test_fuzz import Session, wire

SNIPPETS = [
    "x", "y = ", "return ", "(", ")", "self.", "def ", ":\n    ", "\n", "\r\n", "\t", "# note ",
    "é", "中", MARKER, "for i in range(", "if ", " and ", "print(", "'", '"', ", ", "[0]",
]  # fmt: skip
SOURCE = Path(__file__).resolve().parents[2] / "infill_lsp"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run")
    parser.add_argument("--model", help="model directory (default: a tiny random one)")
    parser.add_argument("--documents", type=int, default=4, help="documents edited in turn")
    parser.add_argument("--in-flight", type=int, default=4, help="requests in flight at most")
    parser.add_argument("--cancel", type=float, default=0.3, help="share of cancelled requests")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps (0: the model's)")
    parser.add_argument("--context", type=int, default=128, help="context tokens (0: default)")
    parser.add_argument("--limit", type=float, default=30.0, help="seconds before 'hung'")
    parser.add_argument("--warmup", type=float, default=0.2, help="share of the run that warms up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the figures here as JSON")
    parser.add_argument("--log", help="keep the server's log (stderr, INFO) here")
    return parser


class Soak:
    """The client side of one soak run and its tallies."""

    def __init__(self, peer: RpcPeer, args: argparse.Namespace) -> None:
        self.peer, self.args = peer, args
        self.rng = random.Random(args.seed)
        self.sent: dict[Any, tuple[float, bool]] = {}  # id -> (sent at, cancelled)
        self.latencies: list[float] = []
        self.counts = {
            "completions": 0, "with_items": 0, "empty": 0, "cancelled": 0,
            "cancel_sent": 0, "errors": 0, "hung": 0, "edits": 0, "sync_checks": 0,
        }  # fmt: skip
        self.backlog: list[tuple[float, int]] = []
        self.rss: list[tuple[float, int]] = []
        self.errors: list[str] = []

    def collect(self, block: bool) -> None:
        """Take every answer that arrived; with `block`, wait for the oldest first."""
        now = time.monotonic()
        for msg_id, (sent_at, cancelled) in list(self.sent.items()):
            wait = max(0.0, sent_at + self.args.limit - now) if block else 0.0
            try:
                response = (
                    self.peer.wait(msg_id, wait) if block else self.peer.responses.pop(msg_id)
                )
            except (KeyError, AssertionError):
                if time.monotonic() - sent_at > self.args.limit:
                    self.counts["hung"] += 1
                    del self.sent[msg_id]
                continue
            finally:
                block = False
            del self.sent[msg_id]
            error = response.get("error")
            if error is not None:
                kind = "cancelled" if error["code"] == -32800 else "errors"
                self.counts[kind] += 1
                if kind == "errors":
                    self.errors.append(str(error)[:200])
                continue
            if not cancelled:
                self.latencies.append(time.monotonic() - sent_at)
            self.counts["with_items" if response["result"]["items"] else "empty"] += 1

    def step(self, doc: Session) -> None:
        """One keystroke-ish edit and the completion it triggers (maybe cancelled)."""
        doc.edits(
            [
                (
                    self.rng.random(),
                    self.rng.choice([0, 0, 0, 1, 2, 5]),
                    "".join(self.rng.choices(SNIPPETS, k=self.rng.randint(0, 3))),
                    0,
                )
            ]
        )
        self.counts["edits"] += 1
        trigger = 1 if self.rng.random() < 0.2 else 2
        msg_id = self.peer.request_async(
            "textDocument/inlineCompletion",
            {
                "textDocument": {"uri": doc.uri},
                "position": doc.at(self.rng.random()),
                "context": {"triggerKind": trigger},
            },
        )
        self.counts["completions"] += 1
        cancel = self.rng.random() < self.args.cancel
        self.sent[msg_id] = (time.monotonic(), cancel)
        if cancel:
            time.sleep(self.rng.random() * 0.05)
            self.peer.notify("$/cancelRequest", {"id": msg_id})
            self.counts["cancel_sent"] += 1

    def run(self, docs: list[Session]) -> None:
        started = time.monotonic()
        end = started + self.args.minutes * 60
        last_sample = 0.0
        while time.monotonic() < end:
            doc = self.rng.choice(docs)
            self.step(doc)
            self.collect(block=len(self.sent) >= self.args.in_flight)
            now = time.monotonic()
            if now - last_sample >= 2.0:
                last_sample = now
                self.backlog.append((now - started, len(self.sent)))
                self.rss.append((now - started, self.peer.rss_kib()))
                assert self.peer.alive(), "the server exited"
            if self.counts["edits"] % 200 == 0:
                self.sync(doc)
        while self.sent and time.monotonic() < end + self.args.limit + 5:
            self.collect(block=True)
        self.counts["hung"] += len(self.sent)
        for doc in docs:
            self.sync(doc)

    def sync(self, doc: Session) -> None:
        doc.check_text()
        self.counts["sync_checks"] += 1

    def figures(self, seconds: float) -> dict[str, Any]:
        warm = self.args.minutes * 60 * self.args.warmup
        after = [kib for at, kib in self.rss if at >= warm] or [self.rss[-1][1]]
        base = after[0]
        lat = sorted(self.latencies) or [0.0]
        half = len(self.backlog) // 2
        return {
            **self.counts,
            "seconds": round(seconds, 1),
            "completions_per_second": round(self.counts["completions"] / seconds, 2),
            "latency_ms": {
                "p50": round(1000 * statistics.median(lat)),
                "p95": round(1000 * lat[int(0.95 * (len(lat) - 1))]),
                "max": round(1000 * lat[-1]),
            },
            "backlog": {
                "max": max((n for _, n in self.backlog), default=0),
                "mean_first_half": _mean([n for _, n in self.backlog[:half]]),
                "mean_second_half": _mean([n for _, n in self.backlog[half:]]),
            },
            "rss_mib": {
                "start": round(self.rss[0][1] / 1024, 1),
                "after_warmup": round(base / 1024, 1),
                "end": round(after[-1] / 1024, 1),
                "max": round(max(kib for _, kib in self.rss) / 1024, 1),
                "growth_after_warmup_percent": round(100 * (after[-1] - base) / base, 1),
            },
            "stdout_violations": len(self.peer.violations),
            "server_alive": self.peer.alive(),
            "error_examples": self.errors[:5],
        }


def _mean(values: list[int]) -> float:
    return round(statistics.fmean(values), 2) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="infill-soak-") as scratch:
        model = Path(args.model) if args.model else None
        if model is None:
            from tests.tiny_model import build_tiny_model

            model = build_tiny_model(Path(scratch) / "tiny")
        log = Path(args.log) if args.log else Path(scratch) / "server.log"
        with log.open("wb") as stderr:
            peer = RpcPeer([*SERVER, "--log-level", "INFO"], stderr=stderr)
        settings = fast_options(model)
        for key in ("steps", "maxSpanTokens", "contextTokens", "debounceMs"):
            settings.pop(key)  # the server's own defaults, except what the flags set
        if args.steps:
            settings["steps"] = args.steps
        if args.context:
            settings["contextTokens"] = args.context
        peer.settings = settings
        peer.initialize(settings, {"window": {"workDoneProgress": True}})
        assert peer.wait_ready()["state"] == "ready"
        sources = sorted(SOURCE.glob("*.py"))[: args.documents]
        docs = []
        for path in sources:
            doc = Session(peer, wire(path.read_text()))
            peer.open(doc.uri, doc.text)  # plaintext: fillHoles skips its parse check
            docs.append(doc)
        soak = Soak(peer, args)
        started = time.monotonic()
        try:
            soak.run(docs)
        except (AssertionError, OSError) as error:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print(f"soak stopped: {error!r}; server exit code {peer.process.poll()}; log tail:")
            print("\n".join(tail))
        finally:
            figures = soak.figures(time.monotonic() - started)
            figures["exit_code"] = peer.close()
        print(json.dumps(figures, indent=2))
        if args.out:
            Path(args.out).write_text(json.dumps(figures, indent=2) + "\n")
    ok = (
        figures["hung"] == 0
        and figures["errors"] == 0
        and figures["stdout_violations"] == 0
        and figures["rss_mib"]["growth_after_warmup_percent"] < 10
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
