"""Seconds per pair of `describe`/`vlm` against the reference's way of running the same work.

    python benchmarks/describe_speed.py            # the tiny LLaVA-NeXT, CLIP and BLIP (CPU is fine)
    python benchmarks/describe_speed.py --full     # a LLaVA-NeXT-7B-sized model on a CUDA GPU

Every pair has 3 boxes and every box goes through (the thresholds are off), so both ways do the same
work: per box, two region captions of 64 new tokens and one difference caption of 128, with the
output lengths forced (`min_new_tokens`: random weights would stop at any EOS), plus CLIP and BLIP.
- reference: the research code's loop, one prompt per `generate` call (no batching, no sharing),
  CLIP and BLIP per box;
- ours: the stage's `__call__` on all pairs at once: every region prompt of the batch in one call,
  sorted by length, then every difference prompt in one (`generate_batch_size` per call).
Full mode builds LLaVA-NeXT-7B's architecture with random fp16 weights on the GPU
(`generation_speed.full_size_llava`; 672 px images, ~3,000 tokens a prompt); CLIP and BLIP stay the
tiny ones in both modes (PERFORMANCE.md: they are nearly free when batched) and on both sides of the
comparison. The reference runs fewer pairs than ours in full mode: its cost per pair does not depend
on how many pairs there are. Prints one JSON object; the goal is at most 0.5 s per pair on an H100/H200.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # generation_speed's full-size builder

REGION_TOKENS, DIFFERENCE_TOKENS = 64, 128
OPEN = {"area_min": None, "max_regions": None, "clip_similarity_lt": None, "blip_cosine_gt": None}


class ForcedLength:
    """A transformers VL generator whose every answer is exactly `max_new_tokens` long."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator
        self.calls: list[int] = []

    def generate(self, prompts: list[Any], sampling: Any) -> list[str]:
        from imgdiff.models.text import generate_new_tokens

        self.calls.append(len(prompts))
        g = self.generator
        tokens = generate_new_tokens(
            g.model, g.inputs(prompts), sampling, g.tokenizer, min_new_tokens=sampling.max_new_tokens
        )
        return [text.strip() for text in g.tokenizer.batch_decode(tokens, skip_special_tokens=True)]


