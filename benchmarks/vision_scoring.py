"""CLIP and BLIP scoring of N crops, batched versus one at a time: crops per second.

    python benchmarks/vision_scoring.py [--n 256] [--repeats 5]
    python benchmarks/vision_scoring.py --full [--device cuda] [--n 128]

The `regions` and `describe` stages score every candidate crop with CLIP (an image embedding) and
BLIP (a crop-text match); the reference does it one crop at a time (METHOD.md 7). Each repeat
times CLIP `embed_images` and BLIP `match` on the same N crops of random sizes, once as one call
(chunked by the backend's `batch_size`) and once per crop; prints min/median/max crops per second
of 5 repeats and the median speed-ups as one JSON object.

By default the models are the tiny random-weight checkpoints of `imgdiff models make-tiny`, on the
CPU. `--full` builds full-size architectures with random weights instead (CLIP ViT-B/32, BLIP ITM
large; configs below, nothing downloaded), in float16 on the GPU: same FLOPs as the real models.
Either way they are saved and loaded back through the normal loading path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imgdiff.models import ModelEntry, ModelPool
from imgdiff.tiny.vocab import TINY_WORDS

# openai/clip-vit-base-patch32
CLIP_FULL = {
    "text_config": {
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 32,
    },
    "projection_dim": 512,
    "vocab_size": 49408,
    "window": 77,
}
# Salesforce/blip-itm-large-coco: ViT-L/16 at 384 px, BERT-base text encoder cross-attending to it
BLIP_FULL = {
    "text_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "encoder_hidden_size": 1024,
    },
    "vision_config": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 384,
        "patch_size": 16,
    },
    "projection_dim": 512,
    "image_text_hidden_size": 256,
    "vocab_size": 30524,
    "window": 512,
}


def full_clip(out: Path, device: str) -> Path:
    """A random-weight CLIP ViT-B/32 in float16, saved with its processor (tiny BPE vocabulary:
    token ids, not the vocabulary's size, set the cost)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from imgdiff.tiny.vocab import clip_tokenizer

    tokenizer = clip_tokenizer(out / "bpe")
    ids = {f"{t}_token_id": getattr(tokenizer, f"{t}_token_id") for t in ("bos", "eos", "pad")}
    text = {
        **CLIP_FULL["text_config"],
        "vocab_size": CLIP_FULL["vocab_size"],
        "max_position_embeddings": CLIP_FULL["window"],
    }
    config = CLIPConfig(
        text_config={**text, **ids},
        vision_config=CLIP_FULL["vision_config"],
        projection_dim=CLIP_FULL["projection_dim"],
    )
    with torch.device(device):
        model = CLIPModel(config).half()
    model.save_pretrained(out)
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(out)
    return out


def full_blip(out: Path, device: str) -> Path:
    """A random-weight BLIP ITM large in float16, saved with its processor (tiny WordPiece vocabulary)."""
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForImageTextRetrieval,
        BlipImageProcessor,
        BlipProcessor,
    )

    from imgdiff.tiny.vocab import write_wordpiece_vocab

    tokenizer = BertTokenizer(
        str(write_wordpiece_vocab(out / "wordpiece")), model_max_length=BLIP_FULL["window"]
    )
    text = {
        **BLIP_FULL["text_config"],
        "vocab_size": BLIP_FULL["vocab_size"],
        "max_position_embeddings": BLIP_FULL["window"],
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
    }
    config = BlipConfig(
        text_config=text,
        vision_config=BLIP_FULL["vision_config"],
        projection_dim=BLIP_FULL["projection_dim"],
        image_text_hidden_size=BLIP_FULL["image_text_hidden_size"],
    )
    with torch.device(device):
        model = BlipForImageTextRetrieval(config).half()
    model.save_pretrained(out)
    image_processor = BlipImageProcessor(size={"height": 384, "width": 384})
    BlipProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(out)
    return out


def load_models(work: Path, full: bool, device: str) -> tuple[Any, Any]:
    """(embedder, matcher) loaded through ModelPool from checkpoints written under `work`."""
    from imgdiff.tiny import blip, clip

    if full:
        paths = {"clip": full_clip(work / "clip", device), "blip": full_blip(work / "blip", device)}
        dtype = "float16"
    else:
        paths = {"clip": clip.make_tiny(work / "clip"), "blip": blip.make_tiny(work / "blip")}
        dtype = "float32"
    entries = {
        "clip": ModelEntry(role="embedder", path=str(paths["clip"]), device=device, dtype=dtype),
        "blip": ModelEntry(role="matcher", path=str(paths["blip"]), device=device, dtype=dtype),
    }
    pool = ModelPool(entries)
    return pool.get("clip"), pool.get("blip")


def crops_and_texts(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """N crops (8 to 200 px a side) of a smooth random 512 px image, and N short phrases."""
    import cv2

    rng = np.random.default_rng(seed)
    image = cv2.resize(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), (512, 512))
    crops = []
    for _ in range(n):
        w, h = rng.integers(8, 201, 2)
        x, y = rng.integers(0, 512 - w + 1), rng.integers(0, 512 - h + 1)
        crops.append(np.ascontiguousarray(image[y : y + h, x : x + w]))
    words = TINY_WORDS.split()
    texts = [" ".join(rng.choice(words, rng.integers(2, 12))) for _ in range(n)]
    return crops, texts


def rates(score: Callable[[], Any], n: int, repeats: int) -> list[float]:
    """Crops per second of `score()` (which returns numpy, so GPU work is finished) per repeat."""
    score()  # warm-up: kernels, caches, lazy initialisation
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        score()
        out.append(n / (time.perf_counter() - started))
    return out


def summary(batched: list[float], single: list[float]) -> dict[str, Any]:
    def stats(values: list[float]) -> dict[str, float]:
        return {
            "crops_per_s_min": round(min(values), 1),
            "crops_per_s_median": round(statistics.median(values), 1),
            "crops_per_s_max": round(max(values), 1),
        }

    return {
        "batched": stats(batched),
        "one_at_a_time": stats(single),
        "speedup_median": round(statistics.median(batched) / statistics.median(single), 2),
    }


def measure(n: int, repeats: int, full: bool, device: str) -> dict[str, Any]:
    import torch
    import transformers

    with tempfile.TemporaryDirectory() as work:
        embedder, matcher = load_models(Path(work), full, device)
    crops, texts = crops_and_texts(n)
    results: dict[str, Any] = {
        "models": "full-size random weights (CLIP ViT-B/32, BLIP ITM large)" if full else "tiny",
        "dtype": str(embedder.dtype).removeprefix("torch."),
        "device": torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu",
        "n": n,
        "repeats": repeats,
        "batch_size": {"clip": embedder.batch_size, "blip": matcher.batch_size},
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    results["clip"] = summary(
        rates(lambda: embedder.embed_images(crops), n, repeats),
        rates(lambda: [embedder.embed_images([crop]) for crop in crops], n, repeats),
    )
    results["blip"] = summary(
        rates(lambda: matcher.match(crops, texts), n, repeats),
        rates(
            lambda: [matcher.match([crop], [text]) for crop, text in zip(crops, texts, strict=True)],
            n,
            repeats,
        ),
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=None, help="crops (default 256; 128 with --full)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="full-size architectures, float16 on the GPU")
    parser.add_argument("--device", default=None, help="default: cuda with --full, else cpu")
    args = parser.parse_args()
    device = args.device or ("cuda" if args.full else "cpu")
    n = args.n or (128 if args.full else 256)
    print(json.dumps(measure(n, args.repeats, args.full, device)))
