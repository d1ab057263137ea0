"""The stage registry, in one dict: stage name -> method -> class.

A recipe entry `- pair_filter: {method: pixel, ...}` picks `STAGES["pair_filter"]["pixel"]`.
`FLOW` is the order of the Img-Diff flow (METHOD.md); a recipe lists its stages in that order.
"""

from __future__ import annotations

from imgdiff.stages.base import Stage
from imgdiff.stages.describe.template import TemplateDescribe
from imgdiff.stages.describe.vlm import VlmDescribe
from imgdiff.stages.edit.lexicon import LexiconEdit
from imgdiff.stages.edit.llm import LLMEdit
from imgdiff.stages.generate.instruct import InstructGenerate
from imgdiff.stages.generate.p2p import P2PGenerate
from imgdiff.stages.pair_filter.clip import ClipPairFilter
from imgdiff.stages.pair_filter.pixel import PixelPairFilter
from imgdiff.stages.regions.pixel import PixelRegions
from imgdiff.stages.regions.semantic import SemanticRegions
from imgdiff.stages.remove.inpaint import InpaintRemove

FLOW = ("edit", "generate", "pair_filter", "regions", "remove", "describe")

STAGES: dict[str, dict[str, type[Stage]]] = {
    "edit": {"lexicon": LexiconEdit, "llm": LLMEdit},
    "generate": {"p2p": P2PGenerate, "instruct": InstructGenerate},
    "pair_filter": {"clip": ClipPairFilter, "pixel": PixelPairFilter},
    "regions": {"pixel": PixelRegions, "semantic": SemanticRegions},
    "remove": {"inpaint": InpaintRemove},
    "describe": {"template": TemplateDescribe, "vlm": VlmDescribe},
}
