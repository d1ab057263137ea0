"""The attention prior: where each changed word looked, from the cross-attention at one resolution.

For each pair, channel 0 is the source prompt's changed words attending over image a, channel 1 the
target prompt's over image b, summed over heads, layers of the chosen resolution and steps, each scaled
to [0, 1] by its maximum (DESIGN.md: `<id>_prior.npy`). The maps are the ones the images were made
with: on edited steps the target's columns are the refined ones (aligned tokens take the source's
attention), which is linear in the two rows' probabilities, so both channels come out of one matmul
of the conditional rows' probabilities with a small weight matrix built once per call.

Only here are probabilities made explicit: the logits of the conditional rows against the 77 text
tokens at the prior's resolution (1024 queries per head for SDXL at 1024 px), a softmax over those
tokens, and a product with two weight columns. Everything else stays in fused attention.

The resolution is image size / `prior_res_div` (32: SDXL's 32x32 layers at 1024 px). A model without
attention at that size (the tiny test pipelines) takes the nearest resolution it has, by area.
"""

from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from imgdiff.p2p.processor import CrossPhase

log = logging.getLogger("imgdiff")

_LEVEL = re.compile(r"^(down_blocks|up_blocks)\.(\d+)\.|^mid_block\.")


def layer_grids(unet: torch.nn.Module, latent_hw: tuple[int, int]) -> dict[str, tuple[int, int]]:
    """Attention processor name -> the (h, w) grid of queries it sees, from the UNet's block layout
    (level i of the down path halves the latent i times; the up path mirrors it; the middle block sits
    at the lowest level)."""
    levels = len(unet.config.down_block_types)
    grids = {}
    for name in unet.attn_processors:
        match = _LEVEL.match(name)
        if match is None:
            raise ValueError(f"attention layer {name} is outside the UNet's down/mid/up blocks")
        if match.group(1) == "down_blocks":
            level = int(match.group(2))
        elif match.group(1) == "up_blocks":
            level = levels - 1 - int(match.group(2))
        else:
            level = levels - 1
        h, w = latent_hw
        for _ in range(level):
            h, w = (h + 1) // 2, (w + 1) // 2  # a stride-2 convolution with padding 1
        grids[name] = (h, w)
    return grids


def prior_grid(grids: dict[str, tuple[int, int]], height: int, width: int, res_div: int) -> tuple[int, int]:
    """The attention grid nearest (by area, on a log scale) to image size / `res_div`."""
    want = (height / res_div) * (width / res_div)
    have = sorted(set(grids.values()), key=lambda hw: (abs(math.log(hw[0] * hw[1] / want)), -hw[0] * hw[1]))
    chosen = have[0]
    if chosen[0] * chosen[1] != round(want):
        log.info(
            "attention prior: no attention at %dx%d; using the nearest grid %dx%d",
            height // res_div,
            width // res_div,
            *chosen,
        )
    return chosen


