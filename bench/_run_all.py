"""`./dev bench`: every benchmark under bench/ in turn, then one table of their figures.

Each script runs as its own process (its own embedded broker and database) with its
output passed through; the lines it prints through `_report.figure` are collected
and shown at the end as one table: figure, value, the baseline measured in the same
run, the ratio and the aim. Nothing here fails on a time: a script that crashes is
reported as such and the exit code says so.

    .venv/bin/python bench/_run_all.py [--quick] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _floors import FLOOR_PREFIX
from _report import PREFIX

HERE = Path(__file__).resolve().parent


def scripts(only: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_"))
    if only:
        found = [p for p in found if any(name in p.stem for name in only)]
    return found


def run(script: Path, quick: bool, floors: list[str]) -> tuple[int, list[dict[str, Any]], float]:
    argv = [sys.executable, str(script)] + (["--quick"] if quick else [])
    figures: list[dict[str, Any]] = []
    started = time.monotonic()
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(PREFIX):
                figures.append({"script": script.stem, **json.loads(line[len(PREFIX) :])})
            else:
                if line.startswith(FLOOR_PREFIX):
                    floors.append(line.strip())
                print(line, end="", flush=True)
    return proc.returncode, figures, time.monotonic() - started


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:,.2f} {unit}"


def table(figures: list[dict[str, Any]]) -> str:
    rows = [("benchmark", "figure", "value", "baseline (same run)", "ratio", "aim")]
    for f in figures:
        base = f.get("baseline")
        ratio = f"{f['value'] / base:.2f}" if base else ""
        baseline = f"{_number(base, f['unit'])} {f.get('baseline_name', '')}".strip()
        rows.append(
            (f["script"], f["name"], _number(f["value"], f["unit"]), baseline, ratio, f["aim"])
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one round each")
    parser.add_argument("--only", nargs="*", default=[], help="scripts whose name contains NAME")
    args = parser.parse_args()
    figures: list[dict[str, Any]] = []
    floors: list[str] = []
    failed: list[str] = []
    for script in scripts(args.only):
        print(f"== {script.name}", flush=True)
        code, found, seconds = run(script, args.quick, floors)
        figures.extend(found)
        print(f"== {script.name}: exit {code} after {seconds:.0f} s\n", flush=True)
        if code != 0:
            failed.append(script.name)
    print(table(figures))
    if floors:
        # Each stage against its floor (bench/_floors.py), as bench/_guard.py reads them.
        print("\n" + "\n".join(floors))
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
