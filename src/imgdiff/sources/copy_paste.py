"""Source `copy_paste`: pairs with exact ground truth, edited from any COCO-format instance dataset.

    source: {type: copy_paste, images: DIR, instances: instances.json, captions: captions.json}

Items are (image id, k) for k in range(`edits_per_image`), images sorted by id. Edit k of a photo
picks a target object: a non-crowd instance whose mask covers `min_area`..`max_area` of the image.
The targets of one photo come from a fixed shuffle of its eligible objects (keyed by the image id),
edit k taking the (k mod n)-th, so a photo's edits change distinct objects while there are enough;
sibling records have seeds of their own, so only a shared order can keep them apart. Everything
else comes from `np.random.default_rng(record.seed)`:
- a *removal* (share `removal_share`, first pass over the objects only: removing the same object
  twice would give the same pair) fills the object's mask, dilated by `dilate` px, by OpenCV
  inpainting;
- a *replacement* removes the object the same way, then pastes an instance of another category: its
  mask cut out of its own photo, scaled to fit the target's box keeping its aspect ratio (enlarged
  at most 2x), centred on it horizontally and standing on its bottom edge, its edge feathered
  (`feather`). Paste sources are clean objects (see `_POOL_*`); those of the target's
  supercategory and of a similar aspect ratio and size come first.
Truth: `truth_a` is the target's mask, `truth_b` the pasted object's footprint (alpha > 0.5; all
False for a removal), in `artifacts["masks"]`; the one truth box is the bounding box of their
union (x2, y2 exclusive). Captions: the photo's first caption, edited when it names the object
(`imgdiff.language.swaps` / `removal`), else both built from the instance labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator, model_validator

from imgdiff.errors import UsageError
from imgdiff.language.coco_words import label_caption
from imgdiff.language.removal import remove_category
from imgdiff.language.swaps import rename_category
from imgdiff.models import inpaint
from imgdiff.record import Edit, Record, TruthBox
from imgdiff.sources import coco
from imgdiff.sources.base import BadItem, Source, SourceSettings, one_line
from imgdiff.sources.images import MAX_PIXELS, confined_path, decoded, opened

# Paste sources: whole, well-resolved objects. A mask that fills little of its box, or is split in
# several polygons, is usually occluded; one touching the border is cut off.
_POOL_MIN_AREA = 0.005  # of its image
_POOL_MIN_SIDE = 24  # px, the box's short side: smaller ones blur when scaled up
_POOL_MIN_FILL = 0.4  # mask area / box area
_POOL_BORDER = 2  # px from the image border
_POOL_MAX_COVERED = 0.3  # share of its box under other objects' boxes: more is occluded or laden
# Paste sources within this aspect ratio of the target's box and needing no more upscaling than
# this (more shows as blur) come first; failing any, those nearest on both.
_ASPECT = np.log(1.5)
_MAX_UPSCALE = 1.5
_UPSCALE_CAP = 2.0  # a paste never grows more than this: a smaller sharp object beats a blurred one
_CHOICES = 3  # a preferred group of paste sources is used alone when it has this many
_TRIES = 8  # paste sources tried in turn when one's photo cannot be read


class CopyPasteSettings(SourceSettings):
    images: str  # folder of the photos; `file_name` in the instances is relative to it
    instances: str  # COCO instances JSON
    captions: str | None = None  # COCO captions JSON; without it, captions come from the labels
    edits_per_image: int = Field(4, ge=1)
    removal_share: float = Field(0.5, ge=0.0, le=1.0)
    min_area: float = Field(0.01, gt=0.0, le=1.0)  # target mask area, share of the image
    max_area: float = Field(0.25, gt=0.0, le=1.0)
    inpaint: Literal["telea", "ns"] = "telea"  # cv2.inpaint's method
    dilate: int = Field(5, ge=0)  # px the mask grows before inpainting: COCO outlines are coarse
    feather: float = Field(1.5, ge=0.0)  # px, Gaussian sigma of the pasted object's alpha edge

    @field_validator("images", "instances", "captions")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        return None if value is None else str(Path(value).expanduser().absolute())

    @model_validator(mode="after")
    def _areas(self) -> CopyPasteSettings:
        if self.min_area > self.max_area:
            raise ValueError(f"min_area {self.min_area:g} is above max_area {self.max_area:g}")
        return self


@dataclass(frozen=True)
class _Paste:
    annotation: coco.Annotation
    aspect: float  # log(width / height) of its box


class CopyPasteSource(Source):
    type = "copy_paste"
    version = 2  # 2: captions keep the number of "sheep", "herd of ..." (collectives, plural verbs)
    Settings = CopyPasteSettings
    settings: CopyPasteSettings

    # -- the source interface --------------------------------------------------------------------
    def check(self) -> None:
        if not Path(self.settings.images).is_dir():
            raise UsageError(f"source.images: folder '{self.settings.images}' not found")
        _ = self._instances, self._captions

    def fingerprint(self) -> str:
        # The annotations' content and the settings define the items; where the files lie does not.
        paths = ("images", "instances", "captions")
        settings = self.settings.model_dump(mode="json", exclude=set(paths))
        digest = hashlib.sha256(f"{self.type}:v{self.version}:{sorted(settings.items())}".encode())
        for path in (self.settings.instances, self.settings.captions):
            digest.update(b"\0" + (_file_hash(Path(path)) if path else b"none"))
        return digest.hexdigest()[:16]

    def count(self) -> int:
        return len(self._instances.images) * self.settings.edits_per_image

    def items(self) -> Iterator[tuple[int, int]]:
        for image_id in sorted(self._instances.images):
            for k in range(self.settings.edits_per_image):
                yield image_id, k

    # -- one record ------------------------------------------------------------------------------
    def fill(self, record: Record, item: tuple[int, int]) -> None:
        image_id, k = item
        s, data = self.settings, self._instances
        info = data.images[image_id]
        a = self._photo(info, "image")
        masks = _masks(data.by_image[image_id], info)
        eligible = [m for m in masks if not m.crowd and s.min_area <= m.share <= s.max_area]
        if not eligible:
            raise BadItem(
                f"no_object: none of the image's {len(masks)} objects is a non-crowd object covering "
                f"{s.min_area:g}-{s.max_area:g} of it"
            )
        order = np.random.default_rng(_image_seed(image_id)).permutation(len(eligible))
        target = eligible[order[k % len(eligible)]]
        rng = np.random.default_rng(record.seed)
        removal = rng.random() < s.removal_share and k < len(eligible)
        old = data.categories[target.annotation.category_id]
        b = _inpaint(a, target.mask, s.dilate, s.inpaint)
        truth_b = np.zeros_like(target.mask)
        new = ""
        if not removal:
            paste, crop, crop_mask = self._paste_source(target, rng)
            new = data.categories[paste.category_id]
            b, truth_b = _composite(b, crop, crop_mask, _box(target.mask), s.feather)
        record.kind = "removal" if removal else "replacement"
        record.edit = Edit(old=old, new=new)
        record.caption_a, record.caption_b = self._captions_for(image_id, masks, target, new, truth_b)
        record.truth = [TruthBox(box=[float(v) for v in _box(target.mask | truth_b)], role="changed")]
        record.artifacts.update(a=a, b=b, masks={"truth_a": target.mask, "truth_b": truth_b})

    def _paste_source(
        self, target: _Mask, rng: np.random.Generator
    ) -> tuple[coco.Annotation, np.ndarray, np.ndarray]:
        """An instance of another category (annotation, its crop and its mask in the crop)."""
        data = self._instances
        x1, y1, x2, y2 = _box(target.mask)
        aspect = np.log((x2 - x1) / (y2 - y1))
        cat = target.annotation.category_id
        others = [p for p in self._pool if p.annotation.category_id != cat]
        if not others:
            raise BadItem(f"no_object: no paste source of a category other than {data.categories[cat]}")

        def misfit(p: _Paste) -> tuple[float, float]:
            """(log aspect ratio difference, log upscale): how far the paste is from the box."""
            _, _, w, h = p.annotation.bbox
            return abs(p.aspect - aspect), max(0.0, float(np.log(min((x2 - x1) / w, (y2 - y1) / h))))

        similar = [p for p in others if misfit(p)[0] <= _ASPECT and misfit(p)[1] <= np.log(_MAX_UPSCALE)]
        kin = [
            p for p in similar if data.supercategories[p.annotation.category_id] == data.supercategories[cat]
        ]
        closest = sorted(others, key=lambda p: (sum(misfit(p)), p.annotation.id))[:_TRIES]
        tier = next(t for t in (kin, similar, closest) if len(t) >= min(_CHOICES, len(closest)))
        for index in rng.permutation(len(tier))[:_TRIES]:
            ann = tier[index].annotation
            info = data.images[ann.image_id]
            try:
                photo = self._photo(info, "paste source")
                mask = coco.decode_mask(ann.segmentation, info.height, info.width)
            except Exception:  # BadItem or garbage in its annotation
                continue  # an unreadable paste source is skipped, never the target's fault
            x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
            if w and h:
                return ann, photo[y : y + h, x : x + w], mask[y : y + h, x : x + w]
        raise BadItem(f"missing_file: none of {min(len(tier), _TRIES)} paste sources could be read")

    def _captions_for(
        self, image_id: int, masks: list[_Mask], target: _Mask, new: str, truth_b: np.ndarray
    ) -> tuple[str, str]:
        """(caption a, caption b): the photo's own caption edited, else both from the labels."""
        names = self._instances.categories
        old = names[target.annotation.category_id]
        count_old = sum(names[m.annotation.category_id] == old for m in masks)
        own = self._captions.get(image_id, "")
        if own:
            edited = rename_category(own, old, new, count_old) if new else remove_category(own, old)
            if edited is not None:
                return own, edited
        before = [(names[m.annotation.category_id], m.crowd, m.share) for m in masks]
        after = [x for x, m in zip(before, masks, strict=True) if m is not target]
        if new:
            after.append((new, False, float(truth_b.mean())))
        return label_caption(_counts(before)), label_caption(_counts(after))

    # -- data ------------------------------------------------------------------------------------
    @cached_property
    def _instances(self) -> coco.Instances:
        return _read("instances", Path(self.settings.instances), coco.read_instances)

    @cached_property
    def _captions(self) -> dict[int, str]:
        path = self.settings.captions
        return {} if path is None else _read("captions", Path(path), coco.read_captions)

    @cached_property
    def _pool(self) -> list[_Paste]:
        """Paste sources, in annotation id order: clean, whole, well-resolved objects."""
        out = []
        for image_id, anns in sorted(self._instances.by_image.items()):
            info = self._instances.images[image_id]
            for ann in anns:
                x, y, w, h = ann.bbox
                if (
                    ann.iscrowd
                    or not isinstance(ann.segmentation, list)
                    or len(ann.segmentation) != 1
                    or min(w, h) < _POOL_MIN_SIDE
                    or ann.area < _POOL_MIN_AREA * info.width * info.height
                    or ann.area < _POOL_MIN_FILL * w * h
                    or min(x, y) < _POOL_BORDER
                    or x + w > info.width - _POOL_BORDER
                    or y + h > info.height - _POOL_BORDER
                    or _covered(ann, anns) > _POOL_MAX_COVERED
                ):
                    continue
                out.append(_Paste(ann, float(np.log(w / h))))
        return sorted(out, key=lambda p: p.annotation.id)

    def _photo(self, info: coco.ImageInfo, what: str) -> np.ndarray:
        # A COCO `file_name` stays inside `images`, and a photo within MAX_PIXELS (no settings: a
        # COCO dataset has neither need, and the resolved recipe stays as it was).
        path = confined_path(Path(self.settings.images), info.file_name, what, allow_outside=False)
        with opened(path, what, info.file_name, MAX_PIXELS) as image:
            rgb = decoded(image, what, info.file_name)
        if rgb.shape[:2] != (info.height, info.width):
            raise BadItem(
                f"size_mismatch: {what} '{info.file_name}' is {rgb.shape[1]}x{rgb.shape[0]}, "
                f"the instances say {info.width}x{info.height}"
            )
        return rgb


