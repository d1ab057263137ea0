"""Object removal's inpainting, seconds per object.

    python benchmarks/inpaint_speed.py [--coco ../shared/data/coco-mini] [--objects 60]
    python benchmarks/inpaint_speed.py --full      # CUDA: SDXL-Turbo's architecture, random fp16 weights

CPU mode: the weight-free OpenCV inpainter (`imgdiff.models.inpaint`, as the `remove` stage calls it)
on COCO photos with their own instance masks (polygons, objects of at least 1% of the image, mask
dilated 10 px as the stage's default), at the photo's size and resized to 512 px (the paper's pairs).
Full mode: the `diffusers` inpainter on SDXL's full architecture (SDXL-Turbo is SDXL-base's UNet,
VAE and text encoders, distilled) built with random fp16 weights on the GPU, the paper's settings
(512 px, 4 steps, strength 0.85, guidance 0, "background, nothing"), at 1 and 8 objects per call,
each after an untimed warm-up. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imgdiff.models.inpaint import DiffusersInpainter, OpenCVInpainter, grow
from imgdiff.models.roles import Inpainting


def coco_objects(root: Path, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(photo, object mask) for the first `count` objects of at least 1% of their photo."""
    from PIL import Image

    data = json.loads((root / "instances.json").read_text())
    images = {info["id"]: info for info in data["images"]}
    out = []
    for ann in data["annotations"]:
        info = images[ann["image_id"]]
        if ann.get("iscrowd") or not isinstance(ann["segmentation"], list):
            continue
        if ann["area"] < 0.01 * info["width"] * info["height"]:
            continue
        photo = np.asarray(Image.open(root / "images" / info["file_name"]).convert("RGB"))
        mask = np.zeros(photo.shape[:2], np.uint8)
        for polygon in ann["segmentation"]:
            cv2.fillPoly(mask, [np.asarray(polygon, np.float32).reshape(-1, 2).round().astype(np.int32)], 1)
        out.append((photo, mask.astype(bool)))
        if len(out) == count:
            break
    return out


def per_object(inpainter: Any, objects: list[tuple[np.ndarray, np.ndarray]], how: Inpainting) -> float:
    """Seconds per object, one object per call (as `remove` hands OpenCV a batch: one by one)."""
    start = time.perf_counter()
    for photo, hole in objects:
        inpainter.inpaint([photo], [grow(hole, 10)], how)
    return (time.perf_counter() - start) / len(objects)


def cpu(args: argparse.Namespace) -> dict[str, Any]:
    objects = coco_objects(args.coco, args.objects)
    at_512 = [
        (
            cv2.resize(p, (512, 512), interpolation=cv2.INTER_AREA),
            cv2.resize(m.view(np.uint8), (512, 512)) > 0,
        )
        for p, m in objects
    ]
    opencv = OpenCVInpainter("opencv")
    native = per_object(opencv, objects, Inpainting())
    resized = per_object(opencv, at_512, Inpainting())
    holes = [float(m.mean()) for _, m in objects]
    return {
        "mode": "cpu",
        "objects": len(objects),
        "hole_share_median": statistics.median(holes),
        "opencv_s_per_object_native": native,
        "opencv_s_per_object_512": resized,
        "native_over_512": native / resized,
    }


def full(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from diffusers import StableDiffusionXLInpaintPipeline

    sys.path.insert(0, str(Path(__file__).parent))
    from p2p_speed import full_size_sdxl

    with tempfile.TemporaryDirectory() as work:
        base = full_size_sdxl("cuda", Path(work))
    pipe = StableDiffusionXLInpaintPipeline(**base.components, add_watermarker=False)
    pipe.set_progress_bar_config(disable=True)
    inpainter = DiffusersInpainter(pipe, "sdxl-turbo-layout")
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"mode": "full", "size": 512, "steps": 4, "strength": 0.85, "guidance": 0.0}
    for batch in (1, 8):
        photos = [rng.integers(0, 255, (512, 512, 3), dtype=np.uint8) for _ in range(batch)]
        hole = np.zeros((512, 512), bool)
        hole[128:384, 160:352] = True
        how = Inpainting(seeds=list(range(batch)))
        inpainter.inpaint(photos, [hole] * batch, how)  # warm-up
        times = []
        for _ in range(args.repeats):
            torch.cuda.synchronize()
            start = time.perf_counter()
            inpainter.inpaint(photos, [hole] * batch, how)
            torch.cuda.synchronize()
            times.append((time.perf_counter() - start) / batch)
        out[f"s_per_object_batch_{batch}"] = statistics.median(times)
    out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="SDXL-Turbo-sized inpainting on CUDA")
    parser.add_argument("--coco", type=Path, default=Path(__file__).parents[1] / "../shared/data/coco-mini")
    parser.add_argument("--objects", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(full(args) if args.full else cpu(args), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
