"""Quality per CPU second: training recipes compared at the same CPU time (issue 21).

    python -m tests.bench efficiency [--quick] [--cpu-minutes 5] [--recipes current,muon,...]

Every recipe starts from the same weights (same shape, same seed), reads the same data in the
same order (the data-mix recipe aside, whose point is another order) and trains for the same
budget of process CPU time (all threads). The recipes run in one process, interleaved in
slices of a few CPU seconds, so whatever else the machine does falls on every recipe alike;
each trainer counts only its own steps. At fixed shares of the budget each is measured on the
held-out split: masked-token accuracy at t = 0.15 / 0.5 / 0.9 (one pass, argmax) and single
lines filled exactly, with the length unknown (the engine's length search) and told (a canvas
of exactly the right size). torch.compile's first steps are charged to a compile account, not
to the budget, and reported. Results land in --out as efficiency.json and efficiency.md.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from infill_lsp.model import DEFAULT_MODEL_DIR, InfillModel
from infill_train.corpus import is_heldout
from infill_train.evaluate import EvalConfig, evaluate, masked_scores
from infill_train.objective import ObjectiveConfig
from infill_train.sizes import Size, build_network
from infill_train.tokenizer import load_tokenizer
from infill_train.train import TrainConfig, Trainer, native_bf16
from tests.bench.common import STDLIB, log, machine, median

RATIOS = (0.15, 0.5, 0.9)


@dataclass(frozen=True)
class Recipe:
    """One way to train, as changes to the current recipe."""

    name: str
    what: str
    size: str = "small"
    precision: str = "auto"
    optimizer: str = "adamw"
    muon_lr: float = 0.02
    route: float = 0.0
    compile: bool = False
    language_mix: float = 1.0
    # The run's batch and training window unless the recipe is about them (None: the run's).
    batch: int | None = None
    context: int | None = None
    lr_scale: float = 1.0  # times the run's learning rate
    lr: float | None = None  # a rate of its own instead
    document_share: float | None = None  # share of windows in document mode (None: the objective's)


RECIPES = {
    r.name: r
    for r in (
        Recipe(
            "current",
            "small, AdamW, bf16 where native, the objective's mix of windows throughout",
        ),
        Recipe("fp32", "float32 matrix products", precision="fp32"),
        Recipe("compiled", "bf16 with torch.compile on the forward and loss", compile=True),
        Recipe("muon", "Muon (lr 0.02) for hidden matrices, AdamW for the rest", optimizer="muon"),
        Recipe("muon-low", "Muon at lr 0.005, AdamW for the rest", optimizer="muon", muon_lr=0.005),
        Recipe("routed", "TREAD: half the tokens skip layers 1-2 of 4", route=0.5),
        Recipe("muon-routed", "Muon and TREAD routing together", optimizer="muon", route=0.5),
        Recipe("wide", "4 layers x 384 (base's width)", size="wide"),
        Recipe("deep", "8 layers x 192 (base's depth, narrower)", size="deep"),
        Recipe("base", "8 layers x 384", size="base"),
        Recipe("mix", "language shares flattened: (share of characters) ** 0.5", language_mix=0.5),
        # How the default model was grown (scripts/train_default_model.sh): 16 windows of 256,
        # at 1e-3 for its first 28 M tokens (the steep part of its curve), 5e-4 after.
        Recipe(
            "v6",
            "the default model's shape of batch, 16 x 256, at the run's rate",
            batch=16,
            context=256,
        ),
        Recipe(
            "v6-start",
            "the default model's first sitting: 16 x 256 at lr 1e-3",
            batch=16,
            context=256,
            lr=1e-3,
        ),
        Recipe("lr2x", "twice the run's learning rate", lr_scale=2.0),
        Recipe("lr4x", "four times the run's learning rate", lr_scale=4.0),
        # Label density: a document window supervises about half its tokens, an infill window
        # only its span and canvas (a few dozen), for the same forward and backward pass.
        Recipe(
            "dense", "document windows only (every window about half labels)", document_share=1.0
        ),
        Recipe(
            "dense-lr2x",
            "document windows only, twice the run's learning rate",
            document_share=1.0,
            lr_scale=2.0,
        ),
    )
}
QUICK_SIZES = {  # shapes of the same kinds, small enough for CI
    "small": Size(layers=3, hidden=32, heads=2, intermediate=64),
    "wide": Size(layers=3, hidden=48, heads=2, intermediate=96),
    "deep": Size(layers=6, hidden=24, heads=2, intermediate=48),
    "base": Size(layers=6, hidden=48, heads=2, intermediate=96),
}


@dataclass
class Settings:
    """How much work one comparison does."""

    cpu_seconds: float = 120.0  # training budget per recipe
    slice_seconds: float = 10.0  # interleaving: each recipe trains this long, then the next
    marks: tuple[float, ...] = (0.5, 1.0)  # shares of the budget where all are measured
    batch: int = 8  # small batches: more steps in a short budget
    context: int = 128
    # Held-out windows are this long for every recipe, whatever window it trains on: the
    # server reads up to 256 tokens around the cursor.
    eval_context: int = 256
    lr: float = 1e-3
    warmup_tokens: int = 20_000
    windows: int = 64  # held-out windows per mask ratio
    spans: int = 24  # held-out single lines, at the end (decoding them costs the most)
    language_windows: int = 8  # per language, at the end
    seed: int = 0
    against: str = "current"  # the recipe every other is measured against

    @classmethod
    def quick(cls) -> Settings:
        return cls(cpu_seconds=2.0, slice_seconds=0.5, marks=(1.0,), batch=4, context=64,
                   eval_context=64, lr=3e-3, warmup_tokens=500, windows=4, spans=2,
                   language_windows=2)  # fmt: skip


@dataclass
class Data:
    train_texts: list[str]
    train_languages: list[str]
    heldout_texts: list[str]
    heldout_languages: list[str]
    source: str


def load_data(corpus: Path | None, quick: bool) -> Data:
    """A corpus's splits, or (quick) standard-library files split by the corpus's own rule."""
    if corpus is not None and (corpus / "corpus.json").is_file():
        from infill_train.corpus import load_corpus

        splits = load_corpus(corpus)
        train, heldout = splits["train"], splits["heldout"]
        return Data(list(train["text"]), list(train["language"]), list(heldout["text"]),
                    list(heldout["language"]), str(corpus))  # fmt: skip
    paths = sorted(STDLIB.glob("*.py"))[: 60 if quick else None]
    texts = {p.name: p.read_text(encoding="utf-8", errors="replace") for p in paths}
    train = [t for name, t in texts.items() if not is_heldout(name, 20)]
    heldout = [t for name, t in texts.items() if is_heldout(name, 20)]
    return Data(train, ["python"] * len(train), heldout, ["python"] * len(heldout),
                f"{STDLIB}/*.py")  # fmt: skip


def matmul_rates(repeats: int = 5) -> dict[str, float]:
    """GFLOP/s of float32 and bf16 matrix products: square 2048, and the model's own shape."""
    rates: dict[str, float] = {}
    for label, (m, k, n) in (("2048", (2048, 2048, 2048)), ("600x256x768", (600, 256, 768))):
        for dtype in (torch.float32, torch.bfloat16):
            a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
            for _ in range(3):
                a @ b
            times = []
            inner = max(1, int(1e9 // (2 * m * k * n)))
            for _ in range(repeats):
                started = time.perf_counter()
                for _ in range(inner):
                    a @ b
                times.append((time.perf_counter() - started) / inner)
            name = "fp32" if dtype == torch.float32 else "bf16"
            rates[f"{label} {name}"] = round(2 * m * k * n / median(times) / 1e9, 1)
    return rates


class Contestant:
    """One recipe's trainer and what was measured of it."""

    def __init__(self, recipe: Recipe, settings: Settings, data: Data, quick: bool) -> None:
        self.recipe = recipe
        tokenizer = load_tokenizer(DEFAULT_MODEL_DIR)
        shape: str | Size = QUICK_SIZES[recipe.size] if quick else recipe.size
        torch.manual_seed(settings.seed)  # the same start for every recipe of one shape
        context = settings.context if recipe.context is None else recipe.context
        network = build_network(shape, tokenizer, max_positions=max(1024, context))
        self.parameters = sum(p.numel() for p in network.parameters())
        objective = ObjectiveConfig(context=context, language_mix=recipe.language_mix)
        if recipe.document_share is not None:
            objective = replace(objective, document_share=recipe.document_share)
        config = TrainConfig(
            size=recipe.size, batch=settings.batch if recipe.batch is None else recipe.batch,
            lr=settings.lr * recipe.lr_scale if recipe.lr is None else recipe.lr,
            warmup_tokens=settings.warmup_tokens, schedule_tokens=10**12, min_lr_ratio=1.0,
            checkpoint_minutes=1e9, seed=settings.seed, precision=recipe.precision,
            optimizer=recipe.optimizer, muon_lr=recipe.muon_lr, route=recipe.route,
            compile=recipe.compile, objective=objective,
        )  # fmt: skip
        self.trainer = Trainer(network, tokenizer, data.train_texts, data.train_languages, config)
        self.spent = 0.0  # CPU seconds charged to the budget
        self.compile_seconds = 0.0  # CPU seconds of steps that compiled
        self.step_seconds: list[float] = []
        self.points: list[dict[str, Any]] = []

    def train_until(self, cpu_seconds: float) -> None:
        """Train until this recipe has spent `cpu_seconds` of its budget."""
        while self.spent < cpu_seconds:
            compiled_before = _compilations()
            started = time.process_time()
            self.trainer.step()
            used = time.process_time() - started
            if self.recipe.compile and _compilations() != compiled_before:
                # A step that compiled: charge what a plain step costs, account the rest apart.
                typical = median(self.step_seconds[-20:]) if self.step_seconds else 0.0
                self.compile_seconds += used - typical
                used = typical
            else:
                self.step_seconds.append(used)
            self.spent += used

    def measure(self, data: Data, settings: Settings, final: bool) -> dict[str, Any]:
        """Held-out quality now (its CPU time is not charged to the budget)."""
        network = self.trainer.model
        network.eval()
        model = InfillModel(
            directory=Path(self.recipe.name), network=network, tokenizer=self.trainer.tokenizer,
            ids=self.trainer.ids,
        )  # fmt: skip
        # Lines are decoded at the end only: an untrained model decodes slowly and fills none.
        config = EvalConfig(spans=settings.spans, kinds=("line",) if final else (),
                            seed=settings.seed, context=settings.eval_context, mask_ratios=RATIOS,
                            accuracy_windows=settings.windows)  # fmt: skip
        report = evaluate(model, data.heldout_texts, data.heldout_languages, config)
        point: dict[str, Any] = {
            "cpu_seconds": round(self.spent, 1),
            "tokens": self.trainer.state.tokens,
            "steps": self.trainer.state.step,
            "loss": round(self.trainer.state.loss, 4),
            "masked_accuracy": report["masked_accuracy"],
            "masked_loss": report["masked_loss"],
        }
        if final:
            point["line_exact"] = report["line"]["exact"]
            point["line_exact_told"] = report["line"]["oracle_exact"]
            point["lines"] = report["line"]["spans"]
            point["by_language"] = by_language(model, data, settings)
        network.train()
        self.points.append(point)
        return point


def by_language(model: InfillModel, data: Data, settings: Settings) -> dict[str, Any]:
    """Masked-token accuracy per language of the held-out split."""
    report: dict[str, Any] = {}
    for language in sorted(set(data.heldout_languages)):
        texts = [t for t, lang in zip(data.heldout_texts, data.heldout_languages, strict=True)
                 if lang == language]  # fmt: skip
        if len(texts) >= 3:
            accuracy, _ = masked_scores(model, texts, RATIOS, settings.language_windows,
                                        settings.eval_context, settings.seed)  # fmt: skip
            report[language] = {"files": len(texts), **accuracy}
    return report


def _compilations() -> int:
    """How many graphs torch.compile has compiled in this process so far."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return 0
    return int(sum(counters["stats"].values()))


def run(
    recipes: list[Recipe], settings: Settings, data: Data, quick: bool, out: Path
) -> dict[str, Any]:
    """Train every recipe for the same CPU budget, interleaved; measure at the marks."""
    results: dict[str, Any] = {
        "run": {**machine(), "heldout": data.source, "settings": asdict(settings),
                "native_bf16": native_bf16(), "quick": quick,
                "train_files": len(data.train_texts), "heldout_files": len(data.heldout_texts)},
    }  # fmt: skip
    log("matrix products, fp32 and bf16 ...")
    results["matmul_gflops"] = matmul_rates(2 if quick else 3)
    contestants = [Contestant(r, settings, data, quick) for r in recipes]
    marks = [settings.cpu_seconds * m for m in settings.marks]
    started = time.monotonic()

    def save() -> None:
        results["wall_seconds"] = round(time.monotonic() - started, 1)
        results["recipes"] = [
            {**asdict(c.recipe), "parameters": c.parameters, "points": c.points,
             "compile_cpu_seconds": round(c.compile_seconds, 1),
             "cpu_ms_per_token": round(1000 * c.spent / max(1, c.trainer.state.tokens), 4)}
            for c in contestants
        ]  # fmt: skip
        results["summary"] = summarize(results["recipes"], settings.against)
        out.mkdir(parents=True, exist_ok=True)
        (out / "efficiency.json").write_text(json.dumps(results, indent=2) + "\n")
        (out / "efficiency.md").write_text(render(results))

    reached = 0.0
    for mark in marks:
        while reached < mark:
            reached = min(mark, reached + settings.slice_seconds)
            for contestant in contestants:
                contestant.train_until(reached)
            tokens = ", ".join(f"{c.recipe.name} {c.trainer.state.tokens:,}" for c in contestants)
            log(f"{reached:.0f} CPU s each: {tokens} tokens")
        log(f"{mark:.0f} CPU s each: measuring ...")
        for contestant in contestants:
            point = contestant.measure(data, settings, final=mark == marks[-1])
            log(f"  {contestant.recipe.name}: {point['tokens']:,} tokens, loss {point['loss']}, "
                f"accuracy {_accuracy_cells(point)}")  # fmt: skip
        save()
    return results


def _line_cells(point: dict[str, Any]) -> str:
    """Single lines exact, length unknown / told; measured at the end only."""
    if "line_exact" not in point:
        return "not yet measured"
    return f"{100 * point['line_exact']:.1f} / {100 * point['line_exact_told']:.1f} %"


def _accuracy_cells(point: dict[str, Any]) -> str:
    return " / ".join(f"{100 * point['masked_accuracy'][f'{r:g}']:.1f}" for r in RATIOS)


def mean_loss(point: dict[str, Any]) -> float:
    """Held-out masked loss (nats per masked token), averaged over the mask ratios."""
    losses = point.get("masked_loss") or {}
    return sum(losses.values()) / len(losses) if losses else math.nan


def summarize(recipes: list[dict[str, Any]], against: str = "current") -> dict[str, Any]:
    """Each recipe's speed against the reference one (`against`): the CPU time the reference
    needs for the recipe's final held-out loss (mean over the mask ratios), and for its final
    accuracy at t = 0.15, read off the reference's curve (straight in log CPU time between
    measured points, the fitted line beyond them), over the recipe's own CPU time. The loss
    moves from the first steps; the accuracy only once the model predicts more than the
    commonest token."""
    reference = next((r for r in recipes if r["name"] == against), None)
    if reference is None or not reference["points"]:
        return {}
    accuracy = [(p["cpu_seconds"], p["masked_accuracy"]["0.15"]) for p in reference["points"]]
    loss = [(p["cpu_seconds"], -mean_loss(p)) for p in reference["points"]]
    summary = {}
    for recipe in recipes:
        if not recipe["points"]:
            continue
        last = recipe["points"][-1]
        needed = cpu_for_accuracy(accuracy, last["masked_accuracy"]["0.15"])
        needed_loss = cpu_for_accuracy(loss, -mean_loss(last))
        summary[recipe["name"]] = {
            "accuracy_gain_points": round(
                100 * (last["masked_accuracy"]["0.15"] - accuracy[-1][1]), 2
            ),
            "speedup": None if needed is None else round(needed / last["cpu_seconds"], 2),
            "loss_gain": round(-mean_loss(last) - loss[-1][1], 4),
            "speedup_by_loss": (
                None if needed_loss is None else round(needed_loss / last["cpu_seconds"], 2)
            ),
        }
    return summary


def cpu_for_accuracy(curve: list[tuple[float, float]], accuracy: float) -> float | None:
    """CPU seconds at which a curve of (CPU seconds, accuracy) reaches `accuracy`."""
    points = [(math.log(max(c, 1e-9)), a) for c, a in curve]
    for (x0, a0), (x1, a1) in itertools.pairwise(points):
        if min(a0, a1) <= accuracy <= max(a0, a1) and a1 != a0:
            return math.exp(x0 + (accuracy - a0) * (x1 - x0) / (a1 - a0))
    if len(points) < 2:
        return None
    # Least squares: accuracy = slope * log(cpu) + offset, over every measured point.
    mx = sum(x for x, _ in points) / len(points)
    ma = sum(a for _, a in points) / len(points)
    spread = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (a - ma) for x, a in points) / spread if spread else 0.0
    if slope <= 0:
        return None
    return math.exp(mx + (accuracy - ma) / slope)


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    run_info, settings = results["run"], results["run"]["settings"]
    against = settings.get("against", "current")
    lines = [
        "# Training efficiency: held-out quality at equal CPU time",
        "",
        f"{run_info['cpu']}, {run_info['cores']} cores, torch {run_info['torch']}; native bf16: "
        f"{run_info['native_bf16']}; budget {settings['cpu_seconds']:.0f} CPU s per recipe "
        f"(process time, all threads), interleaved in {settings['slice_seconds']:.0f} s slices; "
        f"batch {settings['batch']} x {settings['context']} unless a recipe says otherwise; "
        f"held-out: {run_info['heldout']} ({settings['windows']} windows of "
        f"{settings.get('eval_context', settings['context'])} tokens per ratio, "
        f"{settings['spans']} single lines); "
        f"wall {results.get('wall_seconds', 0) / 60:.1f} min.",
        "",
        "Matrix products (GFLOP/s): "
        + ", ".join(f"{k}: {v}" for k, v in results["matmul_gflops"].items()),
        "",
        "| recipe | params | CPU s | tokens | CPU ms / token | held-out loss | "
        f"masked acc. t = 0.15 / 0.5 / 0.9 | line exact (unknown / told) | vs {against}: "
        "t = 0.15 "
        "| speed-up by loss | by accuracy | compile CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summary = results.get("summary", {})
    for recipe in results.get("recipes", []):
        if not recipe["points"]:
            continue
        last = recipe["points"][-1]
        versus = summary.get(recipe["name"], {})
        speedup, by_loss = versus.get("speedup"), versus.get("speedup_by_loss")
        lines.append(
            f"| {recipe['name']} | {recipe['parameters'] / 1e6:.2f} M | {last['cpu_seconds']:.0f} "
            f"| {last['tokens']:,} | {recipe['cpu_ms_per_token']} | {mean_loss(last):.3f} "
            f"| {_accuracy_cells(last)} % | {_line_cells(last)} "
            f"| {versus.get('accuracy_gain_points', 0):+.1f} "
            f"| {'-' if by_loss is None else f'{by_loss:.2f}x'} "
            f"| {'-' if speedup is None else f'{speedup:.2f}x'} "
            f"| {recipe['compile_cpu_seconds'] if recipe['compile'] else '-'} |"
        )
    lines += ["", "Curves (held-out loss; masked accuracy at t = 0.15; at each mark, CPU s):", ""]
    for recipe in results.get("recipes", []):
        cells = ", ".join(
            f"{p['cpu_seconds']:.0f} s: {mean_loss(p):.3f}, "
            f"{100 * p['masked_accuracy']['0.15']:.1f} %"
            for p in recipe["points"]
        )
        lines.append(f"- {recipe['name']} ({recipe['what']}): {cells}")
    finals = [r["points"][-1].get("by_language", {}) for r in results.get("recipes", [])
              if r["points"]]  # fmt: skip
    languages = sorted({language for final in finals for language in final})
    if languages:
        lines += ["", "Held-out masked accuracy at t = 0.5 by language, at the end:", "",
                  "| recipe | " + " | ".join(languages) + " |",
                  "|---|" + "---|" * len(languages)]  # fmt: skip
        for recipe in results["recipes"]:
            table = recipe["points"][-1].get("by_language", {}) if recipe["points"] else {}
            cells = [f"{100 * table[lang]['0.5']:.1f}" if lang in table else "-"
                     for lang in languages]  # fmt: skip
            lines.append(f"| {recipe['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(args: Any) -> dict[str, Any]:
    """Entry point of `python -m tests.bench efficiency`."""
    settings = Settings.quick() if args.quick else Settings()
    if args.cpu_minutes is not None:
        settings.cpu_seconds = 60 * args.cpu_minutes
    if args.slice_seconds is not None:
        settings.slice_seconds = args.slice_seconds
    for name in ("batch", "context", "eval_context", "lr", "warmup_tokens"):
        if getattr(args, name, None) is not None:
            setattr(settings, name, getattr(args, name))
    if getattr(args, "marks", None):
        settings.marks = tuple(sorted(float(m) for m in args.marks.split(",")))
    default = QUICK_RECIPES if args.quick else tuple(RECIPES)
    names = args.recipes.split(",") if args.recipes else list(default)
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        raise SystemExit(f"unknown recipes {unknown}; known: {', '.join(RECIPES)}")
    if getattr(args, "against", None):
        settings.against = args.against
    if settings.against not in names:
        names.insert(0, settings.against)  # every recipe is measured against it in the same run
    if args.threads:
        torch.set_num_threads(args.threads)
    corpus = Path(args.corpus) if args.corpus else None
    if corpus is None and not args.quick and Path("runs/corpus-default").is_dir():
        corpus = Path("runs/corpus-default")
    data = load_data(corpus, args.quick)
    log(f"{len(names)} recipes x {settings.cpu_seconds:.0f} CPU s; {data.source}; "
        f"pid {os.getpid()}")  # fmt: skip
    recipes = [replace(RECIPES[n]) for n in names]
    return run(recipes, settings, data, args.quick, Path(args.out))


# CI: every code path but compilation (minutes of C++ compiling on a cold cache).
QUICK_RECIPES = ("current", "muon", "routed", "deep", "mix")