@dataclass(frozen=True, eq=False)
class _Mask:
    annotation: coco.Annotation
    mask: np.ndarray  # bool, image size
    share: float  # of the image
    crowd: bool


def _masks(annotations: list[coco.Annotation], info: coco.ImageInfo) -> list[_Mask]:
    """The image's objects in annotation id order; one whose mask cannot be decoded is left out."""
    out = []
    for ann in sorted(annotations, key=lambda a: a.id):
        try:
            mask = coco.decode_mask(ann.segmentation, info.height, info.width)
        except Exception:  # any garbage in one annotation (an RLE of random bytes: IndexError)
            continue
        out.append(_Mask(ann, mask, float(mask.mean()), ann.iscrowd))
    return out


def _covered(ann: coco.Annotation, others: list[coco.Annotation]) -> float:
    """Share of the annotation's box under the boxes of the image's other objects (summed)."""
    x, y, w, h = ann.bbox
    total = 0.0
    for other in others:
        if other is not ann:
            ox, oy, ow, oh = other.bbox
            total += max(0.0, min(x + w, ox + ow) - max(x, ox)) * max(0.0, min(y + h, oy + oh) - max(y, oy))
    return total / (w * h)


def _counts(labels: list[tuple[str, bool, float]]) -> dict[str, int]:
    """{category: count, -1 for a crowd}, the categories covering most of the image first."""
    counts: dict[str, int] = {}
    area: dict[str, float] = {}
    for name, crowd, share in labels:
        counts[name] = -1 if crowd or counts.get(name) == -1 else counts.get(name, 0) + 1
        area[name] = area.get(name, 0.0) + share
    return {name: counts[name] for name in sorted(counts, key=lambda n: (-area[n], n))}


