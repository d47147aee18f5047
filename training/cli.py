"""`infill-train`: build a corpus, train a tokenizer, train, fine-tune and evaluate models.

Every failure the user can fix ends with one message on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from infill_lsp.errors import InfillError
from infill_lsp.options import LENGTH_RULES

SPAN_KINDS = ("line", "lines", "node")  # training.evaluate.KINDS, without importing torch here

log = logging.getLogger("infill-train")


class UsageError(Exception):
    """Bad input the user can fix."""


def _corpus(args: argparse.Namespace) -> None:
    from .corpus import build_corpus

    out = writable(Path(args.out))
    report = build_corpus([Path(p) for p in args.paths], out, args.exclude)
    print(report.summary())
    print(f"corpus written to {args.out}")


def _tokenizer(args: argparse.Namespace) -> None:
    from .corpus import load_corpus
    from .tokenizer import train_tokenizer

    texts = _sample_texts(load_corpus(Path(args.corpus))["train"]["text"], args.sample_chars)
    tokenizer = train_tokenizer(texts, args.vocab)
    out = writable(Path(args.out))
    out.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(out / "tokenizer.json"))
    print(f"tokenizer of {tokenizer.get_vocab_size()} tokens written to {out}")


def _sample_texts(texts: list[str], limit: int) -> list[str]:
    """A seeded random sample of files holding about `limit` characters."""
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    sample: list[str] = []
    total = 0
    for i in order:
        if total >= limit:
            break
        sample.append(texts[i])
        total += len(texts[i])
    return sample


def train_config(args: argparse.Namespace):  # -> TrainConfig
    """The TrainConfig of parsed `train` or `finetune` options (the baseline reuses it)."""
    from .objective import ObjectiveConfig
    from .train import TrainConfig

    schedule = args.schedule_tokens or args.max_tokens or 200_000_000
    # Document windows first (BENCHMARKS.md, session 12): by default the schedule's first half.
    dense = schedule // 2 if args.dense_tokens is None else args.dense_tokens
    return TrainConfig(
        size=args.size,
        batch=args.batch,
        lr=args.lr,
        max_tokens=args.max_tokens,
        max_minutes=args.max_minutes,
        schedule_tokens=schedule,
        # finetune: a sitting bounded by minutes decays over them unless tokens are given
        schedule_minutes=args.max_minutes
        if getattr(args, "schedule_by_clock", False)
        and not (args.schedule_tokens or args.max_tokens)
        else None,
        warmup_tokens=args.warmup_tokens,
        min_lr_ratio=args.min_lr_ratio,
        checkpoint_minutes=args.checkpoint_minutes,
        seed=args.seed,
        precision=args.precision,
        optimizer=args.optimizer,
        muon_lr=args.muon_lr,
        route=args.route,
        compile=args.compile,
        workers=args.workers,
        objective=ObjectiveConfig(
            context=args.context,
            corruption=args.corruption,
            document_share=args.document_share,
            # Windows hold up to `context` tokens (document windows nearly always that many).
            dense_windows=dense // args.context,
            language_mix=args.language_mix,
            **{
                name: getattr(args, name)
                for name in ("known_length_share", "too_short_share")
                if getattr(args, name) is not None
            },
        ),
    )


def _train(args: argparse.Namespace) -> None:
    from infill_lsp.model import load_model

    from .corpus import corpus_sources, load_corpus
    from .sizes import PRESETS, build_network
    from .tokenizer import load_tokenizer
    from .train import checkpoint_dir, resumable_network, train

    out = writable(Path(args.out))
    corpus = load_corpus(Path(args.corpus))["train"]
    start = None
    if args.init and not args.resume:  # continue a model directory's run with a fresh optimizer
        base = load_model(args.init)
        network, tokenizer = base.network, base.tokenizer
        start = _continued_state(base.metadata.get("recipe", {}))
    elif args.tokenizer:
        tokenizer = load_tokenizer(Path(args.tokenizer))
        network = build_network(args.size, tokenizer, max_positions=max(1024, args.context))
    elif args.resume:  # the checkpoint knows its network's shape and its tokenizer
        network, tokenizer = resumable_network(checkpoint_dir(out))
    else:
        raise UsageError("give --tokenizer DIR (make one with `infill-train tokenizer`) or --init")
    config = train_config(args)
    parameters = sum(p.numel() for p in network.parameters())
    metadata = {
        "recipe": {
            "size": f"{args.size} {PRESETS[args.size]}",
            "parameters": parameters,
            "corpus": corpus_sources(Path(args.corpus)),
        }
    }
    state = train(
        network, tokenizer, corpus["text"], corpus["language"], config, out,
        resume=args.resume, start=start, metadata=metadata, progress=not args.quiet,
    )  # fmt: skip
    print(f"trained {state.tokens:,} tokens in {state.seconds / 60:.1f} min; model at {out}")


def _continued_state(recipe: dict):  # -> TrainState
    """The counts a model directory's recipe records, to continue its run."""
    from .train import TrainState

    return TrainState(
        step=int(recipe.get("steps", 0)),
        tokens=int(recipe.get("tokens_seen", 0)),
        seconds=float(recipe.get("train_seconds", 0.0)),
        cpu_seconds=float(recipe.get("train_cpu_seconds", 0.0)),
        cpu_counted_from=int(recipe.get("cpu_counted_from_tokens", 0)),
        history=list(recipe.get("loss_curve", [])),
    )


