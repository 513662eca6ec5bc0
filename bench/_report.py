"""One figure of a benchmark, printed as a machine-readable line for `./dev bench`.

Every benchmark prints its figures for people as it goes, and each headline figure
once more through `figure()`; `bench/_run_all.py` collects those lines from every
script and prints one table of figures, baselines and ratios at the end.
"""

from __future__ import annotations

import json

PREFIX = "BENCH-FIGURE "


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    aim: str = "",
) -> None:
    """`value` (a median where the script ran rounds) beside the same run's baseline."""
    print(
        PREFIX
        + json.dumps(
            {
                "name": name,
                "value": value,
                "unit": unit,
                "baseline": baseline,
                "baseline_name": baseline_name,
                "aim": aim,
            }
        ),
        flush=True,
    )