def _inpaint(image: np.ndarray, mask: np.ndarray, dilate: int, method: str) -> np.ndarray:
    """The image with the mask, grown by `dilate` px, filled from its surroundings."""
    return inpaint.fill(image, inpaint.grow(mask, dilate), method)


def _composite(
    canvas: np.ndarray,
    crop: np.ndarray,
    crop_mask: np.ndarray,
    box: tuple[int, int, int, int],
    feather: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(canvas with the object pasted into the box, the pasted footprint): scaled to fit the box
    keeping its aspect ratio (but never over `_UPSCALE_CAP`), centred across it, standing on its
    bottom edge; alpha feathered."""
    x1, y1, x2, y2 = box
    scale = min((x2 - x1) / crop.shape[1], (y2 - y1) / crop.shape[0], _UPSCALE_CAP)
    width, height = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    pixels = cv2.resize(crop, (width, height), interpolation=interpolation).astype(np.float32)
    solid = cv2.resize(crop_mask.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR) > 0.5
    # Alpha: the mask shrunk by the feather width, then blurred, so it falls to ~0 at the outline
    # and the source photo's background (COCO outlines are coarse) does not come along.
    pad = int(np.ceil(3 * feather))
    alpha = np.pad(solid.astype(np.float32), pad)
    if feather > 0:
        size = 2 * round(feather) + 1
        alpha = cv2.erode(alpha, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
        alpha = cv2.GaussianBlur(alpha, (0, 0), feather)
    pixels = cv2.copyMakeBorder(pixels, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    left, top = x1 + (x2 - x1 - width) // 2 - pad, y2 - height - pad
    out = canvas.astype(np.float32)
    footprint = np.zeros(canvas.shape[:2], bool)
    # Clip the padded paste to the canvas.
    cx1, cy1 = max(left, 0), max(top, 0)
    cx2, cy2 = min(left + alpha.shape[1], canvas.shape[1]), min(top + alpha.shape[0], canvas.shape[0])
    a = alpha[cy1 - top : cy2 - top, cx1 - left : cx2 - left, None]
    p = pixels[cy1 - top : cy2 - top, cx1 - left : cx2 - left]
    out[cy1:cy2, cx1:cx2] = a * p + (1.0 - a) * out[cy1:cy2, cx1:cx2]
    footprint[cy1:cy2, cx1:cx2] = a[..., 0] > 0.5
    return np.clip(np.round(out), 0, 255).astype(np.uint8), footprint


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """[x1, y1, x2, y2) of a mask's pixels."""
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    return x, y, x + w, y + h


def _image_seed(image_id: int) -> int:
    """Seed of a photo's target order: shared by its edits, independent of the run."""
    return int.from_bytes(hashlib.sha256(f"copy_paste:{image_id}".encode()).digest()[:8], "big")


def _file_hash(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.digest()


def _read(setting: str, path: Path, reader: Any) -> Any:
    """Read an annotation file; a missing or malformed one is a one-line UsageError."""
    if not path.is_file():
        raise UsageError(f"source.{setting}: file '{path}' not found")
    try:
        return reader(path)
    except ValueError as exc:
        raise UsageError(f"source.{setting}: '{path}' is not a COCO {setting} file: {exc}") from None
    except Exception as exc:  # garbage the structural checks did not foresee
        raise UsageError(
            f"source.{setting}: '{path}' is not a COCO {setting} file: {one_line(exc)}"
        ) from None
