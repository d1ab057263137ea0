"""What the vision-language model is asked in `describe`/`vlm`, and the pixels it sees (METHOD.md 4).

- A region caption: one ORIGINAL image and the box in [0, 1] coordinates of that image, two
  decimals, in the words LLaVA's region-caption data uses.
- The difference caption: ONE image, the side-by-side pair with the red box at the same place on
  both halves (`imgdiff.render`, the same pixels the exported sample shows), with the two region
  captions as hints. The exported question has no hints (METHOD.md 4.5, `export.llava.QUESTION`).
- The naturalness check: a yes/no question on the side-by-side pair without a box.

Each image comes first in its prompt and the box text last, so prompts about one image share their
start: a server with prefix caching (vLLM) prefills that image once for all of its boxes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from imgdiff.models.roles import VisionPrompt
from imgdiff.render import grown_box, side_by_side

REGION = "Please provide a short description for this region: [{x1:.2f}, {y1:.2f}, {x2:.2f}, {y2:.2f}]."
DIFFERENCE = (
    "The two images are shown side by side, separated by a black bar. Hints: the red box in the "
    "left image shows {a}; the red box in the right image shows {b}. What is the difference between "
    "the contents of the red boxes? Answer in a few concise sentences."
)
NATURAL = (
    "The two images are shown side by side, separated by a black bar. Do both images look like "
    "natural photos, with every object of a plausible shape and in a plausible place? Answer yes or no."
)


def normalised(box: Sequence[float], width: int, height: int) -> tuple[float, float, float, float]:
    """The box in [0, 1] coordinates of a width x height image, clamped to it."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return (
        min(max(x1 / width, 0.0), 1.0),
        min(max(y1 / height, 0.0), 1.0),
        min(max(x2 / width, 0.0), 1.0),
        min(max(y2 / height, 0.0), 1.0),
    )


def region_prompt(image: np.ndarray, box: Sequence[float]) -> VisionPrompt:
    height, width = image.shape[:2]
    x1, y1, x2, y2 = normalised(box, width, height)
    return VisionPrompt(REGION.format(x1=x1, y1=y1, x2=x2, y2=y2), [image])


def difference_prompt(
    a: np.ndarray, b: np.ndarray, box: Sequence[float], captions: dict[str, str]
) -> VisionPrompt:
    hints = {side: _as_hint(captions[side]) for side in ("a", "b")}
    return VisionPrompt(DIFFERENCE.format(**hints), [side_by_side(a, b, box)])


def natural_prompt(a: np.ndarray, b: np.ndarray) -> VisionPrompt:
    return VisionPrompt(NATURAL, [side_by_side(a, b)])


def said_yes(answer: str) -> bool:
    """Whether a yes/no answer says yes: its first word, without case or punctuation."""
    words = answer.strip().split()
    return bool(words) and words[0].strip(".,!:;\"'").lower() == "yes"


def crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The box grown by 5 px (the red frame's rectangle, `render.grown_box`), clamped to the image."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = grown_box(box, width, height)
    return image[y1 : y2 + 1, x1 : x2 + 1]


def _as_hint(caption: str) -> str:
    """A caption as a clause inside the hint sentence: one line, without its closing full stop."""
    return " ".join(caption.split()).rstrip(".") or "nothing recognisable"
