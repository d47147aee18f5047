"""Diffusion language models built from transformers' decoder layers run with full attention.

Dream (Qwen2 layers) and LLaDA (Llama layers) are decoders trained to denoise masked tokens with
every position seeing every other one. Their published folders ask for remote code; here the
network is transformers' own `*ForCausalLM`, built from the config on the meta device (size and
weight names checked before anything is allocated), its weights read from safetensors under the
names transformers uses, and run with a full (all-ones) attention mask. Knows torch and
transformers; nothing about tokenizers or the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from infill_lsp.errors import ModelError
from infill_lsp.models.budget import check_fits, check_shapes, on_meta
from infill_lsp.models.files import tensor_shapes, weight_files
from infill_lsp.models.loaded import Forward

Rename = Callable[[str], str]


def renamer(rules: list[tuple[str, str]]) -> Rename:
    """A function applying the first matching (pattern, replacement) of `rules` to a name."""
    compiled = [(re.compile(pattern), replacement) for pattern, replacement in rules]

    def rename(name: str) -> str:
        for pattern, replacement in compiled:
            if pattern.match(name):
                return pattern.sub(replacement, name)
        return name

    return rename


def load_decoder(
    directory: Path,
    build: Callable[[], torch.nn.Module],
    device: str,
    dtype: torch.dtype,
    rename: Rename = lambda name: name,
) -> torch.nn.Module:
    """The network `build` makes, filled with the directory's weights (renamed), on `device`."""
    from safetensors import safe_open

    files = weight_files(directory)
    skeleton = on_meta(build)
    check_fits(skeleton, dtype, device, directory)
    tied = {"lm_head.weight"} if getattr(skeleton.config, "tie_word_embeddings", False) else set()
    buffers = {name for name, _ in skeleton.named_buffers()}
    check_shapes(skeleton, tensor_shapes(files), files[0], rename, optional=tied | buffers)
    network: Any = skeleton.to_empty(device=device).to(dtype)
    state: dict[str, torch.Tensor] = {}
    for path in files:
        with safe_open(str(path), framework="pt", device="cpu") as weights:
            for name in weights.keys():  # noqa: SIM118 (safe_open is not a mapping)
                state[rename(name)] = weights.get_tensor(name).to(dtype)
    try:
        network.load_state_dict(state, strict=False, assign=False)
    except RuntimeError as error:
        raise ModelError(
            f"the weights in {directory} do not fit its config.json: {error}"
        ) from error
    if tied:
        network.tie_weights()
    # The rotary frequencies are a buffer left empty on the meta device: build them again (in
    # float32, as transformers keeps them).
    body: Any = network.model
    body.rotary_emb = type(body.rotary_emb)(network.config).to(device)
    return network.eval()


def full_attention(shift: bool) -> Forward:
    """Logits of a decoder run with every position attending to every other one.

    With `shift` (Dream), the logits for position i are read from the hidden state at i - 1, as
    the model was trained (position 0 reads its own).
    """

    def forward(
        network: torch.nn.Module,
        ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        positions: torch.Tensor | None,
    ) -> torch.Tensor:
        from transformers.masking_utils import create_bidirectional_mask

        body: Any = network.model
        embeds = body.embed_tokens(ids)  # (B, T, H)
        mask = create_bidirectional_mask(
            config=network.config,
            inputs_embeds=embeds,
            attention_mask=torch.ones_like(ids) if attention_mask is None else attention_mask,
            allow_is_bidirectional_skip=False,  # a 4D mask: the layers never fall back to causal
        )  # (B, 1, T, T)
        hidden = body(inputs_embeds=embeds, attention_mask=mask).last_hidden_state  # (B, T, H)
        columns = torch.arange(ids.shape[1], device=ids.device) if positions is None else positions
        columns = columns.to(hidden.device)
        if shift:
            columns = (columns - 1).clamp_min(0)
        head: Any = network.lm_head
        return head(hidden[:, columns])  # (B, S, V)

    return forward


def config_values(config: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """`config`'s values under transformers' names (`names`: theirs -> ours); others as they are."""
    return {names.get(key, key): value for key, value in config.items() if value is not None}


def require(config: dict[str, Any], keys: list[str], directory: Path) -> None:
    """ModelError naming the sizes config.json lacks."""
    absent = [key for key in keys if not isinstance(config.get(key), int)]
    if absent:
        raise ModelError(f"{directory / 'config.json'} gives no {', '.join(absent)}")
