"""`--where`: a small, safe expression language over a sample's fields (no `eval`).

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | compare
    compare := value (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in") value)?
    value   := NUMBER | STRING | true | false | null | NAME | "(" expr ")" | "[" value ("," value)* "]"

A NAME is a field of `Sample.fields()`, dots included: `regions.changed_area`, `kind`, `edit.old`,
`region.area`. A field a sample lacks is null; an ordering comparison with null or between a number
and a text is false (never an error), so `x < 0.8` keeps only samples that have x. A syntax error is
one UsageError with the column; a name no sample has is one UsageError with the nearest name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from imgdiff.errors import UsageError, did_you_mean

Expression = Callable[[dict[str, Any]], Any]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,)
    | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_ORDER = {
    "<": lambda x, y: x < y,
    "<=": lambda x, y: x <= y,
    ">": lambda x, y: x > y,
    ">=": lambda x, y: x >= y,
}


class Parsed:
    def __init__(self, evaluate: Expression, names: set[str]) -> None:
        self.evaluate = evaluate
        self.names = names  # the field names the expression reads

    def check_names(self, known: Iterable[str]) -> None:
        known = set(known)
        for name in sorted(self.names - known):
            raise UsageError(f"--where: no field '{name}'{did_you_mean(name, known)}")

    def __call__(self, fields: dict[str, Any]) -> bool:
        return bool(self.evaluate(fields))


def parse(text: str) -> Parsed:
    """The compiled expression; UsageError('--where: ... at column N') on a syntax error."""
    return _Parser(text).parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.names: set[str] = set()

    def parse(self) -> Parsed:
        if not self.tokens[:-1]:
            self._fail("an empty expression")
        expr = self._or()
        if self._peek()[0] != "end":
            self._fail(f"unexpected {self._shown()}")
        return Parsed(expr, self.names)

    # the grammar, one method per rule
    def _or(self) -> Expression:
        parts = [self._and()]
        while self._take("name", "or"):
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else lambda f: any(p(f) for p in parts)

    def _and(self) -> Expression:
        parts = [self._not()]
        while self._take("name", "and"):
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else lambda f: all(p(f) for p in parts)

    def _not(self) -> Expression:
        if self._take("name", "not"):
            inner = self._not()
            return lambda f: not inner(f)
        return self._compare()

    def _compare(self) -> Expression:
        left = self._value()
        kind, text, _ = self._peek()
        if kind == "op" and text in ("==", "!=", "<", "<=", ">", ">="):
            self.at += 1
            right = self._value()
            return _comparison(text, left, right)
        negate = False
        if kind == "name" and text == "not" and self.tokens[self.at + 1][:2] == ("name", "in"):
            self.at += 1
            negate = True
        if self._take("name", "in"):
            right = self._value()
            return lambda f: _contains(right(f), left(f)) != negate
        return left

    def _value(self) -> Expression:
        kind, text, _ = self._peek()
        self.at += 1
        if kind == "number":
            number = float(text)
            return lambda f: number
        if kind == "string":
            literal = _unquote(text)
            return lambda f: literal
        if kind == "name" and text in ("true", "false", "null"):
            constant = {"true": True, "false": False, "null": None}[text]
            return lambda f: constant
        if kind == "name" and text not in KEYWORDS:
            self.names.add(text)
            return lambda f: f.get(text)
        if (kind, text) == ("op", "("):
            inner = self._or()
            self._expect(")")
            return inner
        if (kind, text) == ("op", "["):
            items = [self._value()]
            while self._take("op", ","):
                items.append(self._value())
            self._expect("]")
            return lambda f: [item(f) for item in items]
        self.at -= 1
        self._fail(f"expected a value, got {self._shown()}")
        raise AssertionError  # _fail raised

    # helpers
    def _peek(self) -> tuple[str, str, int]:
        return self.tokens[self.at]

    def _take(self, kind: str, text: str) -> bool:
        if self._peek()[:2] == (kind, text):
            self.at += 1
            return True
        return False

    def _expect(self, text: str) -> None:
        if not self._take("op", text):
            self._fail(f"expected '{text}', got {self._shown()}")

    def _shown(self) -> str:
        kind, text, _ = self._peek()
        return "the end" if kind == "end" else f"'{text}'"

    def _fail(self, message: str) -> None:
        column = self._peek()[2] + 1
        raise UsageError(f"--where: syntax error at column {column}: {message} in {self.text!r}")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, at = [], 0
    while at < len(text):
        if text[at:].strip() == "":
            break
        match = _TOKEN.match(text, at)
        if match is None or match.lastgroup is None:
            column = at + len(text[at:]) - len(text[at:].lstrip()) + 1
            raise UsageError(f"--where: syntax error at column {column}: unexpected character in {text!r}")
        out.append((match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup)))
        at = match.end()
    out.append(("end", "", len(text)))
    return out


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _comparison(op: str, left: Expression, right: Expression) -> Expression:
    if op == "==":
        return lambda f: left(f) == right(f)
    if op == "!=":
        return lambda f: left(f) != right(f)
    order = _ORDER[op]

    def compare(fields: dict[str, Any]) -> bool:
        x, y = left(fields), right(fields)
        numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (x, y))
        if numbers or (isinstance(x, str) and isinstance(y, str)):
            return order(x, y)
        return False

    return compare


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, (list, str)) and (isinstance(container, list) or isinstance(item, str)):
        return item in container
    return False