def _finetune(args: argparse.Namespace) -> None:
    from infill_lsp.model import load_model

    from .corpus import build_corpus, load_corpus
    from .evaluate import EvalConfig, evaluate, format_report
    from .train import check_startable, diffusion_start, train

    out = writable(Path(args.out))
    source = args.init or args.base or "default"
    # float32 weights: the loop multiplies in bf16 where the hardware has it, never stores it
    base = load_model(None if source == "default" else source, dtype="float32")
    check_startable(base)
    with tempfile.TemporaryDirectory(prefix="infill-corpus-") as scratch:
        corpus_dir = Path(scratch) / "corpus"
        report = build_corpus([Path(args.repo)], corpus_dir, heldout_percent=args.heldout_percent)
        print(report.summary())
        corpus = load_corpus(corpus_dir)
        heldout = corpus["heldout"]
        if len(heldout) == 0:
            raise UsageError(f"{args.repo} has too few files to hold any out for evaluation")
        eval_config = EvalConfig(spans=args.eval_spans, kinds=("line",))
        before = evaluate(base, heldout["text"], heldout["language"], eval_config)
        print("before:\n" + format_report(before))
        network, tokenizer, names = diffusion_start(base)
        config = train_config(args)
        config = replace(config, objective=replace(config.objective, special_tokens=names))
        check_recipe(network, config)
        metadata = {**base.metadata, "finetuned_from": _model_name(source)}
        if base.family != "ours":  # its own tokens for the roles it has: recorded for loading
            ids = {role: tokenizer.token_to_id(text) for role, text in names.items()}
            metadata.update(special_tokens=names, token_ids=ids)
        state = train(
            network, tokenizer, corpus["train"]["text"], corpus["train"]["language"],
            config, out, metadata=metadata, progress=not args.quiet,
        )  # fmt: skip
        tuned = load_model(out)
        after = evaluate(tuned, heldout["text"], heldout["language"], eval_config)
        print("after:\n" + format_report(after))
        print(
            f"fine-tuned on {state.tokens:,} tokens in {state.seconds / 60:.1f} min; model at {out}"
        )


def check_recipe(network, config) -> None:  # (torch.nn.Module, TrainConfig)
    """UsageError when the options ask what this network cannot do (before any training)."""
    from .train import usable_positions

    limit = usable_positions(network)
    if config.objective.context > limit:
        raise UsageError(f"--context {config.objective.context} is more than this model's {limit}")
    if network.config.model_type != "modernbert":
        kind = network.config.model_type
        if config.route > 0:
            raise UsageError(f"--route works on ModernBERT layers, not {kind}'s")
        if config.optimizer == "muon":
            raise UsageError(f"--optimizer muon knows ModernBERT's layers, not {kind}'s")


def _model_name(base: str) -> str:
    """The base of a fine-tune as its metadata names it (never this machine's path)."""
    from importlib import metadata

    from .corpus import describe_source

    if base == "default":
        try:
            return f"the default model of infill-lsp {metadata.version('infill-lsp')}"
        except metadata.PackageNotFoundError:
            return "the default model of infill-lsp"
    return describe_source(Path(base))


def _eval(args: argparse.Namespace) -> None:
    from infill_lsp.model import load_model

    from .corpus import build_corpus, load_corpus
    from .evaluate import EvalConfig, evaluate, format_report

    model = load_model(None if args.model == "default" else args.model)
    if args.repo:
        scratch = tempfile.TemporaryDirectory(prefix="infill-corpus-")
        corpus_dir = Path(scratch.name) / "corpus"
        build_corpus([Path(args.repo)], corpus_dir)
    elif args.corpus:
        corpus_dir = Path(args.corpus)
    else:
        raise UsageError("give --corpus DIR or --repo PATH")
    heldout = load_corpus(corpus_dir)["heldout"]
    config = EvalConfig(
        spans=args.spans,
        kinds=tuple(args.kinds),
        seed=args.seed,
        steps=args.steps,
        length=args.length,
        accuracy_windows=0 if args.no_accuracy else EvalConfig.accuracy_windows,
    )
    if args.lengths_decoded is not None:
        config = replace(config, lengths_decoded=args.lengths_decoded)
    report = evaluate(model, heldout["text"], heldout["language"], config)
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if args.record:
        from .card import record

        record(model.directory, evaluation=report)
        print(f"recorded in {model.directory / 'infill.json'} and its README.md")


