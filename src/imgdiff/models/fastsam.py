"""FastSAM segmenter (ultralytics, the optional extra `segment`): class-agnostic object proposals.

`regions` crops every proposal of either image of a pair (METHOD.md 3.3). Settings come from the
model entry; unset ones take the paper's FastSAM-x settings (imgsz 1024, conf 0.05, iou 0.5) and
ultralytics' max_det 300. Masks are "retina" masks: at the input image's size, so a mask and a box
index the same pixels.

ultralytics reads numpy images as BGR (OpenCV's order) while ours are RGB, so each image is
flipped before the call. It also reaches for the network on its own (settings sync, fonts, weights
it does not find): it is imported only after `YOLO_OFFLINE` and `YOLO_CONFIG_DIR` are set, and it
is only ever given an existing local `.pt`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from imgdiff.errors import UsageError
from imgdiff.models.clip import rgb_arrays
from imgdiff.models.compat import ultralytics_half_precision
from imgdiff.models.loading import device_of, dtype_of, locate
from imgdiff.models.roles import Segments

PAPER_SETTINGS = {"imgsz": 1024, "conf": 0.05, "iou": 0.5, "max_det": 300}


class FastSamSegmenter:
    """The `Segmenter` role (roles.py) on a loaded ultralytics FastSAM model."""

    def __init__(self, model: Any, settings: dict[str, Any], batch_size: int = 16) -> None:
        self.model = model
        self.settings = settings  # ultralytics predict arguments: imgsz, conf, iou, max_det, device, ...
        self.batch_size = batch_size

    def segment(self, images: list[np.ndarray]) -> list[Segments]:
        """One `Segments` per RGB uint8 image: boxes in its pixels, masks at its size."""
        images = rgb_arrays(images)
        # ultralytics pads a batch of one shape to the smallest stride multiple, a mixed batch to a
        # square: images go in groups of one shape, so an image's proposals never depend on its
        # batch companions.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        out: dict[int, Segments] = {}
        for indices in by_shape.values():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                bgr = [np.ascontiguousarray(images[i][..., ::-1]) for i in chunk]
                results = self.model.predict(bgr, **self.settings, retina_masks=True, verbose=False)
                for i, result in zip(chunk, results, strict=True):
                    out[i] = _segments(result, images[i].shape[:2])
        return [out[i] for i in range(len(images))]


def _segments(result: Any, size: tuple[int, int]) -> Segments:
    """An ultralytics result as numpy arrays; no detections give empty arrays of the right shapes."""
    if result.masks is None or len(result.boxes) == 0:
        return Segments(
            boxes=np.zeros((0, 4), np.float32),
            masks=np.zeros((0, *size), bool),
            scores=np.zeros(0, np.float32),
        )
    return Segments(
        boxes=result.boxes.xyxy.float().cpu().numpy(),
        masks=result.masks.data.cpu().numpy() > 0.5,
        scores=result.boxes.conf.float().cpu().numpy(),
    )


def import_ultralytics() -> None:
    """Import ultralytics on our terms. It is kept off the network, with its settings file in a
    cache folder, unless the user chose otherwise (this must happen before its first import). And
    its import replaces `PIL.Image.open` process-wide with a wrapper that imports `pi_heif` on a file
    PIL cannot read, turning a corrupt image's `UnidentifiedImageError` into `ModuleNotFoundError`
    in every other stage and source: the original is put back."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if "YOLO_CONFIG_DIR" not in os.environ:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        os.environ["YOLO_CONFIG_DIR"] = str(cache / "imgdiff" / "ultralytics")
    from PIL import Image

    pil_open = Image.open
    try:
        from ultralytics.utils import patches
    finally:
        Image.open = pil_open
    if Image.open.__module__ == patches.__name__:  # patched by an earlier import of ultralytics
        Image.open = getattr(patches, "_image_open", Image.open)  # where it keeps PIL's own


def weights_file(name: str, path: Path) -> Path:
    """The `.pt` file an entry names: the file itself, or the only `.pt` in a folder (a hub
    snapshot). ultralytics would try to download any other name."""
    if path.is_dir():
        found = sorted(path.glob("*.pt"))
        if len(found) != 1:
            raise UsageError(
                f"model '{name}': {path} holds {len(found)} .pt files; set path to the FastSAM .pt file"
            )
        return found[0]
    if path.suffix != ".pt":
        raise UsageError(f"model '{name}': {path} is not a .pt file; set path to the FastSAM .pt weights")
    return path


def load(name: str, entry: Any) -> FastSamSegmenter:
    """The segmenter for a models: entry naming a FastSAM `.pt` (or a folder holding one)."""
    import torch

    path = weights_file(name, locate(name, entry))
    import_ultralytics()
    from ultralytics import FastSAM

    settings = {
        key: getattr(entry, key) if getattr(entry, key) is not None else default
        for key, default in PAPER_SETTINGS.items()
    }
    device = settings["device"] = device_of(entry)
    if dtype_of(entry, device) == torch.float16:  # float32 on the CPU; bfloat16 is not offered
        settings.update(ultralytics_half_precision())
    return FastSamSegmenter(FastSAM(str(path)), settings)
