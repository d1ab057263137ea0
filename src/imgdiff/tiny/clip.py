"""The tiny CLIP (`imgdiff models make-tiny`'s `clip`), and the tower sizes the tiny BLIP and
LLaVA-NeXT share."""

from __future__ import annotations

import tempfile
from pathlib import Path

from imgdiff.tiny.seeded import save_random
from imgdiff.tiny.vocab import clip_tokenizer

# The size of each transformer tower of the tiny CLIP and BLIP (text and vision alike).
TINY_TOWER = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4}
# The tiny vision tower: CLIP's here, BLIP's, and the one inside the tiny LLaVA-NeXT (llava.py).
TINY_VISION = {**TINY_TOWER, "image_size": 32, "patch_size": 8}


def make_tiny(out: Path) -> Path:
    """A random-weight CLIP (32 px images, 77-token window, tiny BPE vocabulary) saved like a hub
    checkpoint: model and processor in `out`."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    with tempfile.TemporaryDirectory() as work:
        tokenizer = clip_tokenizer(Path(work))
    config = CLIPConfig(
        text_config={
            **TINY_TOWER,
            "vocab_size": len(tokenizer),
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config=dict(TINY_VISION),
        projection_dim=16,
    )
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return save_random(CLIPModel, config, processor, out)
