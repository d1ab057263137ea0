"""LLaVA instruction-tuning format: a JSON list of conversations, one per sample.

METHOD.md section 4.5: a difference sample is the side-by-side image with its box drawn, a question
without the region-caption hints, and the difference caption as the answer. Pictures are named after
the sample, so the bytes depend only on the records. `data.json` (or one `<split>.json` per split).
"""

from __future__ import annotations

from typing import Any

from imgdiff.export.json_list import JsonListExporter
from imgdiff.export.samples import QUESTION, Sample

__all__ = ["QUESTION", "LlavaExporter", "conversation"]

SAMPLE_FORMAT = (
    "`data.json` is a JSON list of LLaVA conversations. `image` is a PNG path relative to this "
    "folder: the pair side by side (left | 20 px black bar | right), with the red box drawn at "
    "the same place on both. `id` is `<record id>_<k>`, k being the box's index in the record's "
    "regions (records.jsonl of the run)."
)


def conversation(sample: Sample, image: str) -> dict[str, Any]:
    """LLaVA's entry (InternVL reads the same): the picture, the question after `<image>`, the answer."""
    return {
        "id": sample.id,
        "image": image,
        "conversations": [
            {"from": "human", "value": "<image>\n" + sample.question},
            {"from": "gpt", "value": sample.answer},
        ],
    }


class LlavaExporter(JsonListExporter):
    format = "llava"
    version = 2  # 2: PNGs by the fast encoder by default

    def entry(self, sample: Sample, image: str) -> dict[str, Any]:
        return conversation(sample, image)

    def finish(self) -> dict[str, Any]:
        samples = self.close_lists()
        text = SAMPLE_FORMAT.replace("a PNG path", f"a {self.context.extension.upper()} path")
        if self.context.options.split:
            files = ", ".join(f"`{f}`" for f in self.files.values())
            text += f" With splits, one such list per split: {files}."
        self.write_card(text, self.example, None)
        return {"format": self.format, **self.context.counts(), "files": samples + len(self.files) + 1}
