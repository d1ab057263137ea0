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
At each step alpha is the alignment's alpha times the 0/1 weight of each target token's step window
(`schedule.py`); the mixes for each distinct alpha (a phase: one per call unless per-word windows
make more) are built once, before the call.
Cross-attention keys and values depend only on the text, which is the same at every step, so each
layer makes them (and the mixed values above, per phase) once per call and keeps them: an edited
cross-attention layer projects less per step than the stock one.
Only the conditional half is edited when guidance is on (batch = [unconditional..., conditional...]);
without guidance the whole batch is conditional. A layer or step with no edit calls the processor that
was installed before (stock diffusers), unchanged.

`P2PController` holds everything per call: the index tensors and mixes (built once, before the call,
on the UNet's device), the step counter the pipeline callback advances, and the prior collector.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

from imgdiff.p2p.prior import PriorCollector
from imgdiff.p2p.schedule import Window, cross_steps, self_steps


class CrossPhase:
    """One state of the cross-attention edit: the effective alphas (the alignment's alpha times the
    0/1 weight of each token's step window) and the value mixes made from them. A call has one phase
    while every token follows the default window; per-word windows add a few."""

    def __init__(self, key: int, controller: P2PController, alphas: torch.Tensor) -> None:
        ctl = controller
        self.key = key  # index in the controller's list of phases: caches are keyed by it
        self.alphas = alphas  # (pairs, tokens) float32 on the CPU
        # mixes[i] = G diag(alpha) for pair i: column j holds alpha_j at row mapper_j.
        self.mixes = torch.zeros(ctl.pairs, ctl.tokens, ctl.tokens)
        for i, mapper in enumerate(ctl.mappers):
            self.mixes[i, mapper, range(ctl.tokens)] = alphas[i]
        value_scale = torch.ones(ctl.batch, ctl.tokens, 1)
        value_scale[ctl.target_list, :, 0] = 1 - alphas
        self.value_scale = value_scale.to(device=ctl.device, dtype=ctl.dtype)  # diag(1 - alpha), targets
        self.value_mixes = self.mixes.to(device=ctl.device, dtype=ctl.dtype)


class P2PController:
    """The batch layout and edit schedule of one pipeline call.

    `mappers[i]` / `alphas[i]` are pair i's refine alignment over the text window; rows are laid out as
    [a0, b0, a1, b1, ...], preceded by the same for the unconditional prompts when `guidance` is on.
    `word_windows[i]` holds pair i's per-word cross windows as (target positions, window).
    """

    def __init__(
        self,
        mappers: list[list[int]],
        alphas: list[list[float]],
        *,
        guidance: bool,
        steps: int,
        step_rule: str,
        cross_replace: Window,
        self_replace: Window,
        self_max_queries: int,
        device: torch.device | str,
        dtype: torch.dtype,
        word_windows: list[list[tuple[list[int], Window]]] | None = None,
    ) -> None:
        pairs, tokens = len(mappers), len(mappers[0])
        self.pairs, self.tokens = pairs, tokens
        self.cond_start = 2 * pairs if guidance else 0
        self.batch = self.cond_start + 2 * pairs
        self.step = 0  # the step the UNet is running: the pipeline callback advances it
        self.mappers = mappers
        self.alphas = torch.tensor(alphas, dtype=torch.float32)
        self.step_rule = step_rule
        self.cross_replace, self.self_replace = cross_replace, self_replace
        self.word_windows = word_windows or [[] for _ in range(pairs)]
        self.self_max_queries = self_max_queries
        self.device, self.dtype = device, dtype
        self.prior: PriorCollector | None = None
        self.trace: list[tuple[str, str]] | None = None  # tests: (layer, path taken) per call

        source = [self.cond_start + 2 * i for i in range(pairs)]
        self.target_list = [s + 1 for s in source]
        self_rows = list(range(self.batch))
        for s, t in zip(source, self.target_list, strict=True):
            self_rows[t] = s

        def index(values: list[int]) -> torch.Tensor:
            return torch.tensor(values, dtype=torch.long, device=device)

        self.self_rows = index(self_rows)  # self-attention: target rows read their source's input
        self.source_rows = index(source)
        self.target_rows = index(self.target_list)
        self.phases: list[CrossPhase] = []  # every phase made for this call, never removed
        self._phase_keys: dict[bytes, int] = {}
        self.set_steps(steps)  # again from the pipeline once it has set its timesteps

    # -- the schedule --------------------------------------------------------------------------------
    def set_steps(self, steps: int) -> None:
        """The call's step count: each step's cross phase and whether it replaces self-attention are
        worked out here once, not per layer."""
        self.steps = steps
        self.step_phases: list[CrossPhase | None] = []
        for weights in self.cross_weights(steps):
            alphas = weights * self.alphas
            self.step_phases.append(self._phase(alphas) if bool(alphas.any()) else None)
        self.self_steps = self_steps(self.step_rule, self.self_replace, steps)

    def cross_weights(self, steps: int) -> torch.Tensor:
        """(steps, pairs, tokens): 1 where the target token's step window covers the step."""
        weights = torch.zeros(steps, self.pairs, self.tokens)
        default = cross_steps(self.step_rule, self.cross_replace, steps)
        for pair, windows in enumerate(self.word_windows):
            weights[default.start : default.stop, pair] = 1
            for positions, window in windows:
                covered = cross_steps(self.step_rule, window, steps)
                weights[:, pair, positions] = 0
                weights[covered.start : covered.stop, pair, positions] = 1
        return weights

    def _phase(self, alphas: torch.Tensor) -> CrossPhase:
        key = alphas.numpy().tobytes()
        if key not in self._phase_keys:
            self._phase_keys[key] = len(self.phases)
            self.phases.append(CrossPhase(len(self.phases), self, alphas))
        return self.phases[self._phase_keys[key]]

    def cross_phase(self) -> CrossPhase | None:
        """The current step's cross-attention edit; None when no token is edited at this step."""
        return self.step_phases[self.step] if self.step < self.steps else None

    def self_edit(self, queries: int) -> bool:
        return queries <= self.self_max_queries and self.step in self.self_steps

    def wants_prior(self, queries: int) -> bool:
        return self.prior is not None and queries == self.prior.queries

    def on_step_end(self, step: int, steps: int) -> None:
        self.step = step + 1
        if steps != self.steps:
            self.set_steps(steps)

    def check_batch(self, batch: int) -> None:
        if batch != self.batch:
            raise ValueError(f"Prompt-to-Prompt: UNet batch {batch}, expected {self.batch}")


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
        self.source_keys: torch.Tensor | None = None
        self.refine: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # per cross phase
        self.prior_keys: torch.Tensor | None = None

    def refine_terms(
        self, ctl: P2PController, phase: CrossPhase, attn: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(values with the target rows scaled by 1 - alpha, the source rows' keys, G diag(alpha) V_t)."""
        if self.source_keys is None:
            self.source_keys = self.key.index_select(0, ctl.source_rows)
        if phase.key not in self.refine:
            scaled = _heads(attn, self.value_flat * phase.value_scale)
            moved = torch.bmm(phase.value_mixes, self.value_flat.index_select(0, ctl.target_rows))
            self.refine[phase.key] = (scaled, _heads(attn, moved))
        scaled, moved = self.refine[phase.key]
        return scaled, self.source_keys, moved


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
            phase, prior = ctl.cross_phase(), ctl.wants_prior(queries)
            path = "cross" if phase is not None or prior else "stock"
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
        return self._cross(attn, hidden_states, encoder_hidden_states, phase, prior)

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
        self, attn: Any, hidden: torch.Tensor, context: torch.Tensor, phase: CrossPhase | None, prior: bool
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
            ctl.prior.collect(query, text.prior_keys, phase)
        if phase is None:
            return _output(
                attn, F.scaled_dot_product_attention(query, text.key, text.value, scale=attn.scale), hidden
            )
        scaled_values, source_keys, moved_values = text.refine_terms(ctl, phase, attn)
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
