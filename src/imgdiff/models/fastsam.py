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
                results = self._predict(bgr, retina_masks=True)
                for i, result in zip(chunk, results, strict=True):
                    out[i] = _segments(result, images[i].shape[:2])
        return [out[i] for i in range(len(images))]

    def propose(self, images: list[np.ndarray]) -> list[Proposals]:
        """One `Proposals` per RGB uint8 image: boxes and scores as `segment` gives them, and
        masks only on request, for chosen boxes and inside each box (`Proposals.masks`). Scoring
        needs boxes only; upsampling every mask to full resolution, as retina masks do, is most
        of FastSAM's post-processing cost (METHOD.md 7)."""
        images = rgb_arrays(images)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for index, image in enumerate(images):
            by_shape.setdefault(image.shape, []).append(index)
        out: dict[int, Proposals] = {}
        for indices in by_shape.values():  # one shape per call, as in `segment`
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                bgr = [np.ascontiguousarray(images[i][..., ::-1]) for i in chunk]
                results = self._predict(bgr, predictor=_predictor_class())
                for i, result in zip(chunk, results, strict=True):
                    out[i] = _proposals(result)
        return [out[i] for i in range(len(images))]

    def _predict(self, images: list[np.ndarray], **options: Any) -> list[Any]:
        """`model.predict` at the caller's torch thread count. Setting up a predictor, ultralytics
        sets it process-wide to cores - 1 (1 on a 2-core machine: every other model of the run at
        half speed, and this call's results depending on whether it set one up): the count is put
        back as inference starts (its `on_predict_start` event) and kept after."""
        import torch

        threads = torch.get_num_threads()

        def keep(_predictor: Any) -> None:
            torch.set_num_threads(threads)

        self.model.add_callback("on_predict_start", keep)
        try:
            return self.model.predict(images, **self.settings, **options, verbose=False)
        finally:
            self.model.callbacks["on_predict_start"].remove(keep)
            torch.set_num_threads(threads)


class Proposals:
    """One image's proposals: `boxes` (k, 4) float32 [x1, y1, x2, y2] in its pixels, `scores`
    (k,), and the mask prototypes and coefficients that make any box's mask on request."""

    def __init__(
        self, boxes: np.ndarray, scores: np.ndarray, prototypes: Any, coefficients: Any, letterbox: Any
    ):
        self.boxes = boxes
        self.scores = scores
        self._prototypes = prototypes  # (32, mh, mw) logits basis at a quarter of the model input
        self._coefficients = coefficients  # (k, 32)
        self._letterbox = letterbox  # (gain x, gain y, pad x, pad y, input height, input width)
        self._basis: tuple[np.ndarray, np.ndarray] | None = None  # (mh, mw, 32), (k, 32)

    def masks(self, indices: list[int], boxes: list[list[int]]) -> list[np.ndarray]:
        """The mask of proposal `indices[j]` inside the integer pixel box `boxes[j]` (rows y1:y2,
        columns x1:x2 of the image), as bool (y2 - y1, x2 - x1): the prototype logits over the
        box only, sampled bilinearly at each pixel's centre, positive inside (ultralytics' retina
        masks upsample every prototype logit map to the whole image first)."""
        if not indices:
            return []
        if self._basis is None:  # numpy once, on first request; cells last, so a box's are rows
            prototypes = self._prototypes.float().permute(1, 2, 0).contiguous().cpu().numpy()
            self._basis = prototypes, self._coefficients.float().cpu().numpy()
        prototypes, coefficients = self._basis
        mh, mw, _ = prototypes.shape
        gain_x, gain_y, pad_x, pad_y, _, _ = self._letterbox
        factor = _whole_factor(gain_x, gain_y, pad_x, pad_y)
        out = []
        for index, (x1, y1, x2, y2) in zip(indices, boxes, strict=True):
            # the cells whose logits the box's pixels interpolate between
            cx1 = min(max(int(np.floor(_cell(x1, gain_x, pad_x))), 0), mw - 1)
            cy1 = min(max(int(np.floor(_cell(y1, gain_y, pad_y))), 0), mh - 1)
            cx2 = min(max(int(np.ceil(_cell(x2 - 1, gain_x, pad_x))) + 1, cx1 + 1), mw)
            cy2 = min(max(int(np.ceil(_cell(y2 - 1, gain_y, pad_y))) + 1, cy1 + 1), mh)
            patch = prototypes[cy1:cy2, cx1:cx2] @ coefficients[index]  # (cy2 - cy1, cx2 - cx1)
            if factor:
                left, top = x1 + pad_x / gain_x - factor * cx1, y1 + pad_y / gain_y - factor * cy1
                logits = _enlarged(patch, factor, round(left), round(top), (x2 - x1, y2 - y1))
            else:
                left, top = _cell(x1, gain_x, pad_x) - cx1, _cell(y1, gain_y, pad_y) - cy1
                logits = _warped(patch, gain_x, gain_y, left, top, (x2 - x1, y2 - y1))
            out.append(logits > 0)
        return out


