"""Build a throwaway model directory for tests: a tokenizer trained in-process, a tiny encoder.

Run as a script (`python tests/tiny_model.py OUT_DIR`) so non-Python tests (Neovim, Node) can
make one too. Nothing is downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from infill_lsp.model import save_model
from infill_train.sizes import build_network
from infill_train.tokenizer import train_tokenizer

SAMPLE_CODE = '''\
import os
import sys


def add(a, b):
    """Return the sum of a and b."""
    return a + b


class Greeter:
    def __init__(self, name):
        self.name = name

    def greet(self):
        print(f"Hello, {self.name}!")
        return len(self.name)


for i in range(10):
    if i % 2 == 0:
        print(i)
    else:
        continue
'''

SAMPLE_TEXTS = [
    SAMPLE_CODE,
    "function add(a, b) {\n  return a + b;\n}\nconst x = [1, 2, 3].map((v) => v * 2);\n",
    'fn main() {\n    let v = vec![1, 2, 3];\n    println!("{:?}", v);\n}\n',
    "# Title\n\nSome prose with ünïcödé, emoji 🎉 and\ttabs.\r\nWindows line.\r\n",
]


def build_tiny_model(out: Path, seed: int = 0) -> Path:
    """Write a complete, loadable model directory with random weights to `out`."""
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(SAMPLE_TEXTS * 4, vocab_size=400)
    network = build_network("test", tokenizer, max_positions=1024)
    metadata = {"recipe": {"size": "test", "note": "random weights, for tests only"}}
    return save_model(out, network, tokenizer, metadata, card="# tiny test model\n")


if __name__ == "__main__":
    print(build_tiny_model(Path(sys.argv[1])))
