"""InternVL's fine-tuning layout: a jsonl of `{id, image, conversations}` and the meta JSON its
training scripts take (`--meta_path`): per dataset `root`, `annotation`, `data_augment`,
`repeat_time`, `length`.

`image` is relative to `root`; `conversations` are `{"from": "human"|"gpt", "value": ...}` with
`<image>\\n` before the question, as InternVL's LLaVA-style data. The meta's `root` and `annotation`
are relative to this folder (absolute paths would make the bytes depend on where it lies); the
card says to make them absolute, or to start training from this folder.
"""

from __future__ import annotations

import json
from typing import Any

from imgdiff.export.base import Exporter, to_json
from imgdiff.export.llava import conversation
from imgdiff.export.samples import Sample

DATASET = "imgdiff"


class InternVLExporter(Exporter):
    format = "internvl"
    version = 2  # 2: PNGs by the fast encoder by default

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        split = self.context.options.split is not None
        self.files = {name: f"{name if split else 'data'}.jsonl" for name in self.context.split_names}
        self.handles = {name: (self.to / rel).open("w", encoding="utf-8") for name, rel in self.files.items()}
        self.lengths = dict.fromkeys(self.files, 0)
        self.example: dict[str, Any] | None = None

    def add(self, sample: Sample, split: str, picture: bytes) -> None:
        entry = conversation(sample, self.write_picture(sample, picture))
        self.handles[split].write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.lengths[split] += 1
        self.example = self.example or entry

    def finish(self) -> dict[str, Any]:
        for handle in self.handles.values():
            handle.close()
        split = self.context.options.split is not None
        meta = {
            (f"{DATASET}_{name}" if split else DATASET): {
                "root": ".",
                "annotation": rel,
                "data_augment": False,
                "repeat_time": 1,
                "length": self.lengths[name],
            }
            for name, rel in self.files.items()
        }
        (self.to / "meta.json").write_text(to_json(meta), encoding="utf-8")
        files = ", ".join(f"`{rel}`" for rel in self.files.values())
        sample_format = (
            f"{files}: one JSON object a line, `id`, `image` (a path relative to the meta's `root`: "
            "the pair side by side with the red box) and `conversations` (`human` with `<image>\\n` "
            "and the question, `gpt` with the answer). `meta.json` lists them for InternVL's "
            "`--meta_path`, with `length` the number of lines."
        )
        loading = (
            "Pass `--meta_path <this folder>/meta.json` to InternVL's fine-tuning script after making "
            "`root` and `annotation` in `meta.json` absolute (they are relative to this folder), or "
            "start training from this folder."
        )
        self.write_card(sample_format, self.example, loading)
        total = sum(self.lengths.values())
        return {"format": self.format, **self.context.counts(), "files": total + len(self.files) + 2}
