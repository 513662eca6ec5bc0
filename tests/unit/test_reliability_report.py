"""docs/RELIABILITY.md is regenerated, never merged: its written sections come from
devkit/reliability.py each time, and only the sections of runs not made here are kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devkit import reliability

pytestmark = pytest.mark.unit


def test_a_regenerated_document_has_each_section_once(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "faults_short.json").write_text(json.dumps({"orders": 600}))
    doc = tmp_path / "RELIABILITY.md"
    doc.write_text(
        "# old\n\n## Scaling out: an old text\n\nold\n\n## Hostile input\n\nold\n\n"
        "## rebalance_long\n\n| figure | value |\n|---|---|\n| orders | 5000 |\n"
    )

    text = reliability.report(results, doc)

    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert len(headings) == len(set(headings)), headings
    assert "## rebalance_long" in headings  # not run here: kept
    assert "## faults_short" in headings  # run here: written
    assert "old\n" not in text.split("## rebalance_long")[0].split("# Reliability")[1]
