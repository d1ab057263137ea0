"""BLIP matcher (transformers `BlipForImageTextRetrieval`): does this crop show this text?

`regions` asks whether a candidate crop shows the changed object, `describe` whether a region
caption matches its crop (METHOD.md 3.4, 4.3). The paper uses the contrastive cosine, the
Data-Juicer recipe the ITM match probability; one call gives both. `Salesforce/blip-itm-*`
checkpoints hold exactly these retrieval weights (TESTING.md).

The model's own forward runs the vision tower once per head and returns an n x n cosine matrix;
we need pairs, so `match` runs the tower once and both heads from its output, with the same
submodules and the same steps as that forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imgdiff.models.clip import ImageTextModel
from imgdiff.models.loading import load_transformers


class BlipMatcher(ImageTextModel):
    """The `Matcher` role (roles.py) on a loaded BlipForImageTextRetrieval and BlipProcessor."""

    def match(self, images: list[np.ndarray], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """For pairs (images[i], texts[i]): (ITM match probability, contrastive cosine), float32 (n,)."""
        import torch

        if len(images) != len(texts):
            raise ValueError(f"match needs one text per image, got {len(images)} images, {len(texts)} texts")
        probabilities, cosines = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
        with torch.inference_mode():
            for image_chunk, text_chunk in zip(self.chunks(images), self.chunks(texts), strict=True):
                probability, cosine = self._match_chunk(image_chunk, text_chunk)
                probabilities.append(probability)
                cosines.append(cosine)
        return np.concatenate(probabilities), np.concatenate(cosines)

    def _match_chunk(
        self, images: Sequence[np.ndarray], texts: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        import torch
        from torch.nn.functional import normalize

        model = self.model
        pixels = self.pixels(images)
        tokens = self.text_tokens(texts)
        # 1. the vision tower, once for both heads
        image_embeds = model.vision_model(pixel_values=pixels).last_hidden_state
        # 2. ITM head: the text encoder cross-attends to the image; logit 1 means "matches"
        fused = model.text_encoder(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=torch.ones(image_embeds.shape[:2], dtype=torch.long, device=self.device),
        ).last_hidden_state
        probability = model.itm_head(fused[:, 0, :]).float().softmax(dim=-1)[:, 1]
        # 3. contrastive head: projected [CLS] features of image and text alone, cosine per pair;
        # the text alone once per distinct text (regions asks about one object for many crops)
        position = {text: i for i, text in enumerate(dict.fromkeys(texts))}
        alone = self.text_tokens(list(position))
        text_embeds = model.text_encoder(
            input_ids=alone["input_ids"], attention_mask=alone["attention_mask"]
        ).last_hidden_state
        image_feature = normalize(model.vision_proj(image_embeds[:, 0, :]).float(), dim=-1)
        text_feature = normalize(model.text_proj(text_embeds[:, 0, :]).float(), dim=-1)
        text_feature = text_feature[torch.tensor([position[t] for t in texts], device=self.device)]
        cosine = (image_feature * text_feature).sum(dim=-1)
        return probability.cpu().numpy(), cosine.cpu().numpy()


def load(name: str, entry: Any) -> BlipMatcher:
    """The matcher for a models: entry (a local folder, or a hub id found by `locate`)."""
    from transformers import BlipForImageTextRetrieval, BlipProcessor

    return BlipMatcher(*load_transformers(name, entry, BlipForImageTextRetrieval, BlipProcessor))
