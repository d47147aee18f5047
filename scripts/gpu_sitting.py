"""One time-boxed training sitting on a CUDA machine: continue a model on the corpus.

How the seventh default model was made (BENCHMARKS.md, "A sitting on a GPU"): the shipped sixth
model, trained on for 516 s on one GPU by the project's own loop (`Trainer`), batches built by
worker processes. The decay follows the clock (`TrainConfig.schedule_minutes`: cosine to the
floor at the deadline), since the throughput is unknown until the run starts; the warm-up counts
from the initial model's tokens. (v7's sitting warmed up over the first 4 % of its time, by a
schedule this script then patched into the loop; the loop now has both mechanisms itself.)
Snapshots go to --out as a tar in two halves (each under 16 MiB, for machines that hand back only
small files; `cat` joins them), two alternating sets with the newest complete one named in
latest.json, so a kill loses little.

The GPU machine needs torch, transformers, accelerate, tokenizers, safetensors and tree-sitter
with the corpus's grammars, not `datasets`: the corpus travels as JSON lines, xz-compressed
(40 MB for the default corpus's 278 M characters), written from an `infill-train corpus` folder:

    .venv/bin/python -c "import json, lzma, datasets; f = lzma.open('train.jsonl.xz', 'wt');
    [f.write(json.dumps({'text': r['text'], 'language': r['language']}) + '\\n')
     for r in datasets.load_from_disk('runs/corpus-default')['train']]"

    python3 scripts/gpu_sitting.py --corpus train.jsonl.xz --out OUT --deadline 545 \\
        --workers 14 --lr 1.5e-3 --batch 256 --warmup-tokens 30000000
"""

import argparse
import hashlib
import json
import lzma
import math
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

T0 = time.monotonic()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--deadline", type=float, required=True, help="seconds after start")
parser.add_argument("--batch", type=int, default=256)
parser.add_argument("--lr", type=float, default=2e-3)
parser.add_argument("--warmup-tokens", type=int, default=30_000_000)
parser.add_argument("--floor", type=float, default=0.05)
parser.add_argument("--workers", type=int, default=12)
parser.add_argument("--save-every", type=float, default=100.0)
parser.add_argument("--init", default=str(ROOT / "infill_lsp" / "default_model"))
parser.add_argument("--corpus", required=True, help="JSON lines (text, language), xz")
parser.add_argument("--limit-files", type=int, default=0)
parser.add_argument("--document-share", type=float, default=0.35)
parser.add_argument("--known-length-share", type=float, default=0.5)
args = parser.parse_args()
out = Path(args.out)
out.mkdir(parents=True, exist_ok=True)
logfile = open(out / "log.txt", "a", buffering=1)  # noqa: SIM115 (open for the whole run)


def say(*parts: object) -> None:
    line = f"[{time.monotonic() - T0:7.1f}s] " + " ".join(str(p) for p in parts)
    print(line, flush=True)
    logfile.write(line + "\n")


import torch  # noqa: E402

torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
say(
    "torch",
    torch.__version__,
    "cuda",
    torch.cuda.is_available(),
    torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
)
import transformers  # noqa: E402

say("transformers", transformers.__version__)

from infill_lsp.model import load_model  # noqa: E402
from training.cli import _continued_state  # noqa: E402
from training.objective import ObjectiveConfig  # noqa: E402
from training.train import TrainConfig, Trainer  # noqa: E402

texts, languages = [], []
with lzma.open(args.corpus, "rt", encoding="utf-8") as lines:
    for line in lines:
        row = json.loads(line)
        texts.append(row["text"])
        languages.append(row["language"])
        if args.limit_files and len(texts) >= args.limit_files:
            break
say(f"corpus: {len(texts)} files, {sum(map(len, texts)):,} chars")