def pairs(n: int, side: int) -> list[Any]:
    """n records with images a, b (side x side) and 3 boxes each, in their artifacts."""
    from imgdiff.record import Record, Region

    out = []
    for index in range(n):
        rng = np.random.default_rng(index)
        a = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        b = a.copy()
        regions = []
        for _ in range(3):
            x, y = (float(v) for v in rng.uniform(0, 0.6 * side, 2))
            box = [x, y, x + 0.3 * side, y + 0.3 * side]
            b[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = rng.integers(0, 256, 3, dtype=np.uint8)
            regions.append(Region(box=box, source="diff"))
        out.append(
            Record(
                id=f"p{index}", source_index=index, seed=index, regions=regions, artifacts={"a": a, "b": b}
            )
        )
    return out


def stage_on(vl: ForcedLength, embedder: Any, matcher: Any, batch_size: int) -> Any:
    """`describe`/`vlm` ready to score, on already loaded models."""
    from imgdiff.stages.describe.batching import PromptBatcher
    from imgdiff.stages.describe.vlm import VlmDescribe
    from imgdiff.store import ImageLoader

    settings = {"vl": "vl", "embedder": "clip", "matcher": "blip", **OPEN, "generate_batch_size": batch_size}
    stage = VlmDescribe(VlmDescribe.resolve_settings(settings, "benchmark"))
    stage.images, stage.embedder, stage.matcher = ImageLoader(Path(".")), embedder, matcher
    stage.batcher = PromptBatcher(vl, batch_size)
    return stage


def reference(records: list[Any], vl: ForcedLength, embedder: Any, matcher: Any) -> None:
    """The research code's loop: per box, one prompt per call, CLIP and BLIP per box."""
    from imgdiff.models.roles import Generation, cosine_rows
    from imgdiff.stages.describe import prompts

    for record in records:
        a, b = record.artifacts["a"], record.artifacts["b"]
        for region in record.regions:
            region_sampling = Generation(max_new_tokens=REGION_TOKENS)
            (caption_a,) = vl.generate([prompts.region_prompt(a, region.box)], region_sampling)
            (caption_b,) = vl.generate([prompts.region_prompt(b, region.box)], region_sampling)
            texts = embedder.embed_texts([caption_a, caption_b])
            cosine_rows(texts[:1], texts[1:])
            matcher.match([prompts.crop(a, region.box)], [caption_a])
            matcher.match([prompts.crop(b, region.box)], [caption_b])
            captions = {"a": caption_a, "b": caption_b}
            vl.generate(
                [prompts.difference_prompt(a, b, region.box, captions)],
                Generation(max_new_tokens=DIFFERENCE_TOKENS),
            )


def timed(run: Any, synchronize: Any) -> float:
    synchronize()
    started = time.perf_counter()
    run()
    synchronize()
    return time.perf_counter() - started


def measure(
    generator: Any, embedder: Any, matcher: Any, side: int, n_ours: int, n_ref: int, batch: int
) -> dict:
    import torch

    synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    vl = ForcedLength(generator)
    stage_on(vl, embedder, matcher, batch)(pairs(1, side))  # warm-up: kernels, allocator
    vl.calls.clear()
    ref_s = timed(lambda: reference(pairs(n_ref, side), vl, embedder, matcher), synchronize)
    ref_calls = len(vl.calls)
    vl.calls.clear()
    records = pairs(n_ours, side)
    stage = stage_on(vl, embedder, matcher, batch)
    ours_s = timed(lambda: stage(records), synchronize)
    done = sum(region.difference is not None for r in records for region in r.regions)
    assert done == 3 * n_ours, f"only {done} of {3 * n_ours} boxes described"
    return {
        "boxes_per_pair": 3,
        "new_tokens": {"region": REGION_TOKENS, "difference": DIFFERENCE_TOKENS},
        "reference": {"pairs": n_ref, "generate_calls": ref_calls, "s_per_pair": round(ref_s / n_ref, 3)},
        "ours": {
            "pairs": n_ours,
            "generate_batch_size": batch,
            "generate_calls": vl.calls,
            "final_batch_size": stage.batcher.batch_size,
            "s_per_pair": round(ours_s / n_ours, 3),
        },
        "speedup": round((ref_s / n_ref) / (ours_s / n_ours), 2),
    }


def tiny_models() -> tuple[Any, Any, Any]:
    import tempfile

    from imgdiff.models import ModelEntry, ModelPool
    from imgdiff.tiny import build_tiny

    root = Path(tempfile.mkdtemp(prefix="describe-speed-"))
    pool = ModelPool({name: ModelEntry(**build_tiny(name, root)) for name in ("llava", "clip", "blip")})
    return pool.get("llava"), pool.get("clip"), pool.get("blip")


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="LLaVA-NeXT-7B-sized model on a CUDA GPU")
    parser.add_argument("--pairs", type=int, help="pairs for our way (tiny 4, full 16)")
    parser.add_argument("--reference-pairs", type=int, help="pairs for the reference's way (tiny 2, full 2)")
    parser.add_argument("--batch", type=int, default=32, help="generate_batch_size (default 32)")
    args = parser.parse_args()
    llava, clip, blip = tiny_models()
    if not args.full:
        n_ours, n_ref = args.pairs or 4, args.reference_pairs or 2
        figures = measure(llava, clip, blip, 64, n_ours, n_ref, args.batch)
        return {"mode": "tiny", "device": "cpu", **figures}
    import torch
    from generation_speed import IMAGE_SIDE, full_size_llava

    from imgdiff.models.vision_text import TransformersVisionTextGenerator

    if not torch.cuda.is_available():
        raise SystemExit("--full needs a CUDA GPU")
    generator = TransformersVisionTextGenerator(*full_size_llava("cuda"))
    n_ours, n_ref = args.pairs or 16, args.reference_pairs or 2
    figures = measure(generator, clip, blip, IMAGE_SIDE, n_ours, n_ref, args.batch)
    return {
        "mode": "full",
        "device": torch.cuda.get_device_name(),
        "model": "LLaVA-NeXT-7B-sized, random fp16 weights, SDPA; tiny CLIP and BLIP",
        "goal_s_per_pair": 0.5,
        **figures,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
