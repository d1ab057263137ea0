"""LLaVA instruction-tuning format: a JSON list of conversations, one per sample.

METHOD.md section 4.5: a difference sample is the side-by-side image with its box drawn, a question
without the region-caption hints, and the difference caption as the answer. Pictures are named after
the sample, so the bytes depend only on the records. `data.json` (or one `<split>.json` per split).
"""

from __future__ import annotations

from typing import Any

from imgdiff.export.base import Exporter, to_json
from imgdiff.export.samples import QUESTION, Sample

__all__ = ["QUESTION", "LlavaExporter"]

SAMPLE_FORMAT = (
    "`data.json` is a JSON list of LLaVA conversations. `image` is a PNG path relative to this "
    "folder: the pair side by side (left | 20 px black bar | right), with the red box drawn at "
    "the same place on both. `id` is `<record id>_<k>`, k being the box's index in the record's "
    "regions (records.jsonl of the run)."
)


class LlavaExporter(Exporter):
    format = "llava"
    version = 1

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.entries: dict[str, list[dict[str, Any]]] = {name: [] for name in self.context.split_names}

    def add(self, sample: Sample, split: str, picture: bytes) -> None:
        self.entries[split].append(
            {
                "id": sample.id,
                "image": self.write_picture(sample, picture),
                "conversations": [
                    {"from": "human", "value": "<image>\n" + sample.question},
                    {"from": "gpt", "value": sample.answer},
                ],
            }
        )

    def finish(self) -> dict[str, Any]:
        files = data_files(self.context.options.split is not None, self.entries, "json")
        for rel, entries in files.items():
            (self.to / rel).write_text(to_json(entries), encoding="utf-8")
        every = [e for entries in self.entries.values() for e in entries]
        text = SAMPLE_FORMAT.replace("a PNG path", f"a {self.context.extension.upper()} path")
        if self.context.options.split:
            text += f" With splits, one such list per split: {', '.join(f'`{f}`' for f in files)}."
        self.write_card(text, every[0] if every else None, None)
        return {"format": self.format, **self.context.counts(), "files": len(every) + len(files) + 1}


def data_files(split: bool, entries: dict[str, list[Any]], suffix: str) -> dict[str, list[Any]]:
    """`data.<suffix>` for an export without --split, else `<split>.<suffix>` per split."""
    if not split:
        return {f"data.{suffix}": [e for items in entries.values() for e in items]}
    return {f"{name}.{suffix}": items for name, items in entries.items()}
