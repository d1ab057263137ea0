"""Prompt-to-Prompt as UNet attention processors, computed with fused attention (PERFORMANCE.md).

Every edit Prompt-to-Prompt makes is linear in the attention probabilities, so it moves onto the
queries, keys and values and `scaled_dot_product_attention` does the rest; no probabilities are made
(except the prior's few columns, `prior.py`). For a pair with source row s and target row t of the
conditional half of the batch:
- self-attention replacement: out_t = softmax(Q_s K_s^T) V_t, i.e. the target row attends with the
  source's queries and keys: one gather of the layer input before the projections;
- refine (cross-attention): P'_t = P_s G diag(alpha) + P_t diag(1 - alpha), where G gathers each
  target token's aligned source column, so
  out_t = SDPA(Q_t, K_t, diag(1 - alpha) V_t) + SDPA(Q_s, K_s, G diag(alpha) V_t).
  The first term is the batch's own attention with the target rows' values scaled; the second is one
  more SDPA call over the source rows' queries (a view, no copy), added onto the target rows.
Cross-attention keys and values depend only on the text, which is the same at every step, so each
layer makes them (and the mixed values above) once per call and keeps them: an edited cross-attention
layer projects less per step than the stock one.
Only the conditional half is edited when guidance is on (batch = [unconditional..., conditional...]);
without guidance the whole batch is conditional. A layer or step with no edit calls the processor that
was installed before (stock diffusers), unchanged.

`P2PController` holds everything per call: the index tensors and mixes (built once, before the call,
on the UNet's device), the step counter the pipeline callback advances, and the prior collector.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from imgdiff.p2p.prior import PriorCollector


class P2PController:
    """The batch layout and edit schedule of one pipeline call.

    `mappers[i]` / `alphas[i]` are pair i's refine alignment over the text window; rows are laid out as
    [a0, b0, a1, b1, ...], preceded by the same for the unconditional prompts when `guidance` is on.
    """

    def __init__(
        self,
        mappers: list[list[int]],
        alphas: list[list[float]],
        *,
        guidance: bool,
        steps: int,
        cross_replace: float,
        self_replace: float,
        self_max_queries: int,
        device: torch.device | str,
        dtype: torch.dtype,
    ) -> None:
        pairs, tokens = len(mappers), len(mappers[0])
        self.pairs, self.tokens = pairs, tokens
        self.cond_start = 2 * pairs if guidance else 0
        self.batch = self.cond_start + 2 * pairs
        self.step = 0  # the step the UNet is running: the pipeline callback advances it
        self.cross_replace, self.self_replace = cross_replace, self_replace
        self.self_max_queries = self_max_queries
        self.set_steps(steps)  # again from the pipeline once it has set its timesteps
        self.prior: PriorCollector | None = None
        self.trace: list[tuple[str, str]] | None = None  # tests: (layer, path taken) per call

        source = [self.cond_start + 2 * i for i in range(pairs)]
        target = [s + 1 for s in source]
        self_rows = list(range(self.batch))
        for s, t in zip(source, target, strict=True):
            self_rows[t] = s
        # mixes[i] = G diag(alpha) for pair i: column j holds alpha_j at row mapper_j.
        self.alphas = torch.tensor(alphas, dtype=torch.float32)
        self.mixes = torch.zeros(pairs, tokens, tokens)
        for i, (mapper, alpha) in enumerate(zip(mappers, alphas, strict=True)):
            self.mixes[i, mapper, range(tokens)] = torch.tensor(alpha)
        value_scale = torch.ones(self.batch, tokens, 1)
        value_scale[target, :, 0] = 1 - self.alphas

        def index(values: list[int]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.long, device=device)

        self.self_rows = index(self_rows)  # self-attention: target rows read their source's input
        self.source_rows = index(source)
        self.target_rows = index(target)
        self.value_scale = value_scale.to(device=device, dtype=dtype)  # diag(1 - alpha) on target rows
        self.value_mixes = self.mixes.to(device=device, dtype=dtype)

    # -- the schedule --------------------------------------------------------------------------------
    def set_steps(self, steps: int) -> None:
        """The call's step count; the edited steps are counted here once, not per layer."""
        self.steps = steps
        self.cross_steps = steps_within(self.cross_replace, steps)
        self.self_steps = steps_within(self.self_replace, steps)

    def cross_edit(self) -> bool:
        return self.step < self.cross_steps

    def self_edit(self, queries: int) -> bool:
        return queries <= self.self_max_queries and self.step < self.self_steps

    def wants_prior(self, queries: int) -> bool:
        return self.prior is not None and queries == self.prior.queries

    def on_step_end(self, step: int, steps: int) -> None:
        self.step = step + 1
        if steps != self.steps:
            self.set_steps(steps)

    def check_batch(self, batch: int) -> None:
        if batch != self.batch:
            raise ValueError(f"Prompt-to-Prompt: UNet batch {batch}, expected {self.batch}")


def steps_within(fraction: float, steps: int) -> int:
    """How many steps, from the first, the first `fraction` of `steps` covers: the steps i with
    i < fraction * steps, counted without float noise (0.14 * 50 is 7.000000000000001: 7 steps, not 8)."""
    return math.ceil(round(fraction * steps, 9))


