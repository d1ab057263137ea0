"""WebDataset tar shards: `<split>-NNNNNN.tar`, each sample two members, `<key>.png` (or `.jpg`)
and `<key>.json` (every field of `Sample.fields()`), readable by the `webdataset` library and by
`datasets.load_dataset("webdataset", data_files=...)`.

An empty split has no shard. A new shard starts before a sample would push the current one past
`shard_mb`. Members carry fixed metadata (mtime 0, owner root, mode 0644), so the same samples give
the same bytes. The key is the
sample id (no dots: webdataset splits a member name at the first dot of its base name).
"""

from __future__ import annotations

import io
import json
import tarfile
from typing import Any

from imgdiff.export.base import Exporter
from imgdiff.export.samples import Sample

MB = 1 << 20
BLOCK = 512  # tar header and padding unit


class WebDatasetExporter(Exporter):
    format = "webdataset"
    version = 2  # 2: PNGs by the fast encoder by default

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.tar: tarfile.TarFile | None = None
        self.split: str | None = None
        self.shard = -1
        self.size = 0
        self.files: list[str] = []
        self.example: dict[str, Any] | None = None

    def add(self, sample: Sample, split: str, picture: bytes) -> None:
        fields = json.dumps(sample.fields(), ensure_ascii=False, sort_keys=False).encode()
        grows = sum(_member_size(len(x)) for x in (picture, fields))
        if split != self.split or (self.size and self.size + grows > self.context.options.shard_mb * MB):
            self._next_shard(split)
        assert self.tar is not None
        for suffix, data in ((self.context.extension, picture), ("json", fields)):
            info = tarfile.TarInfo(f"{sample.id}.{suffix}")
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o644, "root", "root"
            self.tar.addfile(info, io.BytesIO(data))
        self.size += grows
        self.example = self.example or sample.fields()

    def finish(self) -> dict[str, Any]:
        if self.tar is not None:
            self.tar.close()
        ext = self.context.extension
        shards = ", ".join(f"`{f}`" for f in self.files) or "none"
        sample_format = (
            f"`<split>-NNNNNN.tar` shards ({shards}); each sample is `<id>.{ext}` (the pair side by "
            "side with the red box) and `<id>.json` (every field of the sample: question, answer, "
            "choices, box, captions, edit and the pair's scores)."
        )
        loading = (
            "```python\nimport webdataset as wds\n\n"
            f'data = wds.WebDataset("<this folder>/train-{{000000..NNNNNN}}.tar").decode("pil")'
            f'.to_tuple("{ext}", "json")\n\n'
            "from datasets import load_dataset\n\n"
            'data = load_dataset("webdataset", data_files={"train": "<this folder>/train-*.tar"})\n```'
        )
        self.write_card(sample_format, self.example, loading)
        return {"format": self.format, **self.context.counts(), "files": len(self.files) + 1}

    def _next_shard(self, split: str) -> None:
        if self.tar is not None:
            self.tar.close()
        self.shard = self.shard + 1 if split == self.split else 0
        self.split = split
        rel = f"{split}-{self.shard:06d}.tar"
        self.files.append(rel)
        self.tar = tarfile.open(self.to / rel, "w", format=tarfile.USTAR_FORMAT)  # noqa: SIM115 (closed in finish)
        self.size = 2 * BLOCK * 10  # the end-of-archive blocks (tar pads the archive to 10 KiB)


def _member_size(size: int) -> int:
    return BLOCK + -(-size // BLOCK) * BLOCK
