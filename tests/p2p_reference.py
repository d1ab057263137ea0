"""Test-only: Prompt-to-Prompt the straightforward way, with explicit attention probabilities.

This is the textbook form (P2P-NOTES 1.5): every controlled layer makes its softmax probabilities,
the target row's are overwritten from the source row's (refine on cross-attention, copy on
self-attention), and the output is probabilities times values, as Prompt-to-Prompt's controller does
it: P'_t = w * (P_s[..., mapper] * alpha + P_t * (1 - alpha)) + (1 - w) * P_t, with w the 0/1 weight
of each target token's step window at this step. The changed words' maps are the mean of their
probability columns. It shares nothing with the engine's arithmetic: it reads only the controller's
schedule (step, per-token window weights, self-attention steps and limit), its batch layout and the
alignment lists, so agreeing with it proves that the engine's fused form computes the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch


class ReferenceP2PProcessor:
    """Drop-in for `imgdiff.p2p.processor.P2PAttnProcessor` (same constructor), explicit form.

    `alignments[i]` = (mapper, alpha) of pair i; `words[i]` = (positions in prompt a, positions in
    prompt b) for the prior, accumulated into `store` (a dict the test owns: "a", "b" -> (pairs, n)).
    `cross_probs`, a list the test owns, gets each cross-attention layer's probabilities with
    `prior_queries` queries as the layer uses them (the targets' edited): (batch, heads, n, keys)."""

    def __init__(
        self,
        controller: Any,
        original: Any,
        name: str = "",
        *,
        alignments: list[tuple[list[int], list[float]]],
        words: list[tuple[list[int], list[int]]] | None = None,
        store: dict[str, torch.Tensor] | None = None,
        prior_queries: int | None = None,
        cross_probs: list[torch.Tensor] | None = None,
    ) -> None:
        self.controller = controller
        self.original = original
        self.alignments = alignments
        self.words = words
        self.store = store
        self.prior_queries = prior_queries
        self.cross_probs = cross_probs

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        ctl = self.controller
        is_cross = encoder_hidden_states is not None
        batch, n, _ = hidden_states.shape
        context = encoder_hidden_states if is_cross else hidden_states
        q = attn.head_to_batch_dim(attn.to_q(hidden_states))
        k = attn.head_to_batch_dim(attn.to_k(context))
        v = attn.head_to_batch_dim(attn.to_v(context))
        probs = attn.get_attention_scores(q, k, None)  # (batch * heads, n, keys)
        probs = probs.view(batch, attn.heads, n, -1).clone()
        start = 2 * len(self.alignments) if batch == 4 * len(self.alignments) else 0
        window = ctl.cross_weights(ctl.steps)[ctl.step] if ctl.step < ctl.steps else None
        for i, (mapper, alpha) in enumerate(self.alignments):
            s, t = start + 2 * i, start + 2 * i + 1
            source, target = probs[s], probs[t]
            if is_cross:
                edited = target
                if window is not None and window[i].any():
                    a, w = torch.tensor(alpha, dtype=probs.dtype), window[i].to(probs.dtype)
                    edited = w * (source[..., mapper] * a + target * (1 - a)) + (1 - w) * target
                if self.store is not None and self.words and n == self.prior_queries:
                    pos_a, pos_b = self.words[i]
                    self.store["a"][i] += source[..., pos_a].mean(-1).mean(0)
                    if pos_b:
                        self.store["b"][i] += edited[..., pos_b].mean(-1).mean(0)
                probs[t] = edited
            elif ctl.self_edit(n):
                probs[t] = source
        if is_cross and self.cross_probs is not None and n == self.prior_queries:
            self.cross_probs.append(probs.clone())
        out = torch.bmm(probs.view(batch * attn.heads, n, -1), v)
        out = attn.batch_to_head_dim(out)
        return attn.to_out[1](attn.to_out[0](out)) / attn.rescale_output_factor


def tiny_pipeline(entry: dict[str, Any]) -> Any:
    """A tiny checkpoint from the `tiny_models` fixture, loaded as real runs load pipelines (float32,
    CPU, progress bar off)."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(entry["path"])
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and on a busy 2-core machine two spinning threads make
    each call 10-50x slower; the setting is put back after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
