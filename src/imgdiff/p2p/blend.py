"""Local blend: after each denoising step, the edited latent takes the source's outside the changed words.

Prompt-to-Prompt's `LocalBlend` (google/prompt-to-prompt) keeps the background of image b identical
to image a's in latent space. After each scheduler step it takes the changed words' cross-attention
maps accumulated so far, for both prompts (the source's old words over image a, the target's new
words over image b), summed over the words' tokens and averaged over heads and layers at one
resolution; max-pools them 3x3 (stride 1), upsamples them to the latent's size (nearest), scales each
map by its maximum, thresholds it (`> threshold`, 0.3 by default), unions the two masks and sets
x_b = x_a + mask * (x_b - x_a).

Here the maps are the prior's running sums (`prior.py`): the same changed words, the same refined
target columns the images are made with, at the prior's one resolution, accumulated over the steps
run so far, in the fused form (only the words' columns are made explicit). Sums instead of means
scale each map by a constant, which the scaling by its maximum removes. With the 8x VAE of SD and
SDXL the prior's image size / 32 is latent / 4: 16x16 at 512 px, where Prompt-to-Prompt took its
maps (SD 1.x's cross-attention layers at 16x16: down_blocks.2 and up_blocks.1; its 8x8 middle block
is at another resolution), and 32x32 at 1024 px, where SDXL's layers of that resolution include the
middle block's, and the SDXL port's `attn_res` puts its maps.

The mix is written as a select, `where(mask, x_b, x_a)`: for a 0/1 mask it is the formula above,
and it keeps x_a bit for bit outside the mask and x_b bit for bit inside (the formula's
x_a + (x_b - x_a) rounds). A pair whose words are not in its prompts has no maps and is not blended.
Blending starts at step int(start * steps), as the original's later `start_blend` counts it (0: from
the first step, as its first LocalBlend).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from imgdiff.p2p.prior import PriorCollector
from imgdiff.p2p.schedule import blend_start_step


class LocalBlend:
    """Blends each pair's edited latent with its source's, from one call's word maps."""

    def __init__(
        self, collector: PriorCollector, latent_hw: tuple[int, int], threshold: float, start: float
    ) -> None:
        self.collector = collector
        self.latent_hw = latent_hw
        self.threshold = threshold
        self.start = start
        # pairs without maps keep their own latent everywhere: an all-true mask row
        self.blended = torch.tensor(collector.wanted, device=collector.device).view(-1, 1, 1, 1)
        self.mask: torch.Tensor | None = None  # (pairs, 1, h, w) bool: the last step's mask

    def maps(self) -> torch.Tensor:
        """(pairs, 2, h, w) float32 at the latent's size: the pooled, upsampled maps of the steps run
        so far, each scaled to [0, 1] by its maximum (an all-zero map, e.g. a removal's target, stays 0)."""
        pooled = F.max_pool2d(self.collector.running_maps(), kernel_size=3, stride=1, padding=1)
        upsampled = F.interpolate(pooled, size=self.latent_hw, mode="nearest")
        peak = upsampled.amax(dim=(2, 3), keepdim=True)
        return upsampled / torch.where(peak > 0, peak, torch.ones_like(peak))

    def __call__(self, latents: torch.Tensor, step: int, steps: int) -> torch.Tensor:
        """The step's latents, (2 * pairs, channels, h, w) as [a0, b0, a1, b1, ...], with each b
        replaced by its a outside the pair's mask (in place); unchanged before the start step."""
        if step < blend_start_step(self.start, steps):
            return latents
        mask = (self.maps() > self.threshold).any(dim=1, keepdim=True) | ~self.blended
        self.mask = mask
        latents = latents.contiguous()  # a no-op for the schedulers' outputs; a view needs it
        pairs = latents.view(-1, 2, *latents.shape[1:])
        pairs[:, 1] = torch.where(mask, pairs[:, 1], pairs[:, 0])
        return latents
