"""How the benchmarks print: `name=value` lines, and nearest-rank percentiles."""

from __future__ import annotations

import math


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def figure(name: str, value: object) -> None:
    if isinstance(value, float):
        value = f"{value:.2f}"
    print(f"{name}={value}", flush=True)
