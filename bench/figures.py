"""How the benchmarks print: `name=value` lines, and nearest-rank percentiles."""

from __future__ import annotations

import argparse
import math


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def figure(name: str, value: object) -> None:
    if isinstance(value, float):
        value = f"{value:.2f}"
    print(f"{name}={value}", flush=True)


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: on a shared machine more threads make timings erratic)")
