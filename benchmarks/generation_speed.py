"""Generation speed of the text and vision-language backends.

    python benchmarks/generation_speed.py            # tiny models on this machine (CPU is fine)
    python benchmarks/generation_speed.py --full     # a LLaVA-NeXT-7B-sized model on a CUDA GPU

Tiny mode builds the `make-tiny` chat LM and LLaVA-NeXT and reports prompts per second in-process
at batch sizes 1, 4 and 16, and through a local OpenAI-compatible server (tests/openai_server.py) at
client concurrency 1 and 4: once served by the tiny LM (one request at a time, so concurrency
cannot help) and once by a scripted server that takes 20 ms per request (so it shows what
concurrency buys against a server that serves requests in parallel, as vLLM does).

Full mode builds LLaVA-NeXT-7B's architecture (CLIP ViT-L/14-336 tower, Vicuna-7B-sized Llama,
vocabulary 32,064) with random fp16 weights directly on the GPU, and times the describe stage's
region prompts: one 672x672 image each (2,928 image tokens, ~3,000 tokens in all) and 64 forced new
tokens, at 10 and 32 prompts per batch. It reports milliseconds per decode step ((whole run - run with
one new token) / 63) and seconds per prompt, for plain `generate` and for a static KV cache with
compiled decoding (transformers compiles the decode step when the cache is static), and the
speedup of the latter at batch 32. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the local test server

BATCH_SIZES = (1, 4, 16)
WORDS = "a photo of the cat dog car bus on table with red blue small big man woman next to tree"


def rate(n: int, run: Any, repeats: int = 3) -> float:
    """Prompts per second of `run()`, which handles n prompts: the best of `repeats` timed calls
    after a warm-up call (CPU kernels are prepared per input shape on first use)."""
    run()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
    return round(n / min(seconds), 2)


def chats(n: int) -> list[list[dict[str, str]]]:
    rng = np.random.default_rng(0)
    return [[{"role": "user", "content": " ".join(rng.choice(WORDS.split(), 4 + i % 9))}] for i in range(n)]


def tiny(new_tokens: int = 16, n: int = 32) -> dict[str, Any]:
    from imgdiff.models import ModelEntry, ModelPool
    from imgdiff.models.openai_chat import load_text
    from imgdiff.models.roles import Generation, VisionPrompt
    from imgdiff.tiny import build_tiny
    from openai_server import ChatServer

    with tempfile.TemporaryDirectory() as tmp:
        pool = ModelPool({name: ModelEntry(**build_tiny(name, Path(tmp))) for name in ("llm", "llava")})
        llm, llava = pool.get("llm"), pool.get("llava")
    sampling = Generation(max_new_tokens=new_tokens)
    prompts = chats(n)
    rng = np.random.default_rng(1)
    visual = [
        VisionPrompt(
            " ".join(rng.choice(WORDS.split(), 6)),
            [rng.integers(0, 256, (48, 64 + 8 * (i % 3), 3), np.uint8)],
        )
        for i in range(n // 2)
    ]

    def batched(generator: Any, items: list[Any], size: int) -> Any:
        return lambda: [generator.generate(items[i : i + size], sampling) for i in range(0, len(items), size)]

    out: dict[str, Any] = {"mode": "tiny", "prompts": n, "new_tokens": new_tokens}
    out["text_prompts_per_s"] = {f"batch_{b}": rate(n, batched(llm, prompts, b)) for b in BATCH_SIZES}
    out["vision_text_prompts_per_s"] = {
        f"batch_{b}": rate(len(visual), batched(llava, visual, b)) for b in BATCH_SIZES
    }

    def slow_answer(body: dict) -> str:
        time.sleep(0.02)
        return "an answer"

    served: dict[str, Any] = {}
    for label, server_args in (("tiny_llm", {"generator": llm}), ("scripted_20ms", {"answers": slow_answer})):
        with ChatServer(**server_args) as server:
            for concurrency in (1, 4):
                entry = ModelEntry(
                    role="text_generator",
                    backend="openai",
                    base_url=server.url,
                    model="tiny",
                    concurrency=concurrency,
                )
                client = load_text("bench", entry)
                served.setdefault(label, {})[f"concurrency_{concurrency}"] = rate(
                    n, lambda client=client: client.generate(prompts, sampling)
                )
                client.close()
    out["server_prompts_per_s"] = served
    return out


# -- full size on a GPU ------------------------------------------------------------------------------

NEW_TOKENS = 64
PINPOINTS = [
    [336, 672],
    [672, 336],
    [672, 672],
    [1008, 336],
    [336, 1008],
]  # llava-v1.6's any-resolution grids
IMAGE_SIDE = 672  # LLaVA-NeXT's 2x2 grid of 336 px tiles plus the base view: 2,928 image tokens
# LLaVA-NeXT-7B's towers: CLIP ViT-L/14-336 and a Vicuna-7B-sized Llama.
FULL_VISION = {
    "hidden_size": 1024,
    "intermediate_size": 4096,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "image_size": 336,
    "patch_size": 14,
    "projection_dim": 768,
    "hidden_act": "quick_gelu",
}
FULL_TEXT = {
    "vocab_size": 32064,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
}


def full_size_llava(device: str) -> tuple[Any, Any]:
    """LLaVA-NeXT-7B's architecture with random fp16 weights built on `device`, and a processor with
    its real image settings (the tokenizer is the tiny one: ids only need to exist)."""
    import torch

    from imgdiff.tiny.llava import build_llava_next

    return build_llava_next(
        FULL_VISION, FULL_TEXT, PINPOINTS, vision_feature_layer=-2, device=device, dtype=torch.float16
    )


def region_prompts(n: int) -> list[Any]:
    from imgdiff.models.roles import VisionPrompt

    rng = np.random.default_rng(0)
    prompts = []
    for _ in range(n):
        x1, y1 = rng.uniform(0, 0.5, 2)
        box = [round(v, 2) for v in (x1, y1, x1 + 0.3, y1 + 0.3)]
        text = f"Please provide a short description of the region {box} of this image."
        prompts.append(VisionPrompt(text, [rng.integers(0, 256, (IMAGE_SIDE, IMAGE_SIDE, 3), np.uint8)]))
    return prompts


def time_batch(generator: Any, inputs: Any, **options: Any) -> dict[str, float]:
    """Seconds for prefill (one new token) and for NEW_TOKENS forced new tokens, after a warm-up."""
    import torch

    from imgdiff.models.roles import Generation
    from imgdiff.models.text import generate_new_tokens

    def run(new_tokens: int) -> float:
        torch.cuda.synchronize()
        started = time.perf_counter()
        sampling = Generation(max_new_tokens=new_tokens)
        generate_new_tokens(
            generator.model, inputs, sampling, generator.tokenizer, min_new_tokens=new_tokens, **options
        )
        torch.cuda.synchronize()
        return time.perf_counter() - started

    torch.cuda.reset_peak_memory_stats()
    warm_s = run(NEW_TOKENS)  # compiles the decode step when the cache is static
    total_s, prefill_s = run(NEW_TOKENS), run(1)  # the static cache keeps its size for the shorter run
    n = inputs["input_ids"].shape[0]
    return {
        "warmup_s": round(warm_s, 2),
        "prefill_s": round(prefill_s, 3),
        "total_s": round(total_s, 3),
        "decode_ms_per_step": round(1000 * (total_s - prefill_s) / (NEW_TOKENS - 1), 2),
        "s_per_prompt": round(total_s / n, 4),
        "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
    }


def progress(label: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Print figures as they come (on stderr), so a run cut short still reports them."""
    print(label, json.dumps(figures), file=sys.stderr, flush=True)
    return figures


