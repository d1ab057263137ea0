"""The paper's Difference Area Generator (METHOD.md 3.2-3.6): candidate boxes checked by models.

`__call__` scores, for a whole batch at once:
1. candidates from the sources in `candidates` (see `candidates.py`): FastSAM proposals of both
   images (ONE segmenter call for all images of the batch, boxes only), the pixel method's changed
   components, and the Prompt-to-Prompt prior's components; merged by IoU, so no box is scored twice;
2. each candidate cropped from both images at the same coordinates, in memory (squeezed to each
   model's square from the coarsest halving of the image that holds it: `scoring.Pyramid`);
3. `crop_similarity`: CLIP cosine of the two crops, all crops of the batch through the embedder
   in calls of `crops_per_call`;
4. `match_a_*` / `match_b_*`: BLIP between each crop and the changed object of ITS OWN image (a's
   crop with `edit.old`, b's crop with `edit.new`; the reference matched b's crop with a's object),
   both the contrastive `cosine` and the `itm` probability, all pairs of the batch through the
   matcher in calls of `crops_per_call`; without an edit the objects come from a word diff of the
   captions (`objects.py`), with neither there is nothing to match;
5. `area` (of the box, a share of the image), `pixel_diff` (mean Lab delta-E in the box),
   `changed_share` (share of the box the pixel method marks changed) and, with a prior,
   `prior_share` (the prior's share inside the box).
Candidates are stored most different (lowest `crop_similarity`) first; the segmenter masks of the
candidates go into the record's masks file (`<id>_masks.npz`, keys `candidate_<i>_a|b`: the mask
of candidate i from image a's or b's proposal, inside its integer box), made for these candidates
only and only inside their boxes.

`decide` works from stored scores only: per-candidate thresholds (`crop_similarity_lt`, ...), the
matching rule (`any` crop or `all` crops passing `match_above` / `match_at_least` on the
`match_score`), greedy NMS at `nms_iou` in stored order, then `max_regions`. No survivor rejects
`no_regions`; a rule that needs matching on a record with no object to match rejects `no_objects`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from imgdiff.boxes import iou
from imgdiff.pixels import DELTA_E_MAX
from imgdiff.record import Record, Region
from imgdiff.settings import model_ref
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.regions import scoring
from imgdiff.stages.regions.candidates import (
    BoxSums,
    Candidate,
    component_boxes,
    integer_box,
    merge,
    prior_components,
)
from imgdiff.stages.regions.objects import changed_objects
from imgdiff.stages.regions.pixel import PixelRegions

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.store import ImageLoader

MASK_PREFIX = "candidate_"
# Every candidate score, so that every side-table row has the same columns (null where absent).
SCORE_COLUMNS = (
    "crop_similarity",
    "area",
    "pixel_diff",
    "changed_share",
    "prior_share",
    "match_a_cosine",
    "match_a_itm",
    "match_b_cosine",
    "match_b_itm",
)


class SemanticRegionsSettings(StageSettings):
    SCORES = {  # per candidate region
        "crop_similarity": (-1.0, 1.0),  # CLIP cosine of the two crops
        "area": (0.0, 1.0),  # of its box, share of the image
        "pixel_diff": (0.0, DELTA_E_MAX),  # mean delta-E inside the box
        "changed_share": (0.0, 1.0),
        "prior_share": (0.0, 1.0),
    }
    DECISIONS = frozenset(
        {"match_rule", "match_score", "match_above", "match_at_least", "nms_iou", "max_regions"}
    )
    RUNTIME = frozenset({"crops_per_call"})

    embedder: str = model_ref("embedder")
    matcher: str | None = model_ref("matcher", required=False)  # none: no match scores
    segmenter: str | None = model_ref("segmenter", required=False)  # for the `segmenter` source
    candidates: list[Literal["segmenter", "diff", "prior"]] = Field(default_factory=lambda: ["segmenter"])
    merge_iou: float = Field(
        0.8, ge=0, le=1
    )  # a box overlapping an earlier candidate above this is that candidate
    prior_threshold: float = Field(
        0.3, ge=0, le=1
    )  # attention above this is the changed words' area (P2P's local blend)
    max_candidates: int = Field(400, ge=1)  # scored per record, in merge order (FastSAM: by confidence)
    crops_per_call: int = Field(1024, ge=1)  # crops per embedder / matcher call (a speed knob)
    # Per-candidate thresholds, checked in this order.
    crop_similarity_lt: float | None = None
    area_min: float | None = None
    area_max: float | None = None
    pixel_diff_min: float | None = None
    changed_share_min: float | None = None
    prior_share_min: float | None = None
    # Is it the changed object? `any` / `all` of the crops with an object must pass.
    match_rule: Literal["any", "all", "none"] = "none"
    match_score: Literal["cosine", "itm"] = "cosine"
    match_above: float | None = Field(None, ge=-1, le=1)  # passes above this (exclusive)
    match_at_least: float | None = Field(
        None, ge=-1, le=1
    )  # passes when the score is at least this (inclusive)
    nms_iou: float | None = Field(
        None, ge=0, le=1
    )  # drop a box overlapping a kept, more different one above this
    max_regions: int | None = Field(None, ge=1)  # keep at most this many

    @model_validator(mode="after")
    def _models_for_what_is_asked(self) -> SemanticRegionsSettings:
        if "segmenter" in self.candidates and self.segmenter is None:
            raise ValueError("candidates include segmenter: set segmenter to a segmenter model")
        if self.match_rule != "none" and self.matcher is None:
            raise ValueError(f"match_rule {self.match_rule} needs a matcher model (or match_rule: none)")
        return self


# The paper's semantic thresholds (METHOD.md 3.4-3.6), shared by `paper` and `imgdiff`.
_PAPER_DECISIONS = {
    "crop_similarity_lt": 0.85,  # 3.5: the two crops differ
    "match_rule": "any",  # 3.4: either crop shows its object...
    "match_score": "cosine",  # ...by BLIP's contrastive cosine...
    "match_above": 0.35,  # ...above 0.35
    "nms_iou": 0.5,  # 3.6
    "max_regions": 10,  # 3.6
}


class SemanticRegions(Stage):
    name = "regions"
    method = "semantic"
    version = 2  # 2: large boxes squeezed from halved copies of their image (scoring.Pyramid)
    Settings = SemanticRegionsSettings
    SIDE_TABLE = "candidates"
    PRESETS = {
        # The research code: FastSAM boxes of both images, BLIP cosine > 0.35 on either crop,
        # CLIP crop cosine < 0.85, NMS 0.5, 10 boxes (METHOD.md 3.3-3.6).
        "paper": {"candidates": ["segmenter"], **_PAPER_DECISIONS},
        # The Data-Juicer operator: BLIP ITM probability >= 0.4 on BOTH crops (METHOD.md 3.4), the
        # rest as the research code.
        "data-juicer": {
            "candidates": ["segmenter"],
            **_PAPER_DECISIONS,
            "match_rule": "all",
            "match_score": "itm",
            "match_above": None,
            "match_at_least": 0.4,
        },
        # Ours, for localisation: all three sources and the paper's semantic thresholds; the pixel
        # thresholds were chosen on the synthetic and copy-paste sources only (ARCHITECTURE.md).
        "imgdiff": {
            "candidates": ["diff", "prior", "segmenter"],
            **_PAPER_DECISIONS,
            # a box with less mean delta-E holds no visible change: the largest value that lost no
            # recall on 40 synthetic scenes (seed 1) and the 104 copy-paste pairs of coco-mini
            # (benchmarks/regions_localization.py --sweep pixel_diff_min=0,4,6,8,12; 8 lost some)
            "pixel_diff_min": 6.0,
            "area_max": 0.5,  # a change over half the image is not one object
        },
    }

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        super().setup(models, images)
        s = self.settings
        self.embedder = models.get(s.embedder)
        self.matcher = models.get(s.matcher) if s.matcher else None
        self.segmenter = models.get(s.segmenter) if "segmenter" in s.candidates else None
        # the pixel method's changed components, with its own settings
        self.pixels = PixelRegions(PixelRegions.resolve_settings({}, "regions.diff"))

    def __call__(self, records: list[Record]) -> list[Record]:
        pairs = {}
        for record in records:
            a, b = self.images.load(record, "a"), self.images.load(record, "b")
            if a.shape != b.shape:
                record.reject(self.name, f"size_mismatch: {a.shape[:2]} vs {b.shape[:2]}")
            else:
                pairs[record.id] = (a, b)
        todo = [r for r in records if r.id in pairs]
        # 1. Segmenter proposals of every image of the batch, in one call: boxes now, masks later.
        proposals: dict[tuple[str, str], Any] = {}
        if self.segmenter is not None and todo:
            images = [pairs[r.id][i] for r in todo for i in (0, 1)]
            found = self.segmenter.propose(images)
            for k, record in enumerate(todo):
                proposals[record.id, "a"], proposals[record.id, "b"] = found[2 * k], found[2 * k + 1]
        # 2. Candidates and pixel scores per record; crops of all records together.
        scored = {r.id: self._candidates(r, *pairs[r.id], proposals) for r in todo}
        crops_a = [c for r in todo for c in scored[r.id]["crops_a"]]
        crops_b = [c for r in todo for c in scored[r.id]["crops_b"]]
        # 3. One pass of every crop through the embedder, 4. one through the matcher.
        sized = scoring.Presized([*crops_a, *crops_b])
        per_call = self.settings.crops_per_call
        similarity = scoring.crop_similarity(self.embedder, sized.for_model(self.embedder), per_call)
        matches = self._match(todo, scored, sized.for_model(self.matcher) if self.matcher else [])
        start = 0
        for record in todo:
            n = len(scored[record.id]["candidates"])
            self._store(record, scored[record.id], similarity[start : start + n], matches, proposals)
            start += n
        return records

    def _candidates(
        self, record: Record, a: np.ndarray, b: np.ndarray, proposals: dict[tuple[str, str], Any]
    ) -> dict[str, Any]:
        """The record's merged candidates, their integer boxes, crops and pixel scores."""
        s = self.settings
        height, width = a.shape[:2]
        labels, diff = self.pixels.components(a, b)
        prior = self.images.load(record, "prior") if "prior" in record.aux else None
        groups: dict[str, list[Candidate]] = {}
        if "segmenter" in s.candidates:
            source = f"segmenter:{s.segmenter}"
            groups["segmenter"] = [
                Candidate(box=[float(v) for v in box], sources=[source], segments={image: index})
                for image in "ab"
                for index, box in enumerate(proposals[record.id, image].boxes)
            ]
        if "diff" in s.candidates:
            groups["diff"] = [Candidate(box, ["diff"]) for box in component_boxes(labels, (height, width))]
        if "prior" in s.candidates and prior is not None:
            components = prior_components(prior, s.prior_threshold)
            groups["prior"] = [
                Candidate(box, ["prior"]) for box in component_boxes(components, (height, width))
            ]
        candidates = merge([groups.get(name, []) for name in s.candidates], s.merge_iou)[: s.max_candidates]
        boxes = [integer_box(c.box, height, width) for c in candidates]
        sums = {
            "pixel_diff": BoxSums(diff, (height, width)),
            "changed_share": BoxSums((labels > 0).astype(np.float32), (height, width)),
        }
        pixel_scores = [{name: table.mean(box) for name, table in sums.items()} for box in boxes]
        if prior is not None:
            mass = BoxSums(prior.astype(np.float32).sum(axis=0), (height, width))
            for box, scores in zip(boxes, pixel_scores, strict=True):
                scores["prior_share"] = mass.share(box)
        pyramid_a, pyramid_b = scoring.Pyramid(a), scoring.Pyramid(b)  # crops are cut when sized
        return {
            "candidates": candidates,
            "boxes": boxes,
            "pixel_scores": pixel_scores,
            "objects": changed_objects(record),
            "crops_a": [(pyramid_a, box) for box in boxes],
            "crops_b": [(pyramid_b, box) for box in boxes],
            "area": [(x2 - x1) * (y2 - y1) / (height * width) for x1, y1, x2, y2 in boxes],
        }

    def _match(
        self, records: list[Record], scored: dict[str, dict[str, Any]], sized: list[np.ndarray]
    ) -> dict[tuple[str, int, str], tuple[float, float]]:
        """{(record id, candidate, image): (ITM probability, cosine)}: each crop against the
        object of its own image, every pair of the batch in one pass. `sized` holds the batch's
        crops of image a, then those of image b, in record and candidate order."""
        if self.matcher is None:
            return {}
        n = len(sized) // 2
        keys, crops, texts = [], [], []
        start = 0
        for record in records:
            entry = scored[record.id]
            count = len(entry["candidates"])
            for offset, image, text in ((0, "a", entry["objects"][0]), (n, "b", entry["objects"][1])):
                if not text:
                    continue  # nothing to match in this image (a removal's b, no caption difference)
                for i in range(count):
                    keys.append((record.id, i, image))
                    crops.append(sized[offset + start + i])
                    texts.append(text)
            start += count
        probability, cosine = scoring.match(self.matcher, crops, texts, self.settings.crops_per_call)
        return {key: (float(p), float(c)) for key, p, c in zip(keys, probability, cosine, strict=True)}

    def _store(
        self,
        record: Record,
        entry: dict[str, Any],
        similarity: np.ndarray,
        matches: dict[tuple[str, int, str], tuple[float, float]],
        proposals: dict[tuple[str, str], Any],
    ) -> None:
        """Regions most different first, their masks, and the record's counts."""
        regions = []
        for i, candidate in enumerate(entry["candidates"]):
            scores = {
                "crop_similarity": float(similarity[i]),
                "area": entry["area"][i],
                **entry["pixel_scores"][i],
            }
            for image in "ab":
                if (record.id, i, image) in matches:
                    itm, cosine = matches[record.id, i, image]
                    scores[f"match_{image}_cosine"], scores[f"match_{image}_itm"] = cosine, itm
            box = [float(v) for v in entry["boxes"][i]]
            regions.append(Region(box=box, source="+".join(candidate.sources), scores=scores))
        order = sorted(range(len(regions)), key=lambda i: regions[i].scores["crop_similarity"])
        record.regions = [regions[i] for i in order]
        wanted: dict[str, list[tuple[int, int, list[int]]]] = {"a": [], "b": []}
        for rank, i in enumerate(order):
            record.regions[rank].scores["candidate"] = float(rank)
            for image, index in entry["candidates"][i].segments.items():
                wanted[image].append((rank, index, entry["boxes"][i]))
        masks = {}
        for image, asked in wanted.items():  # masks of these candidates only, inside their boxes
            if asked:
                made = proposals[record.id, image].masks([q[1] for q in asked], [q[2] for q in asked])
                masks |= {f"{MASK_PREFIX}{q[0]}_{image}": mask for q, mask in zip(asked, made, strict=True)}
        upstream_has = "masks" in record.aux or "masks" in record.artifacts  # truth masks, say
        if masks or upstream_has:
            kept = self.images.load(record, "masks") if upstream_has else {}
            upstream = {k: v for k, v in kept.items() if not k.startswith(MASK_PREFIX)}
            record.artifacts["masks"] = upstream | masks
        record.scores[f"{self.name}.candidates"] = float(len(regions))
        record.scores[f"{self.name}.objects"] = float(sum(bool(text) for text in entry["objects"]))

    # -- deciding from stored scores --------------------------------------------------------------
    def decide(self, record: Record) -> None:
        s = self.settings
        if s.match_rule != "none" and not record.scores.get(f"{self.name}.objects"):
            record.regions = []
            record.reject(
                self.name, f"no_objects: match_rule {s.match_rule} needs an edit or two differing captions"
            )
            return
        verdicts = self.verdicts(record.regions)
        record.regions = [r for r, v in zip(record.regions, verdicts, strict=True) if v is None]
        if not verdicts:
            record.reject(self.name, "no_regions: no candidate box found")
        elif not record.regions:
            codes = [v.split(":")[0] for v in verdicts if v is not None]
            why = ", ".join(f"{code} {codes.count(code)}" for code in dict.fromkeys(codes))
            record.reject(self.name, f"no_regions: all {len(codes)} candidates dropped ({why})")

    def verdicts(self, regions: list[Region]) -> list[str | None]:
        """For each candidate in order: None if kept, else why not."""
        s = self.settings
        kept: list[Region] = []
        out: list[str | None] = []
        for region in regions:
            reason = self.failed_threshold(region.scores) or self._match_verdict(region.scores)
            overlap = max((iou(region.box, k.box) for k in kept), default=0.0)
            if reason is None and s.nms_iou is not None and overlap > s.nms_iou:
                reason = f"nms: IoU {overlap:.2f} > {s.nms_iou:g}"
            if reason is None and s.max_regions is not None and len(kept) >= s.max_regions:
                reason = f"cap: {s.max_regions} regions kept already"
            if reason is None:
                kept.append(region)
            out.append(reason)
        return out

    def _match_verdict(self, scores: dict[str, float]) -> str | None:
        """Why the rule says this is not the changed object, or None."""
        s = self.settings
        if s.match_rule == "none":
            return None
        names = [
            f"match_{image}_{s.match_score}" for image in "ab" if f"match_{image}_{s.match_score}" in scores
        ]
        if not names:
            return f"match_{s.match_rule}: no match_*_{s.match_score} score"
        failed = [name for name in names if not self._passes(scores[name])]
        if (s.match_rule == "any" and len(failed) == len(names)) or (s.match_rule == "all" and failed):
            name = failed[0]
            bound = (
                f"<= {s.match_above:g}"
                if s.match_above is not None and scores[name] <= s.match_above
                else f"< {s.match_at_least:g}"
            )
            return f"match_{s.match_rule}: {name} {scores[name]:.4g} {bound}"
        return None

    def _passes(self, value: float) -> bool:
        s = self.settings
        above = s.match_above is None or value > s.match_above
        return above and (s.match_at_least is None or value >= s.match_at_least)

    def side_rows(self, scored: Record, decided: Record) -> list[dict[str, Any]]:
        """One row per candidate: source, box, scores, and whether (or why not) it was kept."""
        reasons = self.verdicts(scored.regions)
        if decided.reason and decided.reason.startswith("no_objects"):
            reasons = [decided.reason] * len(scored.regions)
        rows = []
        for i, (region, reason) in enumerate(zip(scored.regions, reasons, strict=True)):
            x1, y1, x2, y2 = region.box
            scores = {name: region.scores.get(name) for name in SCORE_COLUMNS}
            rows.append(
                {
                    "id": scored.id,
                    "candidate": i,
                    "source": region.source,
                    "x1": x1,
                    "y1": y1,
                    "x2": x2,
                    "y2": y2,
                }
                | scores
                | {"kept": reason is None, "reason": reason}
            )
        return rows
