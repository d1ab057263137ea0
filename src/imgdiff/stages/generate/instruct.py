"""Stage `generate`/`instruct`: image b from a real image a and the record's edit, by an instruction
editor (InstructPix2Pix, FLUX.1 Kontext, Qwen-Image-Edit through diffusers' stock pipelines).

Image a is the record's own (a photo from the `photos` source, or the `a` of an earlier step) and
stays as it is, pixel for pixel. The edit becomes an instruction ("replace the cat with a dog",
"remove the cat"; `instructions.py`). Image a is resized (Lanczos) to the preset's working size,
an area of `resolution`² at a's aspect ratio in multiples the model needs; the editor's output is
resized back to a's size, so b always has a's size. The seed is the record's, on a CPU generator
per image, so a pair does not depend on its call's other records. `record.generation` holds the
model, the instruction, the seed and every setting, as for `generate`/`p2p`.

Rejections, each with a reason (bad input never stops the run):
- `missing_edit`: no edit (old object) to instruct;
- `missing_image`: the record has no image a (a captions-only source needs `generate`/`p2p`);
- `missing_file`, `corrupt_image`: image a could not be read;
- `editor_error`: the pipeline call raised (a call of several is retried one record at a time,
  so only the records that fail alone are rejected);
- `nonfinite_image`: NaN or inf in the edited image;
- `out_of_memory`: CUDA ran out of memory at one edit per call (`edits_per_call` is halved first,
  for the rest of the worker's life: `calls.ShrinkingCalls`, the rule of `generate`/`p2p`).

Presets hold each model's published sampling; a preset names its family and `setup` fails with one
line when the model entry is of another family (`family: null` runs a preset on any family).
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydantic import Field

from imgdiff.errors import UsageError
from imgdiff.record import Record
from imgdiff.settings import model_ref
from imgdiff.stages.base import Stage, StageSettings
from imgdiff.stages.generate.calls import ShrinkingCalls
from imgdiff.stages.generate.instructions import instruction

if TYPE_CHECKING:
    from imgdiff.models import ModelPool
    from imgdiff.models.editing import EditRequest
    from imgdiff.store import ImageLoader

log = logging.getLogger("imgdiff")

Family = Literal["instruct-pix2pix", "flux-kontext", "qwen-image-edit"]
DEFAULT_PRESET = "qwen-image-edit"


class InstructGenerateSettings(StageSettings):
    # How many edits share a call changes speed and memory, not what an edit is (each image has its
    # own generator): it stays out of the fingerprint.
    RUNTIME = frozenset({"edits_per_call"})

    preset: str = DEFAULT_PRESET
    editor: str = model_ref("editor")
    # The preset fills these: see InstructGenerate.PRESETS.
    family: Family | None  # the family the numbers are for; None: any
    steps: int = Field(ge=1)
    guidance: float = Field(ge=0)  # text guidance (IP2P), distilled guidance (Kontext), true CFG (Qwen)
    image_guidance: float | None = Field(None, ge=0)  # InstructPix2Pix only
    negative_prompt: str | None = None  # Qwen-Image-Edit's true classifier-free guidance
    resolution: int = Field(ge=16)  # working area = resolution² at image a's aspect ratio
    edits_per_call: int = Field(1, ge=1)


class InstructGenerate(Stage):
    name = "generate"
    method = "instruct"
    version = 1
    Settings = InstructGenerateSettings
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # timbrooks/instruct-pix2pix (Brooks et al. 2023): the paper's edit script and diffusers'
        # pipeline defaults, 100 steps, text guidance 7.5, image guidance 1.5, 512 px.
        "instruct-pix2pix": {
            "family": "instruct-pix2pix",
            "steps": 100,
            "guidance": 7.5,
            "image_guidance": 1.5,
            "resolution": 512,
        },
        # black-forest-labs/FLUX.1-Kontext-dev's model card: 28 steps (the pipeline's default),
        # guidance 2.5, about one megapixel (the pipeline's max_area 1024²).
        "flux-kontext": {"family": "flux-kontext", "steps": 28, "guidance": 2.5, "resolution": 1024},
        # Qwen/Qwen-Image-Edit's model card: 50 steps, true CFG 4.0 with a blank negative prompt,
        # about one megapixel (the pipeline sizes its input to 1024² at the image's aspect ratio).
        "qwen-image-edit": {
            "family": "qwen-image-edit",
            "steps": 50,
            "guidance": 4.0,
            "negative_prompt": " ",
            "resolution": 1024,
        },
    }

    @classmethod
    def resolve_settings(cls, given: dict[str, Any], where: str) -> StageSettings:
        # No Img-Diff numbers exist for editors, so there is no `paper` preset: the default is
        # Qwen-Image-Edit's (Apache-2.0 weights, as the built-in photo-edit recipe).
        if "preset" not in given:
            given = {"preset": DEFAULT_PRESET, **given}
        return super().resolve_settings(given, where)

    def setup(self, models: ModelPool, images: ImageLoader) -> None:
        super().setup(models, images)
        s = self.settings
        self.model = models.get(s.editor)
        if s.family is not None and self.model.family != s.family:
            raise UsageError(
                f"generate: preset '{s.preset}' is for {s.family} models but model '{s.editor}' is "
                f"{self.model.family}; use preset {self.model.family} or set generate.family=null"
            )
        self.calls = ShrinkingCalls(s.edits_per_call, "generate: edits_per_call")
        entry = models.entries[s.editor]
        where = {"id": entry.id, "revision": entry.revision} if entry.id else {"path": entry.path}
        pipe = self.model.pipe
        self.provenance: dict[str, Any] = {
            "model": s.editor,
            **{k: v for k, v in where.items() if v is not None},
            "family": self.model.family,
            "pipeline": type(pipe).__name__,
            "scheduler": type(pipe.scheduler).__name__,
            "dtype": str(pipe.dtype).removeprefix("torch."),
            "steps": s.steps,
            "guidance": s.guidance,
            **({"image_guidance": s.image_guidance} if s.image_guidance is not None else {}),
            **({"negative_prompt": s.negative_prompt} if s.negative_prompt is not None else {}),
            "resolution": s.resolution,
        }

    def __call__(self, records: list[Record]) -> list[Record]:
        ready = []
        for record in records:
            request = self._request(record)
            if isinstance(request, str):
                record.reject(self.name, request)
            else:
                ready.append((record, request))
        if ready:
            self.calls.run(ready, self._edit, self._out_of_memory)
        return records

    def _request(self, record: Record) -> EditRequest | str:
        """The editor's request for a record, or why the record cannot be edited."""
        from imgdiff.models.editing import EditRequest

        if record.edit is None or not record.edit.old.strip():
            return "missing_edit: no changed object (edit.old) to instruct"
        if "a" not in record.artifacts and "a" not in record.images:
            return "missing_image: no image a to edit (use the photos source or a step that makes a)"
        try:
            a = self.images.load(record, "a")
        except FileNotFoundError as exc:
            return f"missing_file: image a {exc.filename!r} not found"
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            return f"corrupt_image: image a cannot be read ({type(exc).__name__})"
        height, width = working_size(a.shape[0], a.shape[1], self.settings.resolution, self.model.multiple_of)
        resized = np.asarray(Image.fromarray(a).resize((width, height), Image.Resampling.LANCZOS))
        return EditRequest(image=resized, instruction=instruction(record.edit, record.kind), seed=record.seed)

    def _edit(self, group: list[tuple[Record, EditRequest]]) -> None:
        """One editor call for `group`; a call that raises goes again one record at a time."""
        import torch

        from imgdiff.models.editing import EditSampling

        s = self.settings
        sampling = EditSampling(s.steps, s.guidance, s.image_guidance, s.negative_prompt)
        started = time.perf_counter()
        try:
            edited = self.model.edit([request for _, request in group], sampling)
        except torch.cuda.OutOfMemoryError:
            raise  # ShrinkingCalls halves the call
        except Exception as exc:  # a pipeline's own error: isolate the records that cause it
            if len(group) > 1:
                for one in group:
                    self.calls.run([one], self._edit, self._out_of_memory)
                return
            reason = "nonfinite_image" if isinstance(exc, FloatingPointError) else "editor_error"
            group[0][0].reject(self.name, f"{reason}: {type(exc).__name__}: {_first_line(exc)}")
            return
        seconds = (time.perf_counter() - started) / len(group)
        log.info(
            "generate: %d edit%s in one call, %.2f s per edit", len(group), "s"[: len(group) > 1], seconds
        )
        for (record, request), image in zip(group, edited, strict=True):
            self._keep(record, request, image)

    def _out_of_memory(self, item: tuple[Record, EditRequest]) -> None:
        item[0].reject(self.name, "out_of_memory: CUDA out of memory at 1 edit per call")

    def _keep(self, record: Record, request: EditRequest, edited: np.ndarray) -> None:
        a = self.images.load(record, "a")
        height, width = request.image.shape[:2]
        record.generation = {
            **self.provenance,
            "method": self.method,
            "instruction": request.instruction,
            "height": height,
            "width": width,
            "seed": record.seed,
        }
        b = Image.fromarray(edited).resize((a.shape[1], a.shape[0]), Image.Resampling.LANCZOS)
        record.artifacts["b"] = np.asarray(b)


def working_size(height: int, width: int, resolution: int, multiple: int) -> tuple[int, int]:
    """(height, width) of about resolution² pixels at the aspect ratio height:width, each a positive
    multiple of `multiple`."""
    scale = resolution / math.sqrt(height * width)

    def side(n: int) -> int:
        return max(multiple, int(round(n * scale / multiple)) * multiple)

    return side(height), side(width)


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:limit]