def full(batches: tuple[int, ...] = (10, 32), static_batches: tuple[int, ...] = (32,)) -> dict[str, Any]:
    import torch

    from imgdiff.models.vision_text import TransformersVisionTextGenerator

    if not torch.cuda.is_available():
        raise SystemExit("--full needs a CUDA GPU")
    started = time.perf_counter()
    model, processor = full_size_llava("cuda")
    generator = TransformersVisionTextGenerator(model, processor)
    out: dict[str, Any] = {
        "mode": "full",
        "device": torch.cuda.get_device_name(),
        "model": "LLaVA-NeXT-7B-sized (CLIP ViT-L/14-336 + Llama-7B, vocab 32064), random fp16 weights, SDPA",
        "params_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 2),
        "build_s": round(time.perf_counter() - started, 1),
        "new_tokens": NEW_TOKENS,
    }
    progress("built", {"build_s": out["build_s"], "params_b": out["params_b"]})
    inputs = {}
    for n in sorted(set(batches) | set(static_batches)):
        prepared = time.perf_counter()
        inputs[n] = generator.inputs(region_prompts(n))
        out.setdefault("preprocess_s", {})[f"batch_{n}"] = round(time.perf_counter() - prepared, 2)
        out["prompt_tokens"] = int(inputs[n]["attention_mask"].sum(dim=1).max())
    plain_runs = [("plain", n, {}) for n in batches]
    static_runs = [("static_compiled", n, {"cache_implementation": "static"}) for n in static_batches]
    for variant, n, options in plain_runs + static_runs:
        try:
            figures = time_batch(generator, inputs[n], **options)
        except Exception as exc:  # out of memory, a failed compile: report what could be measured
            figures = {"error": f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0][:200]}"}
        out.setdefault(variant, {})[f"batch_{n}"] = progress(f"{variant} batch {n}", figures)
        torch.cuda.empty_cache()
    plain, static = out.get("plain", {}).get("batch_32"), out.get("static_compiled", {}).get("batch_32")
    if plain and static and "error" not in plain and "error" not in static:
        out["speedup_at_32"] = {
            "s_per_prompt": round(plain["s_per_prompt"] / static["s_per_prompt"], 2),
            "decode_step": round(plain["decode_ms_per_step"] / static["decode_ms_per_step"], 2),
            "goal": 3.0,
        }
    out["elapsed_s"] = round(time.perf_counter() - started, 1)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="LLaVA-NeXT-7B-sized model on a CUDA GPU")
    parser.add_argument("--no-static", action="store_true", help="--full without the static-cache variant")
    args = parser.parse_args()
    if args.full:
        print(json.dumps(full(static_batches=() if args.no_static else (32,))))
    else:
        print(json.dumps(tiny()))
