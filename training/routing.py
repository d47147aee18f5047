"""Token routing in training (TREAD): a random share of the tokens skips the middle layers.

The encoder runs its first layers on every token, then only a random subset of each sequence's
tokens goes through the middle layers; the others wait with the hidden state they had and
rejoin before the last layers, so every position (every masked token with it) still reaches
the head and gets its loss. The kept tokens keep their own rotary positions (their indices in
the full sequence), so attention among them sees the true distances. Inference never routes:
the network and its weights are the same, only the training forward differs.

Written against the ModernBERT encoder's parts (`embeddings`, `layers`, `rotary_emb`,
`final_norm`): the one place that knows them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .objective import Encoder


@dataclass(frozen=True)
class Route:
    """Which share of the tokens skips which layers."""

    share: float = 0.5  # of each sequence's tokens, skipping layers [first, last)
    first: int = 1
    last: int = -1  # negative: counted from the end (-1: the last layer runs on every token)


def routed_encoder(route: Route, generator: torch.Generator) -> Encoder:
    """An encoder for `masked_loss` that routes tokens around the middle layers."""

    def encode(network: torch.nn.Module, input_ids: torch.Tensor, mask: torch.Tensor):
        return routed_hidden(network, input_ids, mask, route, generator)

    return encode


def routed_hidden(
    network: torch.nn.Module,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
    route: Route,
    generator: torch.Generator,
) -> torch.Tensor:
    """Hidden states (B, T, H) with the middle layers run on a random subset of tokens."""
    body: torch.nn.Module = network.base_model  # type: ignore[assignment]
    layers = list(body.layers)  # type: ignore[arg-type]
    first, last = route.first, route.last % len(layers) if route.last < 0 else route.last
    batch, length = input_ids.shape
    hidden = body.embeddings(input_ids=input_ids)  # (B, T, H)
    positions = torch.arange(length, device=input_ids.device).expand(batch, length)  # (B, T)
    everyone = _layer_inputs(body, hidden, mask, positions)
    for layer in layers[:first]:
        hidden = layer(hidden, **everyone[layer.attention_type])
    keep = max(1, math.ceil((1.0 - route.share) * length))
    if first < last and keep < length:
        # A random subset per sequence, in order; padding is drawn last so real tokens go first.
        scores = torch.rand(batch, length, generator=generator).to(hidden.device)  # (B, T)
        scores = scores.masked_fill(mask == 0, 2.0)
        kept = scores.topk(keep, dim=1, largest=False).indices.sort(dim=1).values  # (B, K)
        gather = kept.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])  # (B, K, H)
        subset = hidden.gather(1, gather)  # (B, K, H)
        few = _layer_inputs(body, subset, mask.gather(1, kept), kept)
        for layer in layers[first:last]:
            subset = layer(subset, **few[layer.attention_type])
        hidden = hidden.scatter(1, gather, subset)  # the routed tokens rejoin here
    else:
        for layer in layers[first:last]:
            hidden = layer(hidden, **everyone[layer.attention_type])
    for layer in layers[last:]:
        hidden = layer(hidden, **everyone[layer.attention_type])
    return body.final_norm(hidden)


def _layer_inputs(
    body: torch.nn.Module, hidden: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor
) -> dict[str, dict[str, object]]:
    """Attention masks and rotary embeddings per layer type, for these tokens at `positions`."""
    from transformers.masking_utils import (
        create_bidirectional_mask,
        create_bidirectional_sliding_window_mask,
    )

    config = body.config
    kwargs = {"config": config, "inputs_embeds": hidden, "attention_mask": mask}
    build = {"full_attention": create_bidirectional_mask,
             "sliding_attention": create_bidirectional_sliding_window_mask}  # fmt: skip
    return {
        kind: {
            "attention_mask": build[kind](**kwargs),  # type: ignore[arg-type]
            "position_embeddings": body.rotary_emb(hidden, positions, kind),  # type: ignore[operator]
        }
        for kind in set(config.layer_types)  # type: ignore[union-attr]
    }