def writable(out: Path) -> Path:
    """Refuse an output folder that cannot be written before any work is done."""
    parent = out.parent if not out.exists() else out
    while not parent.exists():
        parent = parent.parent
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        raise UsageError(f"cannot write to {out}: {error.strerror or error}") from error
    return out


def _count(text: str) -> int:
    """A whole number, 0 or more (argparse type)."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, 0 or more, got {text!r}")
    return int(text)


def _share(text: str) -> float:
    """A share from 0 to 1 (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def add_train_options(sub: argparse.ArgumentParser, lr: float) -> None:
    """The options `train`, `finetune` and the baseline share; `lr` is the default peak rate."""
    sub.add_argument("--batch", type=int, default=32, help="sequences per step")
    sub.add_argument("--context", type=int, default=256, help="tokens per window")
    sub.add_argument("--lr", type=float, default=lr, help="peak learning rate")
    sub.add_argument("--max-tokens", type=int, help="stop after this many tokens in all")
    sub.add_argument("--max-minutes", type=float, help="stop after this many minutes")
    sub.add_argument("--schedule-tokens", type=int, help="length of the cosine LR decay")
    sub.add_argument("--warmup-tokens", type=int, default=1_000_000)
    sub.add_argument(
        "--min-lr-ratio", type=float, default=0.1, help="the decay's floor, as a share of --lr"
    )
    sub.add_argument("--checkpoint-minutes", type=float, default=10.0)
    sub.add_argument(
        "--workers",
        type=_count,
        default=0,
        help="processes that build batches ahead of the loop (for a GPU; 0: the loop builds them)",
    )
    sub.add_argument("--corruption", type=float, default=0.0, help="random-token share")
    sub.add_argument(
        "--document-share", type=_share, default=0.5, help="share of windows in document mode"
    )
    sub.add_argument(
        "--dense-tokens",
        type=_count,
        help="the first N tokens of the run (counted from its start, through --init and --resume) "
        "are all document windows, whose labels are dense; the mix after (train's default: the "
        "first half of --schedule-tokens; finetune's: 0)",
    )
    sub.add_argument(
        "--known-length-share",
        type=_share,
        help="share of infill windows whose fillers stay visible (the length is told; "
        "default: the objective's)",
    )
    sub.add_argument(
        "--too-short-share",
        type=_share,
        help="share of untold infill windows whose canvas is too short, so the model learns to "
        "say expand (default: the objective's)",
    )
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument(
        "--precision",
        choices=("auto", "bf16", "fp32"),
        default="auto",
        help="matrix products in bf16 (auto: where the hardware does bf16 natively)",
    )
    sub.add_argument(
        "--optimizer",
        choices=("adamw", "muon"),
        default="adamw",
        help="muon: Muon for the hidden weight matrices, AdamW for the rest",
    )
    sub.add_argument("--muon-lr", type=float, default=0.02, help="Muon's peak learning rate")
    sub.add_argument(
        "--route",
        type=_share,
        default=0.0,
        help="share of tokens that skip the middle layers in training (TREAD; 0: off)",
    )
    sub.add_argument(
        "--compile", action="store_true", help="torch.compile the training step (slow to start)"
    )
    sub.add_argument(
        "--language-mix",
        type=float,
        default=1.0,
        help="each language's share of windows goes as its share of characters to this power",
    )
    sub.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="infill-train", description=__doc__)
    parser.add_argument("--log-level", default="WARNING")
    subs = parser.add_subparsers(dest="command", required=True)

    corpus = subs.add_parser("corpus", help="build a corpus from directories")
    corpus.add_argument("paths", nargs="+", help="directories of source code")
    corpus.add_argument("--out", required=True, help="corpus directory to write")
    corpus.add_argument("--exclude", action="append", default=[], help="skip folders named so")
    corpus.set_defaults(run=_corpus)

    tokenizer = subs.add_parser("tokenizer", help="train a byte-level BPE tokenizer")
    tokenizer.add_argument("--corpus", required=True)
    tokenizer.add_argument("--vocab", type=int, default=8192)
    tokenizer.add_argument("--sample-chars", type=int, default=40_000_000)
    tokenizer.add_argument("--out", required=True)
    tokenizer.set_defaults(run=_tokenizer)

    from .sizes import PRESETS

    train = subs.add_parser("train", help="train a model from scratch")
    train.add_argument("--corpus", required=True)
    train.add_argument("--tokenizer", help="tokenizer directory")
    train.add_argument(
        "--init",
        help="continue from this model directory's weights and counts; a fresh optimizer warms up",
    )
    train.add_argument("--size", choices=sorted(PRESETS), default="small")
    train.add_argument("--out", required=True, help="model directory to write")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    add_train_options(train, lr=1e-3)
    # The recipe that reached v6's held-out accuracy in 0.44 of its CPU hours (BENCHMARKS.md,
    # session 13): 1,024 tokens a step, a short warm-up, a low floor.
    train.set_defaults(run=_train, batch=4, warmup_tokens=500_000, min_lr_ratio=0.05)

    finetune = subs.add_parser("finetune", help="fine-tune a model on a codebase")
    finetune.add_argument("--repo", required=True, help="the codebase")
    start = finetune.add_mutually_exclusive_group()
    start.add_argument("--base", help="'default' (the default) or one of our model directories")
    start.add_argument(
        "--init",
        metavar="DIR",
        help="start from a Hugging Face masked-LM folder (RoBERTa, BERT, ModernBERT... with "
        "model.safetensors and tokenizer.json) or one of our model directories",
    )
    finetune.add_argument("--out", required=True)
    finetune.add_argument("--heldout-percent", type=int, default=10)
    finetune.add_argument("--eval-spans", type=int, default=200)
    add_train_options(finetune, lr=3e-4)
    # A fine-tune is a sitting of minutes: bounded by default, with a short warm-up, and its decay
    # reaches the floor when the minutes are up (BENCHMARKS.md, session 14: batch 8 and that decay
    # beat batch 32 at a rate that hardly decayed).
    finetune.set_defaults(
        run=_finetune, size="finetune", max_minutes=15.0, warmup_tokens=200_000, dense_tokens=0,
        batch=8, schedule_by_clock=True,
    )  # fmt: skip

    evaluate = subs.add_parser("eval", help="measure a model on held-out files")
    evaluate.add_argument("--model", default="default")
    evaluate.add_argument("--corpus")
    evaluate.add_argument("--repo")
    evaluate.add_argument("--spans", type=int, default=300, help="spans per kind")
    evaluate.add_argument(
        "--kinds",
        nargs="+",
        choices=SPAN_KINDS,
        default=list(SPAN_KINDS),
        help="span kinds to measure",
    )
    evaluate.add_argument(
        "--no-accuracy", action="store_true", help="skip masked-token accuracy (infill only)"
    )
    evaluate.add_argument("--steps", type=int, default=16)
    evaluate.add_argument(
        "--length",
        choices=LENGTH_RULES,
        help="how an unknown span length is found (default: the model's own, as the server)",
    )
    evaluate.add_argument(
        "--lengths-decoded",
        type=int,
        help="searching: the best-ranked lengths decoded in full and compared (the engine's "
        "default: 1)",
    )
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--json", help="also write the report here")
    evaluate.add_argument(
        "--record", action="store_true", help="write the report into the model's card"
    )
    evaluate.set_defaults(run=_eval)
    return parser


