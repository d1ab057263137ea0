"""Source `photos`: real photos with their captions, for `edit` and an instruction editor.

    source: {type: photos, images: train2017/, path: captions_train2017.json, per_image: 1}

The captions are read exactly as the `captions` source reads them (same formats, `per_image`,
caption hygiene and reasons); each item also names its photo, which becomes image a:
- a COCO captions file (`{"images": [...], "annotations": [...]}`): the annotation's `image_id`
  through the `images` list's `file_name`;
- a JSON list or `.jsonl` of objects: the item's own `file_name`.
`file_name` is relative to the `images` folder. A `.txt` file has no photo names and is refused.
Each record gets `caption_a` and the photo's pixels (RGB, re-encoded losslessly into the run), so
image a of the pair is the photo itself. Beyond the `captions` reasons: `missing_key` (no
`file_name`, or an `image_id` the `images` list lacks), `missing_file`, `corrupt_image`.
The fingerprint is the captions source's (the file's content, `per_image`, the version) plus this
source's version; the photos themselves are not hashed, as for `copy_paste`.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import field_validator

from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.sources.base import BadItem
from imgdiff.sources.captions import CaptionsSettings, CaptionsSource, Unreadable
from imgdiff.sources.images import MAX_PIXELS, confined_path, decoded, opened


class PhotosSettings(CaptionsSettings):
    images: str  # folder of the photos; `file_name`s are relative to it

    @field_validator("images")
    @classmethod
    def _absolute_folder(cls, value: str) -> str:
        return str(Path(value).expanduser().absolute())


class PhotosSource(CaptionsSource):
    type = "photos"
    version = 1
    Settings = PhotosSettings
    settings: PhotosSettings

    def check(self) -> None:
        super().check()
        if self.path.suffix.lower() == ".txt":
            raise UsageError(
                f"source.path: '{self.path.name}' is plain text and names no photos; "
                "use COCO captions JSON or JSON lines with file_name"
            )
        if not Path(self.settings.images).is_dir():
            raise UsageError(f"source.images: folder '{self.settings.images}' not found")

    def fingerprint_prefix(self) -> str:
        return f"{super().fingerprint_prefix()}photos:v{self.version}:"

    def fill(self, record: Record, item: Any) -> None:
        super().fill(record, item)
        record.artifacts["a"] = self._photo(self._file_name(item))

    def _file_name(self, item: Any) -> str:
        if isinstance(item, Unreadable) or not isinstance(item, dict):
            raise BadItem("malformed_item: expected a JSON object")
        name = item.get("file_name")
        if name is None and "image_id" in item:
            name = self._file_names.get(item["image_id"]) if _is_key(item["image_id"]) else None
            if name is None:
                raise BadItem(f"missing_key: image_id {item['image_id']!r} is not in the images list")
        if not isinstance(name, str) or not name.strip():
            raise BadItem("missing_key: 'file_name' (or an image_id of the images list)")
        return name

    def _photo(self, name: str) -> np.ndarray:
        # The same rules as the pairs source: inside the images folder, at most MAX_PIXELS, every
        # PIL mode converted by what it means.
        path = confined_path(Path(self.settings.images), name, "photo", allow_outside=False)
        with opened(path, "photo", name, MAX_PIXELS) as image:
            return decoded(image, "photo", name)

    @cached_property
    def _file_names(self) -> dict[Any, str]:
        """image id -> file name from a COCO file's `images` list (empty for other formats)."""
        if self.path.suffix.lower() != ".json":
            return {}
        data = json.loads(self.path.read_bytes())
        images = data.get("images") if isinstance(data, dict) else None
        out: dict[Any, str] = {}
        for image in images if isinstance(images, list) else []:
            if (
                isinstance(image, dict)
                and _is_key(image.get("id"))
                and isinstance(image.get("file_name"), str)
            ):
                out[image["id"]] = image["file_name"]
        return out


def _is_key(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)
