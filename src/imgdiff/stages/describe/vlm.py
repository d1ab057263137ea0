"""Stage `describe`/`vlm`: the Difference Captions Generator on a vision-language model (METHOD.md 4).

Per pair, the boxes are walked most different first. For a box:
1. a region caption of each ORIGINAL image (the box in [0, 1] coordinates, greedy, 64 tokens);
2. scores: `clip_similarity` (CLIP text cosine of the two captions, each truncated to CLIP's window),
   `blip_cosine_a|b` and `blip_itm_a|b` (BLIP on each caption and its image's crop, the box grown
   by 5 px), and their minima `blip_cosine`, `blip_itm` (a rule "on both crops" is a rule on the
   minimum); `area` (the box's share of image a);
3. for a box that passes, the difference caption: ONE side-by-side image (`imgdiff.render`) with the
   red box on both halves and the two captions as hints (greedy, 128 tokens).
An optional naturalness check asks once per pair whether both images look natural (score
`describe.natural`, 1 yes / 0 no; preset `imgdiff`).

Score, then decide. `decide` walks the boxes again from their stored scores: `paper` skips boxes
under 1/400 of the image and stops after 5 ACCEPTED boxes (rejected ones do not count);
`data-juicer` skips boxes over 1/10, with no cap. A dropped box stays with `rejected_by`/`reason`; no
accepted box rejects the record (`no_regions`).

The work is lazy and cached in the regions. `__call__` computes only what the decision can reach:
for a capped walk, the captions of the next boxes that could still be accepted, in rounds, so it
captions exactly the boxes the reference's one-by-one loop would. Whatever a region already holds
(captions, scores, difference) is reused, so a record whose stored output lacks boxes that a looser
decision now admits (`incomplete`) is finished by calling the stage on that stored output: only the
missing boxes are computed. A decision that reaches a box with no work yet drops it as
`not_described` until then.

Throughput (PERFORMANCE.md): each round hands the backend all region prompts of the batch at once,
then all difference prompts (`batching.PromptBatcher`: sorted by length, `generate_batch_size` per
call, halved on CUDA out-of-memory). Rejections of a record: `missing_image`, `size_mismatch`,
`out_of_memory` (a prompt that does not fit alone), `no_regions`, `require_natural`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import Field

from imgdiff.models.roles import Generation, cosine_rows
from imgdiff.record import Record, Region
from imgdiff.settings import model_ref
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.describe import prompts
from imgdiff.stages.describe.batching import PromptBatcher

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.store import ImageLoader

# What the walk says about one box: decided, or which work it waits for.
State = Literal["earlier", "accepted", "rejected", "caption", "difference"]


class VlmDescribeSettings(StageSettings):
    RUNTIME = frozenset({"generate_batch_size"})
    DECISIONS = frozenset({"max_regions", "require_natural"})
    SCORES = {  # per box
        "area": (0.0, 1.0),  # share of image a
        "clip_similarity": (-1.0, 1.0),  # CLIP text cosine of the two region captions
        "blip_cosine": (-1.0, 1.0),  # the lower of the two crops' BLIP contrastive cosines
        "blip_itm": (0.0, 1.0),  # the lower of the two ITM match probabilities
    }

    vl: str = model_ref("vl_generator")
    embedder: str = model_ref("embedder")
    matcher: str = model_ref("matcher")
    region_tokens: int = Field(64, ge=1)  # METHOD.md 4.1
    difference_tokens: int = Field(128, ge=1)  # METHOD.md 4.4
    naturalness: bool = False  # ask the yes/no naturalness question (score describe.natural)
    natural_tokens: int = Field(8, ge=1)
    generate_batch_size: int = Field(32, ge=1)  # prompts per backend call; PERFORMANCE.md: 32 pays
    # Decisions, checked per box in this order (the thresholds on the box's scores):
    area_min: float | None = None  # skip boxes under this share of image a
    area_max: float | None = None  # skip boxes over this share of image a
    clip_similarity_lt: float | None = None  # the two region captions must differ
    clip_similarity_max: float | None = None
    blip_cosine_gt: float | None = None  # each caption must match its crop
    blip_itm_min: float | None = None
    max_regions: int | None = Field(None, ge=1)  # stop once this many boxes are accepted
    require_natural: bool = False  # reject pairs the naturalness check answers "no" for


class VlmDescribe(Stage):
    name = "describe"
    method = "vlm"
    version = 1
    Settings = VlmDescribeSettings
    PRESETS = {
        # METHOD.md 4, the research code: boxes under 1/400 skipped, 5 accepted at most, captions
        # differ when CLIP cosine < 0.85, each matches its crop when BLIP contrastive cosine > 0.35.
        "paper": {"area_min": 0.0025, "max_regions": 5, "clip_similarity_lt": 0.85, "blip_cosine_gt": 0.35},
        # METHOD.md 4, the Data-Juicer recipe: boxes over 1/10 skipped, no cap, cosine <= 0.8,
        # BLIP ITM >= 0.4.
        "data-juicer": {"area_max": 0.1, "clip_similarity_max": 0.8, "blip_itm_min": 0.4},
        # Ours: the paper's numbers plus the naturalness check.
        "imgdiff": {
            "area_min": 0.0025,
            "max_regions": 5,
            "clip_similarity_lt": 0.85,
            "blip_cosine_gt": 0.35,
            "naturalness": True,
            "require_natural": True,
        },
    }

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        super().setup(models, images)
        s = self.settings
        self.batcher = PromptBatcher(models.get(s.vl), s.generate_batch_size)
        self.embedder = models.get(s.embedder)
        self.matcher = models.get(s.matcher)

    # -- scoring ---------------------------------------------------------------------------------
    def __call__(self, records: list[Record]) -> list[Record]:
        pairs = [pair for pair in (self._pair(record) for record in records) if pair is not None]
        if self.settings.naturalness:
            self._ask_natural([p for p in pairs if f"{self.name}.natural" not in p.record.scores])
        while True:
            # 1. the region captions of every box the decision can reach now, in one round
            captions = self._reachable(pairs, "caption")
            if captions:
                self._caption(captions)
                self._score(captions)
            # 2. the difference captions of the boxes that passed their filters
            differences = self._reachable(pairs, "difference")
            if differences:
                self._differ(differences)
            if not captions and not differences:
                break
        for pair in pairs:
            described = sum("clip_similarity" in r.scores for r in pair.record.regions)
            pair.record.scores[f"{self.name}.regions"] = float(described)
        return records

    def _pair(self, record: Record) -> Pair | None:
        """The record with its two images and every box's area; None after rejecting it."""
        try:
            a, b = self.images.load(record, "a"), self.images.load(record, "b")
        except (KeyError, OSError, ValueError) as exc:
            record.reject(self.name, f"missing_image: {exc}")
            return None
        if a.shape != b.shape:
            record.reject(
                self.name, f"size_mismatch: a is {a.shape[1]}x{a.shape[0]}, b {b.shape[1]}x{b.shape[0]}"
            )
            return None
        height, width = a.shape[:2]
        for region in record.regions:
            box = np.asarray(region.box, dtype=np.float64)
            if box.shape != (4,) or not np.isfinite(box).all():  # a malformed box covers nothing
                region.scores["area"] = 0.0
                continue
            x1, y1, x2, y2 = np.clip(box, 0, [width, height, width, height])
            region.scores["area"] = float(max(x2 - x1, 0) * max(y2 - y1, 0) / (width * height))
        return Pair(record, a, b)

    def _reachable(self, pairs: list[Pair], state: State) -> list[Box]:
        """The boxes the decision could reach that wait for this work (a capped walk counts every
        box still waiting as one that may be accepted, so it never asks for more than it needs)."""
        return [
            Box(pair, region)
            for pair in pairs
            if pair.record.kept and not self._pair_reason(pair.record)
            for region, (found, _) in zip(pair.record.regions, self.walk(pair.record), strict=True)
            if found == state
        ]

    def _caption(self, boxes: list[Box]) -> None:
        """Both region captions of every box, in one backend round."""
        asked = [
            prompts.region_prompt(image, box.region.box)
            for box in boxes
            for image in (box.pair.a, box.pair.b)
        ]
        answers = self.batcher.generate(
            asked, Generation(max_new_tokens=self.settings.region_tokens), "region"
        )
        for k, box in enumerate(boxes):
            a, b = answers[2 * k], answers[2 * k + 1]
            if a is None or b is None:
                box.pair.record.reject(self.name, "out_of_memory: a region prompt does not fit alone")
                continue
            box.region.captions = {"a": a, "b": b}

    def _score(self, boxes: list[Box]) -> None:
        """CLIP text cosine of the two captions and BLIP on each caption with its crop, batched."""
        boxes = [box for box in boxes if box.pair.record.kept]
        if not boxes:
            return
        texts = [box.region.captions[side] for box in boxes for side in ("a", "b")]
        embedded = self.embedder.embed_texts(texts)
        similarity = cosine_rows(embedded[0::2], embedded[1::2])
        crops = [prompts.crop(box.pair.image(side), box.region.box) for box in boxes for side in ("a", "b")]
        itm, cosine = self.matcher.match(crops, texts)
        for k, box in enumerate(boxes):
            scores = box.region.scores
            scores["clip_similarity"] = float(similarity[k])
            scores["blip_cosine_a"], scores["blip_cosine_b"] = float(cosine[2 * k]), float(cosine[2 * k + 1])
            scores["blip_itm_a"], scores["blip_itm_b"] = float(itm[2 * k]), float(itm[2 * k + 1])
            scores["blip_cosine"] = min(scores["blip_cosine_a"], scores["blip_cosine_b"])
            scores["blip_itm"] = min(scores["blip_itm_a"], scores["blip_itm_b"])

    def _differ(self, boxes: list[Box]) -> None:
        """The difference caption of every box, in one backend round."""
        asked = [
            prompts.difference_prompt(b.pair.a, b.pair.b, b.region.box, b.region.captions) for b in boxes
        ]
        sampling = Generation(max_new_tokens=self.settings.difference_tokens)
        for box, answer in zip(boxes, self.batcher.generate(asked, sampling, "difference"), strict=True):
            if answer is None:
                box.pair.record.reject(self.name, "out_of_memory: a difference prompt does not fit alone")
            else:
                box.region.difference = answer

    def _ask_natural(self, pairs: list[Pair]) -> None:
        asked = [prompts.natural_prompt(pair.a, pair.b) for pair in pairs]
        sampling = Generation(max_new_tokens=self.settings.natural_tokens)
        for pair, answer in zip(pairs, self.batcher.generate(asked, sampling, "naturalness"), strict=True):
            if answer is None:
                pair.record.reject(self.name, "out_of_memory: the naturalness prompt does not fit alone")
            else:
                pair.record.scores[f"{self.name}.natural"] = 1.0 if prompts.said_yes(answer) else 0.0

    # -- deciding --------------------------------------------------------------------------------
    def decide(self, record: Record) -> None:
        """Walk the boxes from their stored scores; a box whose work is missing is `not_described`."""
        reason = self._pair_reason(record)
        if reason is not None:
            record.reject(self.name, reason)
            return
        accepted = 0
        for region, (state, why) in zip(record.regions, self.walk(record), strict=True):
            if state == "earlier":
                continue
            region.rejected_by = region.reason = None
            if state == "accepted":
                accepted += 1
                continue
            if state in ("caption", "difference"):
                why = f"not_described: no {state} caption yet; run the same command again to compute it"
            region.rejected_by, region.reason = self.name, why
        if not accepted:
            record.reject(self.name, f"no_regions: none of {len(record.regions)} boxes accepted")

    def incomplete(self, record: Record) -> bool:
        """Whether the current decision reaches a box (or the pair check) whose work the stored
        output lacks: calling the stage on that stored output computes just that work."""
        if self.settings.require_natural and f"{self.name}.natural" not in record.scores:
            return True
        if self._pair_reason(record) is not None:
            return False
        return any(state in ("caption", "difference") for state, _ in self.walk(record))

    def walk(self, record: Record) -> list[tuple[State, str | None]]:
        """Each box's state in order, with the reason of a rejected one. The cap counts the accepted
        boxes and those still waiting for work (they may be accepted), so scoring never asks for
        more boxes than the reference's one-by-one loop would."""
        s = self.settings
        accepted = waiting = 0
        states: list[tuple[State, str | None]] = []
        for region in record.regions:
            if region.rejected_by not in (None, self.name):  # dropped by an earlier stage
                states.append(("earlier", None))
                continue
            if s.max_regions is not None and accepted + waiting >= s.max_regions:
                states.append(("rejected", f"max_regions: {s.max_regions} already accepted"))
                continue
            state, reason = self._box_state(region)
            states.append((state, reason))
            accepted += state == "accepted"
            waiting += state in ("caption", "difference")
        return states

    def _box_state(self, region: Region) -> tuple[State, str | None]:
        s = self.settings
        area = region.scores.get("area")
        if area is None:
            return "rejected", "area_min: score area missing"
        if area <= 0:
            return "rejected", "empty_box: the box covers no pixel of the image"
        if s.area_min is not None and area < s.area_min:
            return "rejected", f"area_min: area {area:.4g} < {s.area_min:g}"
        if s.area_max is not None and area > s.area_max:
            return "rejected", f"area_max: area {area:.4g} > {s.area_max:g}"
        if "clip_similarity" not in region.scores or set(region.captions) != {"a", "b"}:
            return "caption", None
        empty = [side for side in ("a", "b") if not region.captions[side].strip()]
        if empty:
            return "rejected", f"empty_caption: the region caption of image {empty[0]} is empty"
        reason = self.failed_threshold(region.scores)
        if reason is not None:
            return "rejected", reason
        if region.difference is None:
            return "difference", None
        if not region.difference.strip():
            return "rejected", "empty_difference: the difference caption is empty"
        return "accepted", None

    def _pair_reason(self, record: Record) -> str | None:
        """Why the whole pair fails the naturalness rule (None: it passes or the rule is off)."""
        if not self.settings.require_natural:
            return None
        natural = record.scores.get(f"{self.name}.natural")
        if natural is None:
            return "require_natural: score natural missing"
        return None if natural >= 1 else "require_natural: the model says the pair does not look natural"


@dataclass
class Pair:
    record: Record
    a: np.ndarray
    b: np.ndarray

    def image(self, side: str) -> np.ndarray:
        return self.a if side == "a" else self.b


@dataclass
class Box:
    pair: Pair
    region: Region
