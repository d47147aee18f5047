"""Denoising steps over the canvas only, the context's keys and values cached (a dual cache).

Between two denoising steps only the canvas (the span's positions) changes; the prefix and
suffix tokens around it change only through what they attend to, a little. So, as Fast-dLLM's
dual cache does, a refresh step is the model's own forward pass over the whole window
(`model.logits`), and keeps every layer's keys and values of the context positions on the way
(read off its fused QKV projection); the steps after it run the layers for the canvas only:
their queries, keys and values are fresh, the context's keys and values are the cached ones. A
step then costs the canvas's share of the window (32 of 256 positions for an inline line) plus
attention over the whole window. The cache is refreshed every `refresh_every` steps, and
whenever the context itself changed (another request, other rows).

The layers are the network's own modules and weights: ModernBERT's embeddings, pre-norms,
fused QKV projection, rotary embeddings at each token's true column, the local layers' sliding
window (a token sees those at most `local_attention // 2` columns away), its GLU MLP, final
norm and prediction head. Only our own family's ModernBERT encoders qualify (no attention mask:
every column is a real token); any other model gets its ordinary forward pass every step.
Knows torch and ModernBERT's module layout; nothing about tokens or text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from infill_lsp.models.loaded import InfillModel, head_logits

# (ids (B, T), positions (S,)) -> logits (B, S, V) float32: what the sampler calls each step
LogitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def supports(model: InfillModel) -> bool:
    """Whether `model` can run cached steps: a ModernBERT encoder run by `head_logits` (our
    family; the masked-lm family hides pad columns, which this path does not model)."""
    network = model.network
    config = getattr(network, "config", None)
    return (
        model.forward is head_logits
        and getattr(config, "model_type", None) == "modernbert"
        and all(hasattr(network, name) for name in ("model", "head", "decoder"))
    )


def denoising_logits(model: InfillModel, refresh_every: int) -> LogitsFn:
    """The logits function for one denoising loop: cached when the model supports it and
    `refresh_every` > 1, else the model's full forward pass at every step."""
    if refresh_every > 1 and supports(model):
        return ContextCache(model, refresh_every)
    return lambda ids, positions: model.logits(ids, positions)


def ranking_logits(model: InfillModel, refresh_every: int, margin: int) -> LogitsFn:
    """The logits function that ranks length hypotheses (rows that differ only on the canvas)
    and then denoises the chosen rows.

    With `margin` > 0 on a model that supports it, a cache primed on the canvas of masks: one
    full pass over that one row, then every hypothesis in one canvas step that recomputes the
    canvas and `margin` columns either side of it, so the nearby context sees each row's own
    fillers (the far context comes from the cache); the denoising steps go on from the same
    cache, a full pass every `refresh_every` calls. Else the model's full pass over every row
    (the denoising steps get `denoising_logits` of their own)."""
    if margin <= 0 or not supports(model):
        return lambda ids, positions: model.logits(ids, positions)
    return ContextCache(model, refresh_every, margin, primed=True)


@dataclass
class _Cached:
    """What a refresh step keeps for the steps after it."""

    ids: torch.Tensor  # (B, T) the window at the refresh (B = 1 serves any number of rows)
    positions: torch.Tensor  # (S,) the canvas columns
    context: torch.Tensor  # (T,) bool: the cached columns (outside the canvas and its margin)
    live: torch.Tensor  # (L,) the columns a step recomputes: the canvas and its margin, in order
    canvas: torch.Tensor  # (S,) where the canvas columns are among `live`
    keys: list[torch.Tensor]  # per layer (B, heads, C, D): the context's keys, rotated
    values: list[torch.Tensor]  # per layer (B, heads, C, D)
    rotary: dict[str, tuple[torch.Tensor, torch.Tensor]]  # layer type -> live (cos, sin)
    masks: dict[str, torch.Tensor | None]  # layer type -> (L, C + L) bool, None: see all


