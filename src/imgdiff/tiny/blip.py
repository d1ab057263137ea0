"""The tiny BLIP retrieval model (`imgdiff models make-tiny`'s `blip`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from imgdiff.tiny.clip import TINY_TOWER, TINY_VISION
from imgdiff.tiny.seeded import save_random
from imgdiff.tiny.vocab import write_wordpiece_vocab


def make_tiny(out: Path) -> Path:
    """A random-weight BLIP retrieval model (32 px images, 64-token window, tiny WordPiece
    vocabulary) saved like a hub checkpoint: model and processor in `out`."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForImageTextRetrieval,
        BlipImageProcessor,
        BlipProcessor,
    )

    window = 64
    with tempfile.TemporaryDirectory() as work:
        tokenizer = BertTokenizer(str(write_wordpiece_vocab(Path(work))), model_max_length=window)
    # BLIP's hub tokenizers carry these two extra tokens
    tokenizer.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    config = BlipConfig(
        text_config={
            **TINY_TOWER,
            "vocab_size": len(tokenizer),
            "encoder_hidden_size": TINY_VISION["hidden_size"],  # the text encoder cross-attends to it
            "max_position_embeddings": window,
            "bos_token_id": tokenizer.bos_token_id,
            "sep_token_id": tokenizer.sep_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.sep_token_id,
        },
        vision_config=dict(TINY_VISION),
        projection_dim=16,
        image_text_hidden_size=16,
    )
    image_processor = BlipImageProcessor(size={"height": 32, "width": 32})
    processor = BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)
    return save_random(BlipForImageTextRetrieval, config, processor, out)
