"""No import cycle between the project's modules (`devkit.import_cycles`, which
`./dev lint` runs too). A cycle means a definition sits in the wrong module: move it.
Every import counts, a function-level one too: deferring an import hides a cycle, it
does not remove it."""

from __future__ import annotations

from pathlib import Path

import pytest

from devkit.import_cycles import cycles, import_graph, main

pytestmark = pytest.mark.unit


def test_the_project_has_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_a_cycle_in_a_package_on_disk_is_found(tmp_path: Path) -> None:
    """Through a function-level and a relative import: both count."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg import b\n")
    (package / "b.py").write_text("from . import a\n")
    (package / "c.py").write_text("from pkg.a import f\n")
    assert cycles(import_graph(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b"]]


def test_the_command_passes_on_the_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "no import cycle" in capsys.readouterr().out
