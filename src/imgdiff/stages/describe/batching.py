"""Many prompts of one kind through a vision-language backend in as few calls as memory allows.

PERFORMANCE.md: under transformers `generate` a 7B LLaVA-NeXT decodes at 66-75 ms a step whatever
the batch, far above the memory floor, so the cost per prompt falls with the batch (32 prompts cost
half as much each as 10). `describe`/`vlm` therefore gathers every prompt of one kind (all region
captions of a batch of records, then all difference captions) and hands them over together:
- sorted by their images' shapes and text length, so a call's prompts need little padding (an
  image's token count follows its size and aspect ratio) and prompts about one image sit together;
- in calls of `batch_size` prompts; on CUDA out-of-memory the size is halved for the rest of the
  worker's life (like `generate`'s `pairs_per_call`) and the call retried; a lone prompt that still
  does not fit comes back as None, and its record is rejected by the stage.
The `openai` backend takes each call's prompts as concurrent requests.
"""

from __future__ import annotations

import gc
import logging
import time

from imgdiff.models.roles import Generation, VisionPrompt, VisionTextGenerator

log = logging.getLogger("imgdiff")


class PromptBatcher:
    def __init__(self, model: VisionTextGenerator, batch_size: int) -> None:
        self.model = model
        self.batch_size = batch_size  # halved on CUDA out-of-memory, for the worker's life

    def generate(self, prompts: list[VisionPrompt], sampling: Generation, what: str) -> list[str | None]:
        """The answer to each prompt, in order; None where a prompt alone does not fit in memory."""
        answers: list[str | None] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: length_key(prompts[i]))
        started = time.perf_counter()
        self._serve([(i, prompts[i]) for i in order], sampling, answers)
        if prompts:
            seconds = time.perf_counter() - started
            log.info("describe: %d %s prompts, %.3f s per prompt", len(prompts), what, seconds / len(prompts))
        return answers

    def _serve(
        self, indexed: list[tuple[int, VisionPrompt]], sampling: Generation, answers: list[str | None]
    ) -> None:
        start = 0
        while start < len(indexed):
            size = self.batch_size  # read each time: out-of-memory may have lowered it
            chunk = indexed[start : start + size]
            texts = self._call([prompt for _, prompt in chunk], sampling)
            if texts is None:  # out of memory
                if len(chunk) == 1:
                    log.warning("describe: a prompt does not fit in memory alone; its record is rejected")
                    start += 1
                    continue
                self.batch_size = max(1, min(self.batch_size // 2, len(chunk) - 1))
                log.warning(
                    "describe: CUDA out of memory; generate_batch_size lowered to %d", self.batch_size
                )
                continue
            for (i, _), text in zip(chunk, texts, strict=True):
                answers[i] = text
            start += len(chunk)

    def _call(self, prompts: list[VisionPrompt], sampling: Generation) -> list[str] | None:
        """One backend call; None when CUDA ran out of memory (after freeing what it held)."""
        out_of_memory = _out_of_memory_error()
        try:
            return self.model.generate(prompts, sampling)
        except out_of_memory:
            pass
        # Out of the except block: no traceback holds the failed call's tensors any more.
        gc.collect()
        _empty_cuda_cache()
        return None


def length_key(prompt: VisionPrompt) -> tuple[tuple[tuple[int, ...], ...], int]:
    """Prompts with equal keys cost the same number of tokens: their images' shapes, then the text."""
    return tuple(tuple(image.shape) for image in prompt.images), len(prompt.text)


def _out_of_memory_error() -> type[BaseException] | tuple[()]:
    try:
        import torch
    except ImportError:  # a server backend without torch installed: nothing to catch
        return ()
    return torch.cuda.OutOfMemoryError


def _empty_cuda_cache() -> None:
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
