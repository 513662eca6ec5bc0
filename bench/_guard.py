"""The CI guard against throughput regressions: each stage's ratio to its floor, against a baseline.

Runs the three stage benchmarks at small sizes, each `--runs` times (3), reads the
`floor <stage>: ...` line each prints (bench/_floors.py), takes the median ratio of
the runs and compares it with bench/baseline.json. A ratio more than `--tolerance`
(30%) below its baseline is a WARNING, never a failure: figures on a shared machine
are noisy, which is why only ratios to a floor measured in the same run are compared,
never times. A benchmark that crashes, or prints no floor line, fails the guard (exit
1): that is a broken script, not a slow one.

    .venv/bin/python bench/_guard.py                   # compare with bench/baseline.json
    .venv/bin/python bench/_guard.py --write-baseline  # record this run's medians

Sizes are chosen so that the whole guard takes about 3 minutes on the shared 2-core
box (`GUARD_RUNS` below); the first lines it prints say how long it took.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _floors import FLOOR_PREFIX

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "baseline.json"

# stage -> the script and its arguments: the smallest sizes that still give several
# batches to time (the commissions worker is timed from its first committed batch).
GUARD_RUNS: dict[str, list[str]] = {
    "registration": ["registration_orders.py", "--orders", "1500", "--rounds", "1"],
    "commissions": ["commissions_throughput.py", "--events", "4000", "--batch", "500"],
    "notifications": ["notifications_advisory_fanout.py", "--sizes", "600"],
}

LINE = re.compile(
    rf"^{FLOOR_PREFIX}(?P<stage>\w+): (?P<value>[\d,.]+)/s against a floor of "
    r"(?P<floor>[\d,.]+)/s, ratio (?P<ratio>[\d.]+)"
)


def parse(output: str) -> dict[str, float]:
    """Ratio per stage from a benchmark's output (value / floor, unrounded where it can)."""
    found = {}
    for line in output.splitlines():
        match = LINE.match(line.strip())
        if match is None:
            continue
        value = float(match["value"].replace(",", ""))
        floor = float(match["floor"].replace(",", ""))
        found[match["stage"]] = value / floor if floor else float(match["ratio"])
    return found


def run_once(stage: str, timeout_s: float) -> float:
    script, *args = GUARD_RUNS[stage]
    result = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    ratios = parse(result.stdout)
    if result.returncode != 0 or stage not in ratios:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
        raise RuntimeError(f"{script} exited {result.returncode} without a floor line:\n{tail}")
    return ratios[stage]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="runs per stage; the median counts")
    parser.add_argument("--tolerance", type=float, default=0.30, help="drop that warns")
    parser.add_argument("--write-baseline", action="store_true", help="record these medians")
    parser.add_argument("--only", nargs="*", default=[], help="stages to run")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per benchmark run")
    args = parser.parse_args()
    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    started = time.monotonic()
    medians: dict[str, float] = {}
    warnings: list[str] = []
    for stage in [s for s in GUARD_RUNS if not args.only or s in args.only]:
        ratios = []
        for _ in range(args.runs):
            ratios.append(run_once(stage, args.timeout))
        medians[stage] = statistics.median(ratios)
        runs = ", ".join(f"{r:.2f}" for r in ratios)
        known = baseline.get("ratios", {}).get(stage)
        verdict = "no baseline"
        if known:
            change = medians[stage] / known - 1
            verdict = f"baseline {known:.2f} ({change:+.0%})"
            if change < -args.tolerance:
                verdict += f": WARNING, more than {args.tolerance:.0%} below its baseline"
                warnings.append(f"{stage} ratio {medians[stage]:.2f} vs baseline {known:.2f}")
        print(f"guard {stage}: median ratio {medians[stage]:.2f} of runs [{runs}]; {verdict}")
        print(f"  ({time.monotonic() - started:.0f} s so far)", flush=True)
    print(f"guard: {len(medians)} stages x {args.runs} runs in {time.monotonic() - started:.0f} s")
    if args.write_baseline:
        BASELINE.write_text(
            json.dumps(
                {
                    "about": "median ratio of each stage to its floor (bench/_guard.py)",
                    "runs": {s: GUARD_RUNS[s] for s in medians},
                    "ratios": {s: round(r, 3) for s, r in medians.items()},
                },
                indent=2,
            )
            + "\n"
        )
        print(f"guard: wrote {BASELINE.relative_to(HERE.parent)}")
    for warning in warnings:
        # GitHub-style annotation where CI shows them; plain text elsewhere.
        print(f"::warning title=bench ratio dropped::{warning}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        print(f"guard: a benchmark failed: {error}", file=sys.stderr)
        raise SystemExit(1) from None
