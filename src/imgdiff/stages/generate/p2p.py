"""Stage `generate`/`p2p`: an image pair per caption pair with Prompt-to-Prompt (METHOD.md section 2).

The source caption (`caption_a`) and the edited one (`caption_b`) are denoised from one initial
latent made from the record's seed alone, with the edited image's attention tied to the source's
(refine; the engine is `imgdiff.p2p`). How the target's tokens align with the source's and which
steps and layers are edited are settings (`alignment`, `step_rule`, the step windows, per-word windows,
`self_max_queries`); the `paper` preset is Prompt-to-Prompt's own code's rules (`imgdiff.p2p.alignment`,
`imgdiff.p2p.schedule`). Several pairs share one pipeline call (`pairs_per_call`);
the editing costs about 5% over plain two-image generation at 1 and at 4 pairs per call, while plain
generation itself runs faster per pair at 4 (`benchmarks/p2p_speed.py`, PERFORMANCE.md).
The pixels go out as the artifacts `a` and `b`; the changed words' attention maps as `prior`, which
the engine writes to `aux/<id[:2]>/<id>_prior.npy` (float16 (2, h, w), DESIGN.md). The record's
`generation` holds the model, the seed and every setting, so a pair can be made again or audited
from its record alone.

Local blend (`local_blend`, off in every preset: Img-Diff made its pairs without it and leaves
finding the change to its Difference Area stages) is Prompt-to-Prompt's LocalBlend
(`imgdiff.p2p.blend`): after each step from step int(blend_start * steps), image b's latent takes
image a's outside the changed words' maps above `blend_threshold` (0.3, the original's). The last
step's mask goes out as the artifact `blend_mask` (bool, latent size: outside it b's latent is a's);
With it on, `generation.local_blend` says whether the record's pair was blended (a pair whose words
are not in its captions is made without it), beside the threshold, the start and the steps blended;
off, the record and the stage's fingerprint are what they were before local blend existed.

Rejections, each with a reason (bad input never stops the run):
- `missing_edit`: no changed object from the `edit` stage (the prior is the changed words' maps);
- `empty_prompt`, `prompt_too_long`: a caption over CLIP's window (75 text tokens) would be cut by
  the text encoder, and the edited words with it; the engine's own prompt errors keep its reason;
- `nonfinite_image`: NaN or inf in the latents or images (e.g. an fp16 overflow);
- `safety_checker`: an SD 1.x checkpoint's safety checker replaced image a or b with black;
- `out_of_memory`: CUDA ran out of memory. The first time, `pairs_per_call` is halved for the rest
  of the worker's life and the call retried; a single pair that still does not fit is rejected and
  the batch goes on (`calls.ShrinkingCalls`, the rule every `generate` method shares).

Presets name the model family their numbers are for (`family`). `setup` fails with one line when the
model entry is of another family, because 1024 px on SD 1.5 or 512 px on SDXL-base quietly gives
poor images; `family: null` runs a preset's numbers on any family.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from imgdiff.clip_tokens import WINDOW as CLIP_WINDOW
from imgdiff.errors import UsageError
from imgdiff.p2p.schedule import (
    as_window,
    blend_start_step,
    cross_steps,
    self_max_queries_from_size,
    self_steps,
)
from imgdiff.record import Record
from imgdiff.settings import model_ref
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.generate.calls import ShrinkingCalls

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.p2p import PairImages, PairRequest
    from imgdiff.store import ImageLoader

log = logging.getLogger("imgdiff")

SUGGESTED_PRESET = {"sdxl": "paper", "sd15": "sd15"}


class P2PGenerateSettings(StageSettings):
    # How many pairs share a call changes speed and memory, not what a pair is (the engine gives the
    # same pair within float tolerance at any batch composition): it stays out of the fingerprint.
    RUNTIME = frozenset({"pairs_per_call"})

    diffusion: str = model_ref("diffusion")
    # The preset fills these (they have no default of their own): see P2PGenerate.PRESETS.
    family: Literal["sdxl", "sd15"] | None  # the family the numbers are for; None: any
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0)  # <= 1 turns classifier-free guidance off (SDXL-Turbo)
    size: int = Field(ge=8, multiple_of=8)  # square images; height/width override it
    height: int | None = Field(None, ge=8, multiple_of=8)
    width: int | None = Field(None, ge=8, multiple_of=8)
    # How the target's tokens are aligned with the source's (imgdiff.p2p.alignment) and how a step
    # window's fractions become steps (imgdiff.p2p.schedule); see the presets for each one's source.
    alignment: Literal["original", "whole-word"]
    step_rule: Literal["original", "proportional"]
    # Step windows: a fraction f is [0, f), a [start, end) pair of fractions is itself.
    cross_replace: float | list[float]  # steps whose cross-attention is refined ...
    # ... except the target caption's words written exactly as a key, which follow their own window
    cross_replace_words: dict[str, float | list[float]]
    self_replace: float | list[float]  # steps whose self-attention is replaced ...
    # ... in layers with at most this many queries; null: from the image width as the SDXL port
    # does it, ceil(width / 32) ** 2 (1024 at 1024 px, 256 at 512 px)
    self_max_queries: int | None = Field(ge=0)
    prior: bool = True  # keep the changed words' attention maps (aux `prior`)
    # Prompt-to-Prompt's local blend (imgdiff.p2p.blend): from step int(blend_start * steps) on,
    # image b's latent takes image a's outside the changed words' maps above blend_threshold
    local_blend: bool
    blend_threshold: float = Field(0.3, ge=0, lt=1)  # of each map's maximum, as the original's 0.3
    blend_start: float = Field(0.0, ge=0, le=1)  # a fraction of the steps; 0: from the first step
    pairs_per_call: int = Field(4, ge=1)  # PERFORMANCE.md: at 4 the editing is nearly free
    max_prompt_tokens: int = Field(CLIP_WINDOW, ge=1, le=CLIP_WINDOW)

    def score_defining(self) -> dict[str, Any]:
        # Off, the blend settings define nothing: leaving them out keeps the fingerprint of runs made
        # before local blend existed, so those resume without generating again.
        settings = super().score_defining()
        if not self.local_blend:
            for key in ("local_blend", "blend_threshold", "blend_start"):
                settings.pop(key, None)
        return settings

    @field_validator("cross_replace", "self_replace")
    @classmethod
    def _window(cls, value: float | list[float]) -> float | list[float]:
        as_window(value)  # raises ValueError with the reason
        return value

    @field_validator("cross_replace_words")
    @classmethod
    def _word_windows(cls, value: dict[str, float | list[float]]) -> dict[str, float | list[float]]:
        for word, window in value.items():
            if not word or word != word.strip() or " " in word:
                raise ValueError(f"a per-word window's key is one whitespace word, got {word!r}")
            try:
                as_window(window)
            except ValueError as error:
                raise ValueError(f"{word}: {error}") from None
        return value


class P2PGenerate(Stage):
    name = "generate"
    method = "p2p"
    version = 1
    Settings = P2PGenerateSettings
    PRESETS = {
        # METHOD.md 2, from the research code and Data-Juicer's sdxl_prompt2prompt_mapper (both run the
        # SDXL port of Prompt-to-Prompt): SDXL-base 1.0 at 1024 px, 50 steps, guidance 7.5, refine
        # with Prompt-to-Prompt's own token alignment and step rules, cross-attention controlled at
        # every step and self-attention replaced for steps [int(50 * 0), int(50 * 0.4)) = 0-19 in
        # layers of at most ceil(width / 32) ** 2 queries (32x32 at 1024 px). Both pass the per-word
        # windows {"default_": 1.0, "confetti": 0.8} verbatim (the port's README example): a target
        # caption with the word "confetti" refines it for int(0.8 * 51) = 40 steps only.
        "paper": {
            "family": "sdxl",
            "size": 1024,
            "steps": 50,
            "guidance": 7.5,
            "alignment": "original",
            "step_rule": "original",
            "cross_replace": 1.0,
            "cross_replace_words": {"confetti": 0.8},
            "self_replace": 0.4,
            "self_max_queries": None,
            "local_blend": False,  # the research code and Data-Juicer's mapper pass no local blend
        },
        # Ours (the paper has no Turbo pairs): SDXL-Turbo's own sampling from its model card (512 px,
        # 4 steps, guidance off) with the paper's fractions, read as shares of the steps (proportional:
        # self-attention on steps 0-1 of 4; the original's rule would replace it on step 0 only, and at
        # 2 steps on none), and the whole-word alignment: an object word that changes is new in every
        # token, so a sub-token it shares with the old word ("snow|boarder" -> "skate|boarder") does
        # not keep the old object's attention, and the end token and padding follow the source's in
        # order instead of landing on the source's words when the target is shorter. The layer limit
        # follows the size as in the paper (16x16 at 512 px). Local blend off, as in the paper.
        "turbo": {
            "family": "sdxl",
            "size": 512,
            "steps": 4,
            "guidance": 0.0,
            "alignment": "whole-word",
            "step_rule": "proportional",
            "cross_replace": 1.0,
            "cross_replace_words": {},
            "self_replace": 0.4,
            "self_max_queries": None,
            "local_blend": False,
        },
        # Stable Diffusion 1.5 as Prompt-to-Prompt's own code ran SD 1.x: 512 px, 50 steps, guidance
        # 7.5, its alignment and step rules, self-attention replaced in layers of at most 16x16
        # queries (its fixed limit, which is the size rule's at 512 px); the paper's fractions, and
        # local blend off as in the paper.
        "sd15": {
            "family": "sd15",
            "size": 512,
            "steps": 50,
            "guidance": 7.5,
            "alignment": "original",
            "step_rule": "original",
            "cross_replace": 1.0,
            "cross_replace_words": {},
            "self_replace": 0.4,
            "self_max_queries": 16 * 16,
            "local_blend": False,
        },
    }

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        from imgdiff.p2p import P2PConfig

        super().setup(models, images)
        s = self.settings
        self.model = models.get(s.diffusion)
        if s.family is not None and self.model.family != s.family:
            raise UsageError(
                f"generate: preset '{s.preset}' is for {s.family} models but model '{s.diffusion}' is "
                f"{self.model.family}; use preset {SUGGESTED_PRESET[self.model.family]} "
                "or set generate.family=null"
            )
        self.calls = ShrinkingCalls(s.pairs_per_call, "generate: pairs_per_call")
        height, width = s.height or s.size, s.width or s.size
        self_max_queries = s.self_max_queries
        if self_max_queries is None:
            self_max_queries = self_max_queries_from_size(width)
        self.config = P2PConfig(
            steps=s.steps,
            guidance=s.guidance,
            height=height,
            width=width,
            alignment=s.alignment,
            step_rule=s.step_rule,
            cross_replace=_window_value(s.cross_replace),
            cross_replace_words=tuple((w, _window_value(v)) for w, v in s.cross_replace_words.items()),
            self_replace=_window_value(s.self_replace),
            self_max_queries=self_max_queries,
            prior=s.prior,
            local_blend=s.local_blend,
            blend_threshold=s.blend_threshold,
            blend_start=s.blend_start,
        )
        entry = models.entries[s.diffusion]
        where = {"id": entry.id, "revision": entry.revision} if entry.id else {"path": entry.path}
        pipe = self.model.pipe
        self.provenance: dict[str, Any] = {
            "model": s.diffusion,
            **{k: v for k, v in where.items() if v is not None},
            "family": self.model.family,
            "scheduler": type(pipe.scheduler).__name__,
            "dtype": str(pipe.unet.dtype).removeprefix("torch."),
            "attention": "p2p-refine",
            "steps": s.steps,
            "guidance": s.guidance,
            "height": height,
            "width": width,
            "alignment": s.alignment,
            "step_rule": s.step_rule,
            "cross_replace": s.cross_replace,
            "cross_replace_words": dict(s.cross_replace_words),
            "self_replace": s.self_replace,
            "self_max_queries": self_max_queries,  # resolved: the setting, or from the width
            "self_max_queries_from_size": s.self_max_queries is None,
            # the steps (0-based, [start, end)) the default windows edit under the step rule
            "cross_steps": _steps(cross_steps(s.step_rule, as_window(s.cross_replace), s.steps)),
            "self_steps": _steps(self_steps(s.step_rule, as_window(s.self_replace), s.steps)),
        }
        if s.local_blend:  # off, the record is as before local blend existed
            self.provenance["local_blend"] = True  # per record: whether its pair was blended
            self.provenance["blend_threshold"] = s.blend_threshold
            self.provenance["blend_start"] = s.blend_start
            self.provenance["blend_steps"] = [blend_start_step(s.blend_start, s.steps), s.steps]

    @property
    def pairs_per_call(self) -> int:
        """Pairs per pipeline call now: the setting, halved for good on CUDA out-of-memory."""
        return self.calls.size

    def __call__(self, records: list[Record]) -> list[Record]:
        ready = []
        for record in records:
            request = self._request(record)
            if isinstance(request, str):
                record.reject(self.name, request)
            else:
                ready.append((record, request))
        if ready:
            self.calls.run(ready, self._generate, self._out_of_memory)
        return records

    def _request(self, record: Record) -> PairRequest | str:
        """The engine's request for a record, or why the record cannot be generated."""
        from imgdiff.p2p import PairRequest, prompt_tokens

        if record.edit is None or not record.edit.old.strip():
            return "missing_edit: no changed object (edit.old) from the edit stage"
        limit = self.settings.max_prompt_tokens
        for field in ("caption_a", "caption_b"):
            text = getattr(record, field).strip()
            if not text:
                return f"empty_prompt: {field} is empty"
            tokens = prompt_tokens(self.model.pipe, text)
            if tokens > limit:
                return f"prompt_too_long: {field} has {tokens} tokens, over the {limit}-token window"
        return PairRequest(
            prompt_a=record.caption_a.strip(),
            prompt_b=record.caption_b.strip(),
            seed=record.seed,
            words_a=record.edit.old.strip(),
            words_b=record.edit.new.strip(),
        )

    def _generate(self, group: list[tuple[Record, PairRequest]]) -> None:
        """One pipeline call for `group` (CUDA out-of-memory goes up to `ShrinkingCalls`); on a prompt
        the engine refuses, that record is rejected and the rest go again."""
        from imgdiff.p2p import PromptError, generate_pairs

        refused: PromptError | None = None
        started = time.perf_counter()
        try:
            results = generate_pairs(self.model, [request for _, request in group], self.config)
        except PromptError as exc:
            refused = exc
        if refused is not None:
            self._after_refusal(group, str(refused), getattr(refused, "index", None))
            return
        seconds = time.perf_counter() - started
        pairs = f"{len(group)} pair{'s' if len(group) > 1 else ''}"
        log.info("generate: %s in one call, %.2f s per pair", pairs, seconds / len(group))
        for (record, _), images in zip(group, results, strict=True):
            self._keep(record, images)

    def _out_of_memory(self, item: tuple[Record, PairRequest]) -> None:
        item[0].reject(self.name, "out_of_memory: CUDA out of memory at 1 pair per call")

    def _after_refusal(self, group: list[tuple[Record, PairRequest]], reason: str, index: int | None) -> None:
        """The engine refused the prompts of pair `index`: reject that record, generate the rest."""
        if index is not None and not 0 <= index < len(group):
            index = None
        if index is None and len(group) > 1:
            # The engine did not say which pair: halve until the refused one stands alone.
            half = len(group) // 2
            self.calls.run(group[:half], self._generate, self._out_of_memory)
            self.calls.run(group[half:], self._generate, self._out_of_memory)
            return
        index = index or 0
        group[index][0].reject(self.name, reason if ":" in reason else f"prompt_error: {reason}")
        # The engine checks prompts before any work, so going again at once costs nothing.
        rest = group[:index] + group[index + 1 :]
        if rest:
            self.calls.run(rest, self._generate, self._out_of_memory)

    def _keep(self, record: Record, images: PairImages) -> None:
        record.generation = {**self.provenance, "seed": record.seed}
        if not images.finite:
            record.reject(self.name, "nonfinite_image: NaN or inf in the latents or images")
            return
        if images.blanked:
            record.reject(self.name, "safety_checker: the pipeline's safety checker blanked image a or b")
            return
        record.artifacts["a"] = images.a
        record.artifacts["b"] = images.b
        if images.prior is not None:
            record.artifacts["prior"] = np.asarray(images.prior, dtype=np.float16)
        if self.settings.local_blend:
            record.generation["local_blend"] = images.blend_mask is not None
            if images.blend_mask is not None:
                record.artifacts["blend_mask"] = np.asarray(images.blend_mask, dtype=bool)
            else:
                log.info(
                    "generate: record %s made without local blend: its words are not in its captions",
                    record.id,
                )


def _window_value(value: float | list[float]) -> float | tuple[float, float]:
    return value if isinstance(value, float) else as_window(value)


def _steps(steps: range) -> list[int]:
    return [steps.start, max(steps.start, steps.stop)]
