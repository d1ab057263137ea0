"""LLaMA-Factory's multimodal ShareGPT layout, and the `dataset_info.json` entry it reads.

Each sample is `{"messages": [{"role": "user", "content": "<image>..."}, {"role": "assistant",
"content": ...}], "images": [path]}`; one `<image>` placeholder per listed image, as LLaMA-Factory's
multimodal plugin checks. `dataset_info.json` names the file, `formatting: sharegpt`, the columns
and the role tags, so the folder can be LLaMA-Factory's `dataset_dir` as it is.
"""

from __future__ import annotations

from typing import Any

from imgdiff.export.base import to_json
from imgdiff.export.json_list import JsonListExporter
from imgdiff.export.samples import Sample

DATASET = "imgdiff"  # the name `dataset:` takes in a LLaMA-Factory config (`imgdiff_<split>` with splits)
COLUMNS = {"messages": "messages", "images": "images"}
TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}


class ShareGPTExporter(JsonListExporter):
    format = "sharegpt"
    version = 2  # 2: PNGs by the fast encoder by default

    def entry(self, sample: Sample, image: str) -> dict[str, Any]:
        return {
            "messages": [
                {"role": "user", "content": "<image>" + sample.question},
                {"role": "assistant", "content": sample.answer},
            ],
            "images": [image],
            "id": sample.id,  # LLaMA-Factory ignores columns it is not told about
        }

    def finish(self) -> dict[str, Any]:
        samples = self.close_lists()
        split = self.context.options.split is not None
        info = {}
        for rel in self.files.values():
            name = f"{DATASET}_{rel.removesuffix('.json')}" if split else DATASET
            info[name] = {"file_name": rel, "formatting": "sharegpt", "columns": COLUMNS, "tags": TAGS}
        (self.to / "dataset_info.json").write_text(to_json(info), encoding="utf-8")
        names = ", ".join(f"`{name}`" for name in info)
        files = ", ".join(f"`{f}`" for f in self.files.values())
        sample_format = (
            f"{files}: JSON lists in LLaMA-Factory's multimodal ShareGPT "
            "layout: `messages` (a user turn starting with the `<image>` placeholder, an assistant "
            "turn) and `images` (one path relative to this folder, the pair side by side with the "
            "red box). `dataset_info.json` registers them as " + names + "."
        )
        loading = (
            "Point LLaMA-Factory at this folder (`dataset_dir: <this folder>`, "
            f"`dataset: {next(iter(info))}`, and a multimodal `template`, e.g. `qwen2_vl`); image "
            "paths resolve against `media_dir`, which defaults to `dataset_dir`."
        )
        self.write_card(sample_format, self.example, loading)
        return {"format": self.format, **self.context.counts(), "files": samples + len(self.files) + 2}
