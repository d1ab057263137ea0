"""Why a record (or a region) was rejected, as data: a short code and a detail.

A `Reason` is a `str` whose text is the stored form, `"<code>: <detail>"` (or just `"<code>"`), so
records.jsonl and every reader of it are unchanged, while code that counts or groups rejections
reads `.code` instead of splitting text. The text of a reason read back from JSON is kept exactly as
written; its code and detail are read from it once, here.
"""

from __future__ import annotations

from typing import Any


class Reason(str):
    code: str
    detail: str

    def __new__(cls, code: str, detail: str = "") -> Reason:
        if not code or ":" in code:
            raise ValueError(f"a reason code is a short word without ':' (got {code!r})")
        return cls._make(f"{code}: {detail}" if detail else code, code, detail)

    @classmethod
    def _make(cls, text: str, code: str, detail: str) -> Reason:
        self = str.__new__(cls, text)
        self.code, self.detail = code, detail
        return self

    @classmethod
    def of(cls, value: str | Reason) -> Reason:
        """A reason from what a stage passes: a `Reason`, or text "<code>: <detail>" (kept as is)."""
        if isinstance(value, Reason):
            return value
        code, _, detail = str(value).partition(":")
        return cls._make(str(value), code.strip() or "unknown", detail.strip())

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and deepcopy rebuild it from its text
        return (Reason.of, (str(self),))
