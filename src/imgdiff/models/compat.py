"""Differences between the library versions imgdiff supports, each answered in one place.

The backends call these instead of asking for a version themselves. Each shim says which versions
need it and when it can go: when the lower bound in pyproject.toml passes that version (and, for
transformers 4.x, when `make test-transformers4` is dropped), delete the shim and inline the new
form. The heavy libraries are imported inside each function, so importing this module is cheap.
"""

from __future__ import annotations

from typing import Any


def transformers_dtype_keyword(dtype: Any) -> dict[str, Any]:
    """`from_pretrained`'s dtype argument: `dtype` since transformers 4.56 (which deprecated the
    older `torch_dtype`), `torch_dtype` before.

    Needed by transformers 4.45-4.55; can go once transformers>=4.56 is required."""
    import transformers
    from packaging.version import Version

    new = Version(transformers.__version__).release >= (4, 56)
    return {"dtype": dtype} if new else {"torch_dtype": dtype}


def torchvision_image_processor(image_processor: Any) -> bool:
    """Whether a transformers image processor is torchvision-based (takes `device=`): transformers
    5's default, 4.x's "fast" processors; the PIL/numpy ones are not.

    transformers 5 names the base class `image_processing_backends.TorchvisionBackend`, 4.x
    `image_processing_utils_fast.BaseImageProcessorFast`; the 4.x branch can go once transformers>=5
    is required."""
    try:  # transformers 5
        from transformers.image_processing_backends import TorchvisionBackend as Torchvision
    except ImportError:
        try:  # transformers 4.x
            from transformers.image_processing_utils_fast import BaseImageProcessorFast as Torchvision
        except ImportError:
            return False
    return isinstance(image_processor, Torchvision)


def features_tensor(features: Any) -> Any:
    """The embedding tensor of CLIP's `get_image_features` / `get_text_features`: the result itself
    in transformers 4.x, its `pooler_output` in 5.x (which returns an output object).

    The tensor branch can go once transformers>=5 is required."""
    import torch

    return features if isinstance(features, torch.Tensor) else features.pooler_output


def diffusers_dtype_keyword(dtype: Any) -> dict[str, Any]:
    """`DiffusionPipeline.from_pretrained`'s dtype argument: diffusers renamed `torch_dtype` to
    `dtype` (the old name now warns; `pipeline_utils._resolve_dtype` came with the rename), older
    releases know only `torch_dtype`.

    Needed by the diffusers releases before the rename (our lower bound is 0.30); can go once the
    lower bound is a release that accepts `dtype`."""
    from diffusers.pipelines import pipeline_utils

    return {"dtype": dtype} if hasattr(pipeline_utils, "_resolve_dtype") else {"torch_dtype": dtype}


def ultralytics_half_precision() -> dict[str, Any]:
    """ultralytics' predict argument for fp16: `quantize=16` since ultralytics 8.4 (which warns about
    the older `half=True`), `half=True` before.

    Needed by ultralytics 8.3 (our lower bound); can go once ultralytics>=8.4 is required."""
    from ultralytics.cfg import DEFAULT_CFG_DICT

    return {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}
