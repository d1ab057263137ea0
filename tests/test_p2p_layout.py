"""The processors on SDXL-base's real layout: the full UNet architecture on the meta device (no memory,
no weights, no download), at 1024 px with guidance (batch 4 = one pair)."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from imgdiff.p2p import P2PConfig, PairRequest
from imgdiff.p2p.pairs import build_controller
from imgdiff.p2p.prior import layer_grids
from imgdiff.p2p.processor import installed
from imgdiff.tiny.diffusion import SDXL_BASE_UNET
from imgdiff.tiny.vocab import clip_tokenizer

FACTORIES = {"arange", "empty", "zeros", "ones", "full", "scalar_tensor", "lift_fresh", "_to_copy", "randn"}


class OpNames(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.seen: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        self.seen[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def sdxl_unet() -> Any:
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel(**SDXL_BASE_UNET)


def forward(unet: Any) -> OpNames:
    with torch.device("meta"), OpNames() as ops:
        unet(
            torch.randn(4, 4, 128, 128),
            999,
            encoder_hidden_states=torch.randn(4, 77, 2048),
            added_cond_kwargs={"text_embeds": torch.randn(4, 1280), "time_ids": torch.randn(4, 6)},
        )
    return ops


def test_every_sdxl_attention_layer_is_handled(sdxl_unet: Any, tmp_path: Any) -> None:
    assert len(sdxl_unet.attn_processors) == 140
    grids = layer_grids(sdxl_unet, (128, 128))
    assert Counter(grids.values()) == {(64, 64): 20, (32, 32): 120}

    pipe = SimpleNamespace(tokenizer=clip_tokenizer(tmp_path), unet=sdxl_unet, vae_scale_factor=8)
    request = PairRequest("a photo of a cat on the table", "a photo of a dog on the table", 0, "cat", "dog")
    controller = build_controller(pipe, [request], P2PConfig())  # the paper's settings at 1024 px
    # built before the call, on the UNet's device
    built = {n: getattr(controller, n) for n in ("self_rows", "source_rows", "target_rows")}
    (phase,) = controller.phases  # every token follows the default window: one cross phase
    built |= {"value_scale": phase.value_scale, "value_mixes": phase.value_mixes}
    assert all(t.device.type == "meta" for t in built.values())
    assert controller.self_max_queries == 32 * 32  # from the image size, as the SDXL port
    assert controller.prior is not None and controller.prior.grid == (32, 32)  # image size / 32

    stock = forward(sdxl_unet)
    controller.trace = []
    with installed(sdxl_unet, controller):
        edited = forward(sdxl_unet)
    paths = Counter((name.split(".")[-2], grids[name], path) for name, path in controller.trace)
    assert paths == {
        ("attn1", (64, 64), "stock"): 10,  # self-attention over 4096 queries: above the 1024 limit
        ("attn1", (32, 32), "self"): 60,
        ("attn2", (64, 64), "cross"): 10,
        ("attn2", (32, 32), "cross"): 60,  # refine, and the prior's maps at 32x32
    }
    assert len({name for name, _ in controller.trace}) == 140
    assert all(getattr(controller, n) is built[n] for n in ("self_rows", "source_rows", "target_rows"))
    assert controller.phases == [phase] and phase.value_mixes is built["value_mixes"]
    # no index or constant is made during the call: the factory ops are the stock UNet's own
    assert {op: edited.seen[op] for op in FACTORIES} == {op: stock.seen[op] for op in FACTORIES}
    assert sdxl_unet.attn_processors.keys() == {name for name, _ in controller.trace}
    assert all(type(p).__name__ != "P2PAttnProcessor" for p in sdxl_unet.attn_processors.values())
