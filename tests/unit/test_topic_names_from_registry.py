"""Services and the chassis name topics from `shared/topics.py`, never as string literals."""

from __future__ import annotations

import ast
from pathlib import Path

from shared.topics import DLQ_SUFFIX, all_topic_names

ROOT = Path(__file__).resolve().parents[2]
TOPICS = set(all_topic_names())


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    for node in ast.walk(tree):  # attribute docstrings: a bare string after an assignment
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            found.add(id(node.value))
    return found


def test_no_topic_name_is_spelled_out_in_the_code() -> None:
    found: list[str] = []
    for path in sorted([*ROOT.glob("services/**/*.py"), *ROOT.glob("chassis/**/*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
                and (node.value in TOPICS or node.value == DLQ_SUFFIX)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert not found, "name topics from shared/topics.py:\n" + "\n".join(found)
