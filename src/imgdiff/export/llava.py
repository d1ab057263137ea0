"""LLaVA instruction-tuning format: one conversation per (kept pair, accepted box).

METHOD.md section 4.5: the sample is the side-by-side image with that box drawn, a question without
the region-caption hints, and the difference caption as the answer. Images are lossless PNGs named
after the record id and the box's index in `record.regions`, so the bytes depend only on the records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from imgdiff.export.base import Exporter, dataset_card, run_facts, samples_of
from imgdiff.record import Record
from imgdiff.render import png_bytes, side_by_side
from imgdiff.store import ImageLoader

QUESTION = (
    "The two images are shown side by side, separated by a black bar. What is the difference "
    "between the contents of the red boxes? Answer in a few concise sentences."
)


class LlavaExporter(Exporter):
    format = "llava"
    version = 1

    def export(self, run_dir: Path, records: list[Record], to: Path) -> dict[str, Any]:
        images = ImageLoader(run_dir)
        entries: list[dict[str, Any]] = []
        pairs = 0
        for record in sorted(records, key=Record.sort_key):
            samples = samples_of(record)
            if not samples:
                continue
            pairs += 1
            a, b = images.load(record, "a"), images.load(record, "b")
            for k, region in samples:
                sample_id = f"{record.id}_{k}"
                rel = f"images/{record.id[:2]}/{sample_id}.png"
                (to / rel).parent.mkdir(parents=True, exist_ok=True)
                (to / rel).write_bytes(png_bytes(side_by_side(a, b, region.box)))
                entries.append(
                    {
                        "id": sample_id,
                        "image": rel,
                        "conversations": [
                            {"from": "human", "value": "<image>\n" + QUESTION},
                            {"from": "gpt", "value": region.difference},
                        ],
                    }
                )
        (to / "data.json").write_text(_json(entries), encoding="utf-8")
        counts = {"pairs": pairs, "samples": len(entries)}
        card = dataset_card(self.format, run_facts(run_dir), counts, _sample_format(entries[:1]))
        (to / "README.md").write_text(card, encoding="utf-8")
        return {"format": self.format, **counts, "files": len(entries) + 2}


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _sample_format(example: list[dict[str, Any]]) -> str:
    text = (
        "`data.json` is a JSON list of LLaVA conversations. `image` is a PNG path relative to this "
        "folder: the pair side by side (left | 20 px black bar | right), with the red box drawn at "
        "the same place on both. `id` is `<record id>_<k>`, k being the box's index in the record's "
        "regions (records.jsonl of the run)."
    )
    if not example:
        return text + " This export holds no samples."
    return f"{text} An example:\n\n```json\n{_json(example[0]).rstrip()}\n```"