# The modules of pyproject's `train` extra. Without them every command stops in one line that
# names the install: the server's plain install leaves them out (about 270 MB, pyarrow and pandas).
TRAIN_EXTRA_MODULES = ("pathspec", "datasets", "accelerate", "tqdm")


def missing_train_extras() -> list[str]:
    """The `train` extra's modules this Python cannot import."""
    from importlib.util import find_spec

    missing = []
    for name in TRAIN_EXTRA_MODULES:
        try:
            found = find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or blocked install
            found = False
        if not found:
            missing.append(name)
    return missing


def train_extras_install() -> str:
    """The pip command that adds the `train` extra to this very installation."""
    import shlex
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    python, requirement = shlex.quote(sys.executable), "infill-lsp[train]"
    try:
        url = json.loads(metadata.distribution("infill-lsp").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        url = {}
    editable = url.get("dir_info", {}).get("editable", False)
    if editable and url.get("url", "").startswith("file://"):  # pip install -e CHECKOUT
        checkout = unquote(urlparse(url["url"]).path)
        return f"{python} -m pip install -e {shlex.quote(checkout + '[train]')}"
    return f"{python} -m pip install {shlex.quote(requirement)}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    missing = missing_train_extras()
    if missing:
        print(
            f"infill-train: the training extras are not installed (missing: {', '.join(missing)});"
            f" install them with: {train_extras_install()}",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    try:
        args.run(args)
    except (UsageError, InfillError) as error:
        print(f"infill-train: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # corpus, training and disk errors carry their own message
        from safetensors import SafetensorError

        from .corpus import CorpusError
        from .train import TrainingError

        if isinstance(error, CorpusError | TrainingError | OSError | SafetensorError):
            print(f"infill-train: {error}", file=sys.stderr)
            return 2
        raise
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
