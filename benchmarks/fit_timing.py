"""How each benchmark child times one model, the same way in every venv (standard library only).

The child scripts (bench_generators.py --one, sdv_runner.py, mostly_runner.py) run from this folder, so they
import this module by name whichever venv runs them.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable
from typing import Any


def cpu_seconds() -> float:
    """CPU seconds of this process and of its finished children (an engine may fit in worker processes)."""
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + child.ru_utime + child.ru_stime


def fit_and_sample(fit: Callable[[], Any], sample: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run `fit` then `sample`; the sample and the wall and CPU seconds of each."""
    t, c = time.perf_counter(), cpu_seconds()
    fit()
    fit_s, fit_cpu_s = time.perf_counter() - t, cpu_seconds() - c
    t = time.perf_counter()
    syn = sample()
    return syn, {"fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "sample_s": time.perf_counter() - t}


def print_result(timings: dict[str, float], rows: int) -> None:
    """The child's one JSON line: the timings, the rows sampled and this process's peak RSS so far (MB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**timings, "rows": rows, "peak_mb": peak}))