def _whole_factor(gain_x: float, gain_y: float, pad_x: float, pad_y: float) -> int:
    """k when a prototype cell is exactly k x k pixels (k = 4 / gain, whole) and the padding is a
    whole number of pixels, as for an image at the model's input size or a power-of-two part of
    it; else 0. Then a plain k-times enlargement of the cells samples every pixel centre (shifted
    by whole pixels), at a third of a general warp's cost, with the warp's very values (its
    1/32-cell sample positions hold the enlargement's multiples of 1/(2k) exactly, for k <= 16)."""
    k = 4 / gain_x
    whole = round(k)
    exact = gain_x == gain_y and 1 <= whole <= 16 and abs(k - whole) < 1e-9
    if exact and (pad_x / gain_x).is_integer() and (pad_y / gain_y).is_integer():
        return whole
    return 0


def _enlarged(patch: np.ndarray, k: int, left: int, top: int, size: tuple[int, int]) -> np.ndarray:
    """The `size` (w, h) window at (left, top) of the patch enlarged k times, bilinearly: output
    pixel v samples cell (v + 0.5) / k - 0.5. One replicated cell around the patch keeps every
    window inside the enlargement and reads the edges as the warp's BORDER_REPLICATE does."""
    import cv2

    padded = cv2.copyMakeBorder(patch, 1, 1, 1, 1, cv2.BORDER_REPLICATE)
    big = cv2.resize(padded, (padded.shape[1] * k, padded.shape[0] * k), interpolation=cv2.INTER_LINEAR)
    return big[top + k : top + k + size[1], left + k : left + k + size[0]]


def _warped(
    patch: np.ndarray, gain_x: float, gain_y: float, left: float, top: float, size: tuple[int, int]
) -> np.ndarray:
    """The patch sampled bilinearly at pixel centres, pixel (u, v) at cell (gain_x u / 4 + left,
    gain_y v / 4 + top) of the patch."""
    import cv2

    warp = np.array([[gain_x / 4, 0, left], [0, gain_y / 4, top]], np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(patch, warp, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)


def _cell(pixel: float, gain: float, pad: float) -> float:
    """The prototype cell coordinate of a pixel's centre: into the model input (letterbox), then
    a quarter of that (prototypes are at stride 4), cell centres on integers."""
    return ((pixel + 0.5) * gain + pad) / 4 - 0.5


def _predictor_class() -> Any:
    """FastSAM's predictor, keeping each result's mask prototypes and coefficients instead of
    making masks (built on first use: ultralytics is imported late)."""
    global _BOXES_PREDICTOR
    if _BOXES_PREDICTOR is None:
        from ultralytics.models.fastsam import FastSAMPredictor
        from ultralytics.utils import ops

        class BoxesPredictor(FastSAMPredictor):
            def construct_result(self, pred: Any, img: Any, orig_img: Any, img_path: Any, proto: Any) -> Any:
                from ultralytics.engine.results import Results

                height, width = img.shape[2:]
                h, w = orig_img.shape[:2]
                # the letterbox as ultralytics' scale_boxes undoes it: each side rounded, centred
                gain = min(height / h, width / w)
                new_h, new_w = max(round(h * gain), 1), max(round(w * gain), 1)
                pad_x, pad_y = round((width - new_w) / 2 - 0.1), round((height - new_h) / 2 - 0.1)
                letterbox = (new_w / w, new_h / h, pad_x, pad_y, height, width)
                pred[:, :4] = ops.scale_boxes(img.shape[2:], pred[:, :4], orig_img.shape)
                result = Results(orig_img, path=img_path, names=self.model.names, boxes=pred[:, :6])
                result.mask_basis = (proto, pred[:, 6:], letterbox)
                return result

        _BOXES_PREDICTOR = BoxesPredictor
    return _BOXES_PREDICTOR


_BOXES_PREDICTOR: Any = None


def _proposals(result: Any) -> Proposals:
    prototypes, coefficients, letterbox = result.mask_basis
    return Proposals(
        boxes=result.boxes.xyxy.float().cpu().numpy().reshape(-1, 4),
        scores=result.boxes.conf.float().cpu().numpy().reshape(-1),
        prototypes=prototypes,
        coefficients=coefficients,
        letterbox=letterbox,
    )


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
    in every other stage and source: the original is put back. It also sets `OMP_NUM_THREADS=1`
    and `NUMEXPR_MAX_THREADS` in the environment, which every process started later inherits
    (a resumed run, a Ray or export worker would compute on one thread, and a model's float
    results can differ with the thread count): the user's values are put back."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    if "YOLO_CONFIG_DIR" not in os.environ:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        os.environ["YOLO_CONFIG_DIR"] = str(cache / "imgdiff" / "ultralytics")
    from PIL import Image

    pil_open = Image.open
    threads = {name: os.environ.get(name) for name in ("OMP_NUM_THREADS", "NUMEXPR_MAX_THREADS")}
    try:
        from ultralytics.utils import patches
    finally:
        Image.open = pil_open
        for name, value in threads.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
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
