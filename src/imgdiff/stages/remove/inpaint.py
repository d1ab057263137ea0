"""Stage `remove`, method `inpaint`: changed objects painted out, each a `removal` child (METHOD.md 5).

`__call__`, per kept pair of the batch:
1. objects: for image a then image b, the boxes `regions` kept, most different first, whose two
   crops differ (stored `crop_similarity` < `changed_below`; CLIP < 0.9 in the paper), that the
   segmenter outlined in THAT image (mask `candidate_<i>_<a|b>` of the record's masks file) and
   that do not overlap an earlier pick of the same image above `nms_iou`; at most `per_image` each.
   The object phrase of image a is `edit.old`, of image b `edit.new` (without an edit, the caption
   difference); an image with no phrase gives no child, as nothing could verify the removal.
2. each object's mask, dilated by `dilate` px, is inpainted away: every hole of the batch in one
   call of the inpainter, each with its child's seed.
3. `present_before` / `present_after`: the matcher (BLIP) score of the object's phrase against the
   box's crop before and after removal, every crop of the batch in one pass.
Child k (`<id>-<k>`, numbered over a's objects then b's) holds image a = the original (with the
object), image b = the inpainted one, `kind: removal`, `edit` {old: object, new: ""}, the caption of
the original, the removed mask (`removed`, full image, dilated) in its masks file, every inpainting setting
and its seed in `generation`, the object's box
as `truth` (role `removed`), and as `regions` the components where the two images differ (the pixel
method's), so `imgdiff eval localization` scores how exactly the removal stayed on its object. The
parent is replaced by its children; a pair without any object comes back rejected (`no_objects`).

`decide` (stored scores only): `present_before_min` (the object is there before: BLIP >= 0.35) and
`present_after_max` (gone after: <= 0.2).
"""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field

from imgdiff.boxes import iou
from imgdiff.models.inpaint import grow
from imgdiff.models.roles import Inpainting
from imgdiff.record import Edit, Record, Region, TruthBox
from imgdiff.settings import model_ref
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.regions import scoring
from imgdiff.stages.regions.candidates import component_boxes, integer_box
from imgdiff.stages.regions.objects import changed_objects
from imgdiff.stages.regions.pixel import PixelRegions
from imgdiff.stages.regions.semantic import MASK_PREFIX

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.store import ImageLoader

REMOVED = "removed"  # the child's masks-file key of the removed (dilated) mask


class InpaintRemoveSettings(StageSettings):
    RUNTIME = frozenset({"crops_per_call"})
    SCORES = {  # the matcher's score of the object phrase against the box's crop
        "present_before": (-1.0, 1.0),  # BLIP cosine in [-1, 1]; ITM probability in [0, 1]
        "present_after": (-1.0, 1.0),
    }

    inpainter: str = model_ref("inpainter")
    matcher: str = model_ref("matcher")
    per_image: int = Field(3, ge=1)  # objects removed per image of the pair
    # crops differ: stored crop_similarity below `changed_below` (None: any)
    changed_below: float | None = Field(0.9, ge=-1, le=1)
    # a box overlapping an earlier pick of its image above `nms_iou` is skipped
    nms_iou: float | None = Field(0.5, ge=0, le=1)
    dilate: int = Field(10, ge=0)  # px the object's mask grows: segmenter outlines miss its rim
    prompt: str = "background, nothing"
    strength: float = Field(0.85, gt=0, le=1)
    steps: int = Field(4, ge=1)
    guidance: float = Field(0.0, ge=0)
    size: int = Field(512, ge=8)  # the inpainting pipeline's side
    match_score: Literal["cosine", "itm"] = "cosine"  # BLIP's contrastive cosine or ITM probability
    crops_per_call: int = Field(256, ge=1)
    present_before_min: float | None = None
    present_after_max: float | None = None


