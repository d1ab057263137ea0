"""Every registered stage method runs the stage contract (tests/stage_contract.py).

The contract needs a per-stage fixture factory: a `StageContract` subclass in the stage's test
file that sets `stage_cls` (and its settings, upstream stages and models). This test is
parametrized over the stage registry, so a new stage method fails here until its contract subclass
exists. The test files are read with `ast` (importing them all would load every heavy library).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from imgdiff.stages import STAGES

REGISTERED = [(name, method) for name, methods in STAGES.items() for method in methods]


def contract_classes(folder: Path) -> set[str]:
    """The names `stage_cls` is set to in the StageContract subclasses of folder/test_*.py."""
    found = set()
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id == "StageContract" for b in node.bases
            ):
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and any(isinstance(t, ast.Name) and t.id == "stage_cls" for t in item.targets)
                        and isinstance(item.value, ast.Name)
                    ):
                        found.add(item.value.id)
    return found


@pytest.mark.parametrize(("name", "method"), REGISTERED, ids=[f"{n}/{m}" for n, m in REGISTERED])
def test_every_registered_stage_runs_the_contract(name: str, method: str) -> None:
    cls = STAGES[name][method]
    assert (cls.name, cls.method) == (name, method), "the registry and the class disagree on its name"
    assert cls.__name__ in contract_classes(Path(__file__).parent), (
        f"stage {name}/{method} ({cls.__name__}) has no contract: add `class Test{cls.__name__}Contract"
        f"(StageContract): stage_cls = {cls.__name__}` (with its settings, upstream and models) to its "
        "test file"
    )


def test_a_stage_without_a_contract_is_found(tmp_path: Path) -> None:
    (tmp_path / "test_x.py").write_text(
        "class TestA(StageContract):\n    stage_cls = A\n\nclass B:\n    stage_cls = C\n"
    )
    assert contract_classes(tmp_path) == {"A"}