base = load_model(args.init, dtype="float32")
start = _continued_state(base.metadata.get("recipe", {}))
say(f"init {args.init}: {start.tokens:,} tokens, step {start.step}")
deadline = T0 + args.deadline
config = TrainConfig(
    size="small",
    batch=args.batch,
    lr=args.lr,
    min_lr_ratio=args.floor,
    # The loop's own clock: the decay ends at the deadline whatever the throughput, and the
    # warm-up counts from the initial model's tokens (a fresh optimizer on a trained model).
    warmup_tokens=args.warmup_tokens,
    schedule_minutes=max(1.0, deadline - time.monotonic()) / 60,
    checkpoint_minutes=1e9,
    workers=args.workers,
    objective=ObjectiveConfig(
        context=256,
        document_share=args.document_share,
        known_length_share=args.known_length_share,
    ),
)
trainer = Trainer(base.network, base.tokenizer, texts, languages, config, start=start)
say("device", trainer.accelerator.device, "bf16", trainer.bf16)
batches = trainer.batches()
batch = next(batches)
began = time.monotonic()
metadata = {
    "recipe": {
        "sitting": (
            f"continued from the shipped model ({start.tokens:,} tokens) on one GPU in bf16: "
            f"batch {args.batch} x 256, AdamW peak {args.lr:g}, warm-up {args.warmup_tokens:,} "
            f"tokens, cosine to {args.floor:g} of the peak over "
            f"{config.schedule_minutes * 60:.0f} s; documents {args.document_share:g} of windows, "
            f"{args.known_length_share:g} of the infill windows told their length"
        )
    }
}
sets = ["a", "b"]
saves = 0


def snapshot(final: bool) -> None:
    global saves
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = Path(scratch) / "model"
        trainer.finish(model_dir, metadata)
        trainer.network.train()
        tar_path = Path(scratch) / "model.tar"
        with tarfile.open(tar_path, "w") as tar:
            tar.add(model_dir, arcname="model")
        data = tar_path.read_bytes()
    name = sets[saves % 2]
    half = (len(data) + 1) // 2
    for i, piece in enumerate((data[:half], data[half:])):
        tmp = out / f"{name}.tmp"
        tmp.write_bytes(piece)
        os.replace(tmp, out / f"model-{name}.part{i}")
    info = {
        "set": name,
        "sha256": hashlib.sha256(data).hexdigest(),
        "tokens": trainer.state.tokens,
        "step": trainer.state.step,
        "loss": trainer.state.loss,
        "final": final,
        "seconds": round(time.monotonic() - T0, 1),
    }
    (out / "latest.tmp").write_text(json.dumps(info))
    os.replace(out / "latest.tmp", out / "latest.json")
    saves += 1
    say("snapshot", info)


tokens0, waited, last_log, last_save = trainer.state.tokens, 0.0, began, began
while time.monotonic() < deadline:
    trainer.step(batch)
    wait = time.monotonic()
    batch = next(batches)
    waited += time.monotonic() - wait
    now = time.monotonic()
    if now - last_log >= 15:
        rate = (trainer.state.tokens - tokens0) / (now - began)
        say(
            f"step {trainer.state.step} tokens {trainer.state.tokens:,} "
            f"loss {trainer.state.loss:.4f} "
            f"lr {trainer.lr:.2e} {rate:,.0f} tok/s, waited for data {waited:.1f} s"
        )
        last_log = now
    if not math.isfinite(trainer.state.loss):
        say("loss is not finite: stopping")
        break
    if now - last_save >= args.save_every and deadline - now > 30:
        snapshot(final=False)
        last_save = time.monotonic()
torch.cuda.synchronize() if torch.cuda.is_available() else None
seconds = time.monotonic() - began
say(
    f"done: {trainer.state.tokens - tokens0:,} tokens in {seconds:.0f} s "
    f"({(trainer.state.tokens - tokens0) / seconds:,.0f} tok/s)"
)
if math.isfinite(trainer.state.loss):
    snapshot(final=True)
say(
    "loaded modules:",
    sorted(m for m in ("pygls", "lsprotocol", "datasets", "tree_sitter") if m in sys.modules),
)
