"""The tiny FastSAM (`imgdiff models make-tiny`'s `fastsam`): a `.pt` that ultralytics loads like the
real checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imgdiff.models.fastsam import import_ultralytics


def make_tiny(out: Path) -> Path:
    """A random-weight FastSAM (the YOLOv8-seg architecture, one class, width x1/16) whose
    proposals depend on the image and its colour order; returns the `.pt` file."""
    config = {"scale": "t", "scales": {"t": [0.33, 0.0625, 256]}}  # depth, width, max channels
    return build_fastsam(out / "fastsam_tiny.pt", "yolov8n-seg.yaml", config, "cpu", 128)


def build_fastsam(path: Path, architecture: str, config: dict[str, Any], device: str, side: int) -> Path:
    """A FastSAM of `architecture` (an ultralytics bundled YOLOv8-seg yaml; FastSAM is YOLOv8-seg
    trained with one class) with calibrated random weights, saved as `path` (`.pt`).

    Default initialisation makes activations vanish through the random net, so every image would
    get the same boxes. So each conv is rescaled to unit output std on a fixed batch of `side` px (in
    one pass: a hook rescales the weights and the output it passes on), then the class head gets a
    negative bias: some anchors score above conf, and which ones depends on the pixels and their order."""
    import torch

    import_ultralytics()
    from ultralytics.nn.tasks import SegmentationModel, yaml_model_load

    config = {**yaml_model_load(architecture), **config, "nc": 1}
    with torch.random.fork_rng(devices=[]):  # deterministic weights, caller's random state untouched
        torch.manual_seed(0)
        net = SegmentationModel(config, nc=1, verbose=False).eval().to(device)
        # Blocky images, like scenes (flat regions and edges): calibrated on noise, a scene of a
        # few flat objects saturates every score at 1.0 and the proposals' order becomes ties.
        batch = torch.nn.functional.interpolate(torch.rand(4, 3, 8, 8), size=(side, side)).to(device)
    head = net.model[-1]

    def unit_std(conv: torch.nn.Conv2d, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        if conv.bias is not None:  # biases start at zero: only the weights carry the scale
            output = output - conv.bias.view(1, -1, 1, 1)
            conv.bias.zero_()
        scale = 1.0 / max(float(output.std()), 1e-8)
        conv.weight.mul_(scale)
        return output * scale

    # The DFL conv is fixed (no gradient): it decodes box distributions and must stay as built.
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.requires_grad]
    with torch.no_grad():
        hooks = [conv.register_forward_hook(unit_std) for conv in convs]
        net(batch)
        for hook in hooks:
            hook.remove()
        for branch in head.cv3:  # class scores sigmoid(2 z - 3): conf 0.05 passes some anchors
            branch[-1].weight.mul_(2.0)
            branch[-1].bias.fill_(-3.0)
        for branch in head.cv2:  # box distributions: sharper, so boxes differ in size
            branch[-1].weight.mul_(5.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The layout ultralytics saves and FastSAM(path) reads: the pickled model and its task.
    torch.save({"model": net.float().cpu(), "train_args": {"task": "segment"}}, path)
    return path