class PriorCollector:
    """Accumulates the changed words' maps for the pairs of one pipeline call.

    Per step and layer this costs a copy of the conditional rows' queries into head-major order, one
    (queries x tokens) product, a softmax and one accumulating product; the keys, scaled, are made
    once per layer and call (the text does not change between steps)."""

    def __init__(
        self,
        grid: tuple[int, int],
        cond_start: int,
        word_weights: list[tuple[torch.Tensor, torch.Tensor]],
        wanted: list[bool],
        heads: set[int],
        device: torch.device | str,
    ) -> None:
        self.grid = grid
        self.queries = grid[0] * grid[1]
        self.cond_start = cond_start
        self.word_weights = word_weights  # per pair (w_a, w_b), see `prior_weights`
        self.device = device
        # per cross phase key (None: no edit): (2 * pairs, tokens, 2) float32 on the device; rows a, b
        # of each pair, columns map a, map b. `prepare` makes them before the call.
        self.weights: dict[int | None, torch.Tensor] = {}
        self.wanted = wanted  # pairs whose words were found
        self.pairs = len(wanted)
        rows = 2 * self.pairs
        # per head count of the prior's layers: (rows, heads * queries, 2) sums, reduced at the end
        self.sums = {h: torch.zeros(rows, h * self.queries, 2, device=device) for h in sorted(heads)}

    def prepare(self, phase: CrossPhase | None) -> torch.Tensor:
        """The weight matrix for steps of `phase` (None: unedited steps), made once."""
        key = None if phase is None else phase.key
        if key not in self.weights:
            mixes_alphas = None if phase is None else (phase.mixes, phase.alphas)
            self.weights[key] = prior_weights(self.word_weights, mixes_alphas).to(self.device)
        return self.weights[key]

    def keys(self, attn: torch.nn.Module, key: torch.Tensor) -> torch.Tensor:
        """The conditional rows' keys of a layer, scaled, as (rows * heads, head_dim, tokens)."""
        if attn.norm_q is not None or attn.norm_k is not None:
            raise NotImplementedError("attention prior: layers with query/key norms are not supported")
        rows, heads = 2 * self.pairs, attn.heads
        k = key[self.cond_start :] * attn.scale
        return k.view(rows, k.shape[1], heads, -1).permute(0, 2, 3, 1).reshape(rows * heads, -1, k.shape[1])

    def collect(self, query_heads: torch.Tensor, keys: torch.Tensor, phase: CrossPhase | None) -> None:
        """Add one layer's maps; `query_heads` is the batch's (batch, heads, n, head_dim) queries,
        `keys` what `keys()` made for the layer, `phase` the step's cross edit (None: none)."""
        batch, heads, n, head_dim = query_heads.shape
        q = query_heads[self.cond_start :].reshape(-1, n, head_dim)
        probs = torch.softmax(torch.bmm(q, keys), dim=-1, dtype=torch.float32)
        # the heads of a row share its two weight columns: (rows, heads * n, tokens) @ (rows, tokens, 2)
        self.sums[heads].baddbmm_(probs.view(2 * self.pairs, heads * n, -1), self.prepare(phase))

    def running_maps(self) -> torch.Tensor:
        """(pairs, 2, h, w) float32 on the device: the sums so far (local blend reads them after
        every step; `maps` at the end of the call)."""
        total = sum(s.view(self.pairs, 2 * h, self.queries, 2).sum(1) for h, s in self.sums.items())
        return total.transpose(1, 2).reshape(self.pairs, 2, *self.grid)

    def maps(self) -> list[np.ndarray | None]:
        """Per pair: float16 (2, h, w), each channel scaled to [0, 1] by its maximum; None for pairs
        whose words were not found."""
        total = self.running_maps().float().cpu().numpy()
        out: list[np.ndarray | None] = []
        for pair, wanted in enumerate(self.wanted):
            if not wanted:
                out.append(None)
                continue
            maps = total[pair]
            peak = maps.reshape(2, -1).max(axis=1)
            scale = np.where(peak > 0, peak, 1.0)[:, None, None]
            out.append((maps / scale).astype(np.float16))
        return out


def prior_weights(
    word_weights: list[tuple[torch.Tensor, torch.Tensor]],
    mixes_alphas: tuple[torch.Tensor, torch.Tensor] | None,
) -> torch.Tensor:
    """The (2 * pairs, tokens, 2) weight matrix for one kind of step.

    `word_weights[i]` = (w_a, w_b): 1/count on the changed words' positions of each prompt (zeros
    when absent). On edited steps `mixes_alphas` = (mixes, alphas) of the step's phase: `mixes[i]` =
    G diag(alpha), the refine map onto the source's columns, and `alphas[i]`; None on unedited steps.
    Edited: source row [w_a, G diag(alpha) w_b], target row [0, (1 - alpha) w_b]; unedited: [w_a, 0],
    [0, w_b].
    """
    pairs, tokens = len(word_weights), len(word_weights[0][0])
    weights = torch.zeros(2 * pairs, tokens, 2)
    for i, (w_a, w_b) in enumerate(word_weights):
        weights[2 * i, :, 0] = w_a
        if mixes_alphas is None:
            weights[2 * i + 1, :, 1] = w_b
        else:
            mixes, alphas = mixes_alphas
            weights[2 * i, :, 1] = mixes[i] @ w_b
            weights[2 * i + 1, :, 1] = (1 - alphas[i]) * w_b
    return weights