class ContextCache:
    """A stateful logits function for one denoising loop (make a new one per loop).

    Call it as the sampler calls a logits function: `(ids (B, T), positions (S,)) -> (B, S, V)`.
    `full_passes` and `canvas_passes` count what it ran. A `margin` of context columns on each
    side of the canvas is recomputed with it at every step (they see the canvas as it is now);
    a cache refreshed on one row serves rows that differ only there (`prime`; `primed=True`
    primes on the first call's first row).
    """

    def __init__(
        self, model: InfillModel, refresh_every: int, margin: int = 0, primed: bool = False
    ) -> None:
        if refresh_every < 1:
            raise ValueError(f"refresh_every must be at least 1, got {refresh_every}")
        if margin < 0:
            raise ValueError(f"margin must not be negative, got {margin}")
        self.model = model
        self.refresh_every = refresh_every
        self.margin = margin
        self.primed = primed  # the first call primes on its first row (see `prime`)
        self.full_passes = 0
        self.canvas_passes = 0
        self._since_refresh = 0
        self._cached: _Cached | None = None
        network: Any = model.network
        self._body: Any = network.model
        self._network: Any = network
        config = network.config
        self._types: list[str] = list(config.layer_types)
        self._window = int(config.local_attention) // 2  # ModernBERT's half window
        self._head_dim = int(config.hidden_size) // int(config.num_attention_heads)

    @torch.inference_mode()
    def __call__(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        ids = ids.to(self.model.device)
        positions = positions.to(ids.device)
        if self.primed and self._cached is None and positions.numel() > 0:
            self.prime(ids, positions)
        if (
            positions.numel() == 0
            or self._since_refresh >= self.refresh_every
            or not self._still_valid(ids, positions)
        ):
            self._since_refresh = 1
            return self._refresh(ids, positions)
        self._since_refresh += 1
        return self._cached_logits(ids)

    @torch.inference_mode()
    def prime(self, ids: torch.Tensor, positions: torch.Tensor) -> None:
        """Refresh on the first row of `ids` with its canvas all masks: the steps after it serve
        every row that differs from it only on the canvas and its margin, in one batch."""
        row = ids[:1].to(self.model.device).clone()  # (1, T)
        positions = positions.to(row.device)
        row[:, positions] = self.model.ids.mask
        self._since_refresh = 1
        self._refresh(row, positions)

    def _still_valid(self, ids: torch.Tensor, positions: torch.Tensor) -> bool:
        """Whether the cache belongs to this window: same width, canvas and context tokens (a
        cache of one row serves many)."""
        cached = self._cached
        return (
            cached is not None
            and cached.ids.shape[1] == ids.shape[1]
            and cached.ids.shape[0] in (1, ids.shape[0])
            and torch.equal(cached.positions, positions)
            and bool((cached.ids[:, cached.context] == ids[:, cached.context]).all())
        )

    def _mask(self, layer_type: str, queries: torch.Tensor, keys: torch.Tensor) -> Any:
        """(Q, K) bool, True where a query column may see a key column; None when all may."""
        if layer_type != "sliding_attention":
            return None
        return (queries[:, None] - keys[None, :]).abs() <= self._window

    def _refresh(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The model's own forward pass (`model.logits`, exact), each layer's fused QKV
        projection read on the way to keep the context's keys and values. (B, S, V)."""
        body = self._body
        projections: list[torch.Tensor] = []  # per layer (B, T, 3 * heads * D)
        hooks = [
            layer.attn.Wqkv.register_forward_hook(
                lambda _module, _inputs, output: projections.append(output)
            )
            for layer in body.layers
        ]
        try:
            logits = self.model.logits(ids, positions)  # (B, S, V)
        finally:
            for hook in hooks:
                hook.remove()
        self.full_passes += 1
        if positions.numel() == 0 or len(projections) != len(self._types):
            self._cached = None  # nothing to cache (or not this network's layers): full passes
            return logits
        with self.model.meter.timing(passes=0):  # writing the cache belongs to the pass
            self._cached = self._keep(ids, positions, projections)
        return logits

    def _keep(
        self, ids: torch.Tensor, positions: torch.Tensor, projections: list[torch.Tensor]
    ) -> _Cached:
        """What the steps after a refresh need: the context's rotated keys and values (from
        each layer's QKV projection), the live columns' rotary angles and attention masks."""
        body = self._body
        batch, width = ids.shape
        columns = torch.arange(width, device=ids.device)  # (T,)
        distance = (columns[:, None] - positions[None, :]).abs().amin(dim=1)  # (T,)
        context = distance > self.margin  # (T,) columns cached, the rest recomputed
        live = columns[~context]  # (L,)
        kinds = set(self._types)
        rotary = {kind: body.rotary_emb(projections[0], columns[None], kind) for kind in kinds}
        keys: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        for qkv, kind in zip(projections, self._types, strict=True):
            qkv = qkv.view(batch, width, 3, -1, self._head_dim)[:, context]  # (B, C, 3, h, D)
            _, key, value = qkv.transpose(1, 3).unbind(dim=2)  # (B, h, C, D) each
            cos, sin = (part[:, context] for part in rotary[kind])
            keys.append(_rotate(key, cos, sin))
            values.append(value)
        seen = torch.cat([columns[context], live])  # key columns of a canvas step
        return _Cached(
            ids.clone(),
            positions.clone(),
            context,
            live,
            torch.searchsorted(live, positions),
            keys,
            values,
            {kind: (cos[:, live], sin[:, live]) for kind, (cos, sin) in rotary.items()},
            {kind: self._mask(kind, live, seen) for kind in kinds},
        )

    def _cached_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """A cached step: the canvas's layers, then the prediction head at the masked
        positions only (B, S, V) float32; zeros where a token is already there.

        The head over the vocabulary is the larger half of a canvas step, and the sampler reads
        predictions only where a mask still is: on a told or searched canvas most columns hold
        committed text or fillers (a one-token line on a 48-token canvas: 47 fillers)."""
        network = self._network
        with self.model.meter.timing():
            hidden = self._canvas_step(ids)  # (B, S, H)
            assert self._cached is not None
            masked = ids[:, self._cached.positions] == self.model.ids.mask  # (B, S)
            logits = hidden.new_zeros((*masked.shape, self.model.vocab_size), dtype=torch.float32)
            if bool(masked.any()):
                # by index: boolean indexing over a vocabulary-wide tensor is slow on a CPU
                index = masked.flatten().nonzero().squeeze(1)  # (N,)
                rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index)  # (N, H)
                scores = network.decoder(network.head(rows)).float()  # (N, V)
                logits.view(-1, logits.shape[-1]).index_copy_(0, index, scores)
        self.canvas_passes += 1
        return logits

    def _canvas_step(self, ids: torch.Tensor) -> torch.Tensor:
        """The layers over the canvas (and margin) columns only, attending to the cached
        context; the canvas's hidden states (B, S, H)."""
        cached = self._cached
        assert cached is not None
        body = self._body
        rows = ids.shape[0]
        hidden = body.embeddings(input_ids=ids[:, cached.live])  # (B, L, H)
        for index, (layer, kind) in enumerate(zip(body.layers, self._types, strict=True)):
            cos, sin = cached.rotary[kind]
            query, key, value = self._project(layer, hidden, cos, sin)  # (B, heads, L, D) each
            old_keys, old_values = (
                part[index].expand(rows, -1, -1, -1) for part in (cached.keys, cached.values)
            )
            key = torch.cat([old_keys, key], dim=2)  # (B, heads, C + L, D)
            value = torch.cat([old_values, value], dim=2)
            hidden = self._finish(layer, hidden, query, key, value, cached.masks[kind])
        return body.final_norm(hidden[:, cached.canvas])  # (B, S, H)

    @staticmethod
    def _project(
        layer: Any, hidden: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A layer's queries, keys and values of `hidden` (B, N, H), rotated by (cos, sin)
        (1, N, D): each (B, heads, N, D)."""
        from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

        attention = layer.attn
        batch, count, _ = hidden.shape
        qkv = attention.Wqkv(layer.attn_norm(hidden))  # (B, N, 3 * heads * D)
        qkv = qkv.view(batch, count, 3, -1, attention.head_dim).transpose(1, 3)  # (B, h, 3, N, D)
        query, key, value = qkv.unbind(dim=2)
        query, key = apply_rotary_pos_emb(query, key, cos, sin, unsqueeze_dim=1)
        return query, key, value

    @staticmethod
    def _finish(
        layer: Any,
        hidden: torch.Tensor,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Attention, its output projection and the MLP, each added to the residual stream."""
        attention = layer.attn
        out = F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, scale=attention.head_dim**-0.5
        )  # (B, heads, N, D)
        out = out.transpose(1, 2).reshape(hidden.shape)  # (B, N, H)
        hidden = hidden + attention.out_drop(attention.Wo(out))
        return hidden + layer.mlp(layer.mlp_norm(hidden))


def _rotate(key: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary positions on keys alone (B, heads, C, D) by (cos, sin) (B, C, D), computed as
    the model computes them (in float32, back to the keys' dtype): the cache's keys are the
    ones a full pass would attend to. (The library's helper rotates queries too: twice the
    work, and the context's queries are never used.)"""
    from transformers.models.modernbert.modeling_modernbert import rotate_half

    rotated = key.float()
    rotated = rotated * cos[:, None] + rotate_half(rotated) * sin[:, None]
    return rotated.to(key.dtype)
