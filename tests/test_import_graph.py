"""The package's import graph has no cycle (tests/import_graph.py says how it is read)."""

from __future__ import annotations

import ast

from import_graph import find_cycle, import_graph, imports_of


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_are_edges() -> None:
    tree = ast.parse("def f():\n    from imgdiff.runner import run\n")
    assert imports_of(tree, "imgdiff.x", False, {"imgdiff.runner", "imgdiff.x"}) == {"imgdiff.runner"}
