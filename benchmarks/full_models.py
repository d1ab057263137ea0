"""A full-size FastSAM-x architecture with random weights, for GPU timings (nothing downloaded).

FastSAM-x is YOLOv8x-seg trained with one class. Built from ultralytics' bundled
`yolov8x-seg.yaml`, then calibrated as the tiny one is (`imgdiff.tiny.fastsam.build_fastsam`): each
conv rescaled to unit output std on a fixed batch, so that proposals depend on the image (default
initialisation gives the same boxes on every image, which would make every pair cost the same).
"""

from __future__ import annotations

from pathlib import Path


def full_fastsam(out: Path, device: str) -> Path:
    """The FastSAM-x architecture (68 M parameters) with calibrated random weights, as a `.pt`."""
    from imgdiff.tiny.fastsam import build_fastsam

    return build_fastsam(out / "FastSAM-x-random.pt", "yolov8x-seg.yaml", {}, device, 256)
