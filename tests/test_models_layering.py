"""`imgdiff.models` holds the backends and the pool only: it imports nothing above it (recipe, cli,
runner, stages, export, the tiny builders, the CLI commands), and its modules import one another
without a cycle (the graph of tests/import_graph.py: imports inside functions count too)."""

from __future__ import annotations

from import_graph import find_cycle, import_graph

# What a backend may build on: the error type and the strict settings base (neither imports models).
BELOW_MODELS = {"imgdiff.errors", "imgdiff.settings"}
WHOLE = import_graph()
MODELS = {module: targets for module, targets in WHOLE.items() if module.startswith("imgdiff.models")}


def test_models_imports_nothing_above_it() -> None:
    outside = {
        f"{module} imports {target}"
        for module, targets in MODELS.items()
        for target in targets
        if not target.startswith("imgdiff.models") and target not in BELOW_MODELS
    }
    assert not outside, "models/ must build only on " + ", ".join(sorted(BELOW_MODELS))


def test_what_models_builds_on_never_leads_back_to_it() -> None:
    reached, todo = set(), list(BELOW_MODELS)
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo.extend(WHOLE.get(module, ()))
    assert not any(module.startswith("imgdiff.models") for module in reached), sorted(reached)


def test_no_import_cycle_inside_models() -> None:
    assert find_cycle(MODELS) is None, " -> ".join(find_cycle(MODELS) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    # The check above must be able to fail: the fetch <-> loading cycle it replaced.
    graph = {"a.fetch": {"a.loading"}, "a.loading": {"a.fetch", "a.errors"}, "a.errors": set()}
    assert find_cycle(graph) == ["a.fetch", "a.loading", "a.fetch"]


def test_loaders_name_modules_inside_models() -> None:
    from imgdiff.models import LOADERS

    for loader in LOADERS.values():
        assert isinstance(loader, str) and loader.startswith("imgdiff.models."), loader