class TextAttention:
    """One cross-attention layer's keys and values for one call, as (batch, heads, tokens, head_dim)
    views, with the refine terms made on first use."""

    def __init__(self, attn: Any, context: torch.Tensor) -> None:
        self.context = context
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        self.key_flat = attn.to_k(context)
        self.value_flat = attn.to_v(context)
        self.key = _heads(attn, self.key_flat)
        if attn.norm_k is not None:
            self.key = attn.norm_k(self.key)
        self.value = _heads(attn, self.value_flat)
        self.refine: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.prior_keys: torch.Tensor | None = None

    def refine_terms(self, ctl: P2PController, attn: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values with the target rows scaled by 1 - alpha, the source rows' keys, G diag(alpha) V_t)."""
        if self.refine is None:
            scaled = _heads(attn, self.value_flat * ctl.value_scale)
            source_keys = self.key.index_select(0, ctl.source_rows)
            moved = torch.bmm(ctl.value_mixes, self.value_flat.index_select(0, ctl.target_rows))
            self.refine = (scaled, source_keys, _heads(attn, moved))
        return self.refine


class P2PAttnProcessor:
    """One attention layer's processor; falls back to the layer's previous processor when unedited."""

    def __init__(self, controller: P2PController, original: Any, name: str = "") -> None:
        self.controller = controller
        self.original = original
        self.name = name
        self.text: TextAttention | None = None

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ctl = self.controller
        queries = hidden_states.shape[1]
        if encoder_hidden_states is None:
            path = "self" if ctl.self_edit(queries) else "stock"
        else:
            edit, prior = ctl.cross_edit(), ctl.wants_prior(queries)
            path = "cross" if edit or prior else "stock"
        if ctl.trace is not None:
            ctl.trace.append((self.name, path))
        if path == "stock":
            extra = {} if temb is None else {"temb": temb}
            return self.original(
                attn,
                hidden_states,
                encoder_hidden_states=encoder_hidden_states,
                attention_mask=attention_mask,
                **extra,
            )
        _check_supported(attn, hidden_states, attention_mask)
        ctl.check_batch(hidden_states.shape[0])
        if path == "self":
            return self._self_replace(attn, hidden_states)
        return self._cross(attn, hidden_states, encoder_hidden_states, edit, prior)

    def _self_replace(self, attn: Any, hidden: torch.Tensor) -> torch.Tensor:
        x = _input(attn, hidden)
        source_like = x.index_select(0, self.controller.self_rows)  # target rows see the source's input
        query, key = _heads(attn, attn.to_q(source_like)), _heads(attn, attn.to_k(source_like))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, _heads(attn, attn.to_v(x)), scale=attn.scale)
        return _output(attn, out, hidden)

    def _cross(
        self, attn: Any, hidden: torch.Tensor, context: torch.Tensor, edit: bool, prior: bool
    ) -> torch.Tensor:
        ctl = self.controller
        if self.text is None or self.text.context is not context:
            self.text = TextAttention(attn, context)
            if self.text.key_flat.shape[1] != ctl.tokens:
                raise ValueError(
                    f"Prompt-to-Prompt: {self.text.key_flat.shape[1]} text tokens, expected {ctl.tokens}"
                )
        text = self.text
        query = _heads(attn, attn.to_q(_input(attn, hidden)))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if prior:
            assert ctl.prior is not None
            if text.prior_keys is None:
                text.prior_keys = ctl.prior.keys(attn, text.key_flat)
            ctl.prior.collect(query, text.prior_keys, edit)
        if not edit:
            return _output(
                attn, F.scaled_dot_product_attention(query, text.key, text.value, scale=attn.scale), hidden
            )
        scaled_values, source_keys, moved_values = text.refine_terms(ctl, attn)
        out = F.scaled_dot_product_attention(query, text.key, scaled_values, scale=attn.scale)
        source_queries = query[ctl.cond_start :].unflatten(0, (ctl.pairs, 2))[:, 0]  # a view
        moved = F.scaled_dot_product_attention(source_queries, source_keys, moved_values, scale=attn.scale)
        return _output(attn, out.index_add_(0, ctl.target_rows, moved), hidden)


def _check_supported(attn: Any, hidden: torch.Tensor, mask: torch.Tensor | None) -> None:
    if hidden.ndim != 3 or mask is not None or attn.spatial_norm is not None:
        raise NotImplementedError(
            "Prompt-to-Prompt supports UNet transformer attention (3-d input, no mask, no spatial norm)"
        )


def _input(attn: Any, hidden: torch.Tensor) -> torch.Tensor:
    if attn.group_norm is not None:
        return attn.group_norm(hidden.transpose(1, 2)).transpose(1, 2)
    return hidden


def _heads(attn: Any, x: torch.Tensor) -> torch.Tensor:
    """(batch, n, heads * head_dim) -> a (batch, heads, n, head_dim) view."""
    return x.view(x.shape[0], x.shape[1], attn.heads, -1).transpose(1, 2)


def _output(attn: Any, out: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Multi-head attention output (batch, heads, n, head_dim) through the output projection."""
    batch, heads, n, head_dim = out.shape
    out = out.transpose(1, 2).reshape(batch, n, heads * head_dim).to(residual.dtype)
    out = attn.to_out[1](attn.to_out[0](out))
    if attn.residual_connection:
        out = out + residual
    return out / attn.rescale_output_factor


@contextmanager
def installed(unet: Any, controller: P2PController) -> Iterator[None]:
    """The controller's processors on every attention layer of `unet`; the previous ones come back
    afterwards, also when the block raises."""
    originals = unet.attn_processors
    unet.set_attn_processor(
        {name: P2PAttnProcessor(controller, proc, name) for name, proc in originals.items()}
    )
    try:
        yield
    finally:
        unet.set_attn_processor(dict(originals))
