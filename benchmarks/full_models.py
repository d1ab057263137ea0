"""A full-size FastSAM-x architecture with random weights, for GPU timings (nothing downloaded).

FastSAM-x is YOLOv8x-seg trained with one class. Built from ultralytics' bundled
`yolov8x-seg.yaml`, then calibrated as the tiny one is (`imgdiff.models.fastsam.make_tiny`): each
conv rescaled to unit output std on a fixed batch, so that proposals depend on the image (default
initialisation gives the same boxes on every image, which would make every pair cost the same).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def full_fastsam(out: Path, device: str) -> Path:
    """The FastSAM-x architecture (68 M parameters) with calibrated random weights, as a `.pt`."""
    import torch

    from imgdiff.models.fastsam import import_ultralytics

    import_ultralytics()
    from ultralytics.nn.tasks import SegmentationModel, yaml_model_load

    config = yaml_model_load("yolov8x-seg.yaml")
    config.update(nc=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = SegmentationModel(config, nc=1, verbose=False).eval().to(device)
        batch = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), size=(256, 256)).to(device)

    def unit_std(conv: torch.nn.Conv2d, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if conv.bias is not None:
            output = output - conv.bias.view(1, -1, 1, 1)
            conv.bias.zero_()
        scale = 1.0 / max(float(output.std()), 1e-8)
        conv.weight.mul_(scale)
        return output * scale

    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.requires_grad]
    with torch.no_grad():
        hooks = [conv.register_forward_hook(unit_std) for conv in convs]
        net(batch)
        for hook in hooks:
            hook.remove()
        head = net.model[-1]
        for branch in head.cv3:  # class scores sigmoid(2 z - 3): conf 0.05 passes some anchors
            branch[-1].weight.mul_(2.0)
            branch[-1].bias.fill_(-3.0)
        for branch in head.cv2:
            branch[-1].weight.mul_(5.0)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "FastSAM-x-random.pt"
    torch.save({"model": net.float().cpu(), "train_args": {"task": "segment"}}, path)
    return path