class InpaintRemove(Stage):
    name = "remove"
    method = "inpaint"
    version = 2  # 2: large boxes squeezed from halved copies of their image (scoring.Pyramid)
    Settings = InpaintRemoveSettings
    PRESETS = {
        # METHOD.md 5: CLIP < 0.9, NMS, 3 per image; SDXL-Turbo "background, nothing", strength
        # 0.85, 4 steps, guidance 0, 512 px; BLIP present before >= 0.35, gone after <= 0.2.
        # (NMS at 0.5 and the 10 px dilation are ours: the paper gives no numbers.)
        "paper": {"present_before_min": 0.35, "present_after_max": 0.2},
    }

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        super().setup(models, images)
        self.inpainter = models.get(self.settings.inpainter)
        self.matcher = models.get(self.settings.matcher)
        self.pixels = PixelRegions(PixelRegions.resolve_settings({}, "remove.diff"))

    def __call__(self, records: list[Record]) -> list[Record]:
        s = self.settings
        groups: list[tuple[Record, list[Record]]] = []
        holes, originals, crops_of = [], [], []
        for record in records:
            children = self._children(record) if record.kept else []
            groups.append((record, children))
            for child in children:
                originals.append(child.artifacts["a"])
                holes.append(child.artifacts["masks"][REMOVED])
        todo = [c for _, children in groups for c in children]
        how = Inpainting(s.prompt, s.strength, s.steps, s.guidance, s.size, [c.seed for c in todo])
        removed = self.inpainter.inpaint(originals, holes, how) if todo else []
        texts = []
        for child, without in zip(todo, removed, strict=True):
            child.artifacts["b"] = without
            x1, y1, x2, y2 = integer_box(child.truth[0].box, *without.shape[:2])
            box = [x1, y1, x2, y2]
            crops_of.append(((scoring.Pyramid(child.artifacts["a"]), box), (scoring.Pyramid(without), box)))
            texts.append(child.edit.old if child.edit else "")
            child.regions = self._differences(child.artifacts["a"], without)
        crops = [c for pair in crops_of for c in pair]
        sized = scoring.Presized(crops).for_model(self.matcher)
        itm, cosine = scoring.match(self.matcher, sized, [t for t in texts for _ in (0, 1)], s.crops_per_call)
        chosen = cosine if s.match_score == "cosine" else itm
        for k, child in enumerate(todo):
            child.scores[f"{self.name}.present_before"] = float(chosen[2 * k])
            child.scores[f"{self.name}.present_after"] = float(chosen[2 * k + 1])
        out: list[Record] = []
        for parent, children in groups:
            out += children or [parent]
        return out

    def _children(self, record: Record) -> list[Record]:
        """The record's objects to remove, each as a child with its original and its hole (the
        inpainted image comes later, for the whole batch at once)."""
        s = self.settings
        try:
            has_masks = "masks" in record.aux or "masks" in record.artifacts
            masks = self.images.load(record, "masks") if has_masks else {}
        except (OSError, ValueError, zipfile.BadZipFile) as exc:  # masks file gone or damaged: this pair only
            record.reject(self.name, f"missing_file: masks of {record.id}: {exc}")
            return []
        objects = dict(zip("ab", changed_objects(record), strict=True))
        captions = {"a": record.caption_a, "b": record.caption_b}
        children: list[Record] = []
        for image in "ab":
            if not objects[image]:
                continue
            pixels = self.images.load(record, image)
            height, width = pixels.shape[:2]
            picked: list[Region] = []
            for region in record.regions:
                similarity = region.scores.get("crop_similarity")
                if s.changed_below is not None and (similarity is None or similarity >= s.changed_below):
                    continue
                key = f"{MASK_PREFIX}{int(region.scores.get('candidate', -1))}_{image}"
                box = integer_box(region.box, height, width)
                if key not in masks or masks[key].shape != (box[3] - box[1], box[2] - box[0]):
                    continue  # no segmenter outline of this box in this image (or not of this box)
                if not masks[key].any():
                    continue
                if s.nms_iou is not None and any(iou(region.box, p.box) > s.nms_iou for p in picked):
                    continue
                picked.append(region)
                child = record.child(len(children))
                child.kind, child.edit = "removal", Edit(old=objects[image], new="")
                child.caption_a, child.caption_b = captions[image], ""
                child.images, child.aux, child.regions = {}, {}, []
                child.generation = self._how_made(record, image, child.seed)
                child.truth = [TruthBox(box=[float(v) for v in box], role="removed")]
                child.scores[f"{self.name}.crop_similarity"] = (
                    float(similarity) if similarity is not None else 1.0
                )
                hole = np.zeros((height, width), bool)
                hole[box[1] : box[3], box[0] : box[2]] = masks[key]
                child.artifacts = {"a": pixels, "masks": {REMOVED: grow(hole, s.dilate)}}
                children.append(child)
                if len(picked) == s.per_image:
                    break
        if not children:
            why = "an object phrase" if not any(objects.values()) else "a changed box with a segmenter mask"
            record.reject(self.name, f"no_objects: no image of the pair has {why}")
        return children

    def _how_made(self, parent: Record, image: str, seed: int) -> dict[str, Any]:
        """The child's provenance: which image of which pair, and every inpainting setting."""
        s = self.settings
        settings = ("inpainter", "prompt", "strength", "steps", "guidance", "size", "dilate")
        return {
            "removed_from": image,
            **{name: getattr(s, name) for name in settings},
            "seed": seed,
            "pair": dict(parent.generation),  # how the parent pair was made, if imgdiff made it
        }

    def _differences(self, a: np.ndarray, b: np.ndarray) -> list[Region]:
        """Boxes of the components where the two images differ (the pixel regions method's)."""
        labels, _ = self.pixels.components(a, b)
        return [Region(box=box, source="diff") for box in component_boxes(labels, a.shape[:2])]
