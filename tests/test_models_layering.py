"""`imgdiff.models` holds the backends and the pool only: it imports nothing above it (recipe, cli,
runner, stages, export, the tiny builders, the CLI commands), and its modules import one another
without a cycle. Read from the source with `ast`, so imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

import imgdiff

SRC = Path(imgdiff.__file__).parent
# What a backend may build on: the error type and the strict settings base (neither imports models).
BELOW_MODELS = {"imgdiff.errors", "imgdiff.settings"}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imgdiff_imports(path: Path) -> set[str]:
    """The imgdiff modules a file imports anywhere in it (`from imgdiff.models import clip` names
    the submodule `imgdiff.models.clip`; `from imgdiff.models import ModelEntry` the package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                is_module = (SRC.parent / Path(*submodule.split("."))).with_suffix(".py").is_file()
                found.add(submodule if is_module else node.module)
    return {name for name in found if name == "imgdiff" or name.startswith("imgdiff.")}


def import_graph(files: list[Path]) -> dict[str, set[str]]:
    return {module_name(path): imgdiff_imports(path) for path in files}


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the graph's modules, as a path that returns to its start, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module) :] + [module]
        if module in done or module not in graph:
            return None
        for target in sorted(graph[module]):
            if target != module and (found := visit(target, [*path, module])):
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        if found := visit(module, []):
            return found
    return None


MODELS = import_graph(sorted((SRC / "models").glob("*.py")))


def test_models_imports_nothing_above_it() -> None:
    outside = {
        f"{module} imports {target}"
        for module, targets in MODELS.items()
        for target in targets
        if not target.startswith("imgdiff.models") and target not in BELOW_MODELS
    }
    assert not outside, "models/ must build only on " + ", ".join(sorted(BELOW_MODELS))


def test_what_models_builds_on_never_leads_back_to_it() -> None:
    whole = import_graph(sorted(SRC.rglob("*.py")))
    reached, todo = set(), list(BELOW_MODELS)
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(whole.get(module, ()))
    assert not any(module.startswith("imgdiff.models") for module in reached), sorted(reached)


def test_no_import_cycle_inside_models() -> None:
    assert cycle_in(MODELS) is None, " -> ".join(cycle_in(MODELS) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    # The check above must be able to fail: the fetch <-> loading cycle it replaced.
    graph = {"a.fetch": {"a.loading"}, "a.loading": {"a.fetch", "a.errors"}, "a.errors": set()}
    assert cycle_in(graph) == ["a.fetch", "a.loading", "a.fetch"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


def test_loaders_name_modules_inside_models() -> None:
    from imgdiff.models import LOADERS

    for loader in LOADERS.values():
        assert isinstance(loader, str) and loader.startswith("imgdiff.models."), loader
