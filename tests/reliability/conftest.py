"""Reliability and security suite: long runs only with `--reliability`.

Tests marked `reliability` are deselected unless `--reliability` is given (the
option is registered here if this conftest loads at start-up, i.e. when
`tests/reliability` is on the command line; `tests/conftest.py` should declare it
for a plain `./dev test --reliability`).
"""

from __future__ import annotations

import contextlib

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    with contextlib.suppress(ValueError):  # already declared by the root conftest
        parser.addoption(
            "--reliability",
            action="store_true",
            default=False,
            help="also run the long reliability runs (faults, load)",
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "reliability: long fault/load runs, selected only with --reliability"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        wanted = bool(config.getoption("--reliability"))
    except ValueError:
        wanted = False
    if wanted:
        return
    keep = [item for item in items if not item.get_closest_marker("reliability")]
    dropped = [item for item in items if item.get_closest_marker("reliability")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
