"""Run a latentbridge benchmark suite: a table on stdout and a JSON file.

Usage: python bench/run.py SUITE [--quick] [--repeat N] [--json PATH] [suite options]

Suites live beside this file as ``suite_<name>.py``; each defines ``run(args) -> list[dict]`` (one
row per measured case) and optionally ``add_arguments(parser)``. Timings are the median (and
minimum) of ``--repeat`` runs after one untimed warm-up; speed-ups are ratios against the reference
library measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import pathlib
import platform
import statistics
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def suites():
    return sorted(p.stem[len("suite_"):] for p in HERE.glob("suite_*.py"))


def time_call(fn, repeat=3, warmup=1):
    """Median and minimum wall time (seconds) of fn() over repeat runs after warm-up runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def time_alternating(calls, repeat=3, min_seconds=0.0, max_repeat=101):
    """Time several callables of one case against each other on a shared machine.

    ``calls`` maps a name to a callable. Each is called once untimed (its result is returned), then
    the callables are called in turn, one round after another, for ``repeat`` rounds, or more while
    the rounds so far took less than ``min_seconds`` in all (at most ``max_repeat``): a burst of
    load then weighs on every callable alike, and short cases get enough calls for a stable median.
    Returns ``(results, stats)``, ``stats[name]`` = {"median_s", "min_s", "cpu_s" (process CPU per
    call, all threads), "calls"}.
    """
    results = {name: fn() for name, fn in calls.items()}
    wall = {name: [] for name in calls}
    cpu = dict.fromkeys(calls, 0.0)
    start, rounds = time.perf_counter(), 0
    while rounds < max(1, repeat) or (time.perf_counter() - start < min_seconds and rounds < max_repeat):
        for name, fn in calls.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - t0)
            cpu[name] += time.process_time() - c0
        rounds += 1
    stats = {name: {"median_s": statistics.median(wall[name]), "min_s": min(wall[name]),
                    "cpu_s": cpu[name] / rounds, "calls": rounds} for name in calls}
    return results, stats


def peak_memory_mb(fn):
    """Run fn() in a fresh process-free way: peak RSS growth (MiB) measured with a sampling thread."""
    import threading

    import psutil  # noqa: F401  (optional; callers catch ImportError)

    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        result = fn()
    finally:
        done.set()
        t.join()
    return (peak[0] - base) / 2**20, result


def environment_info():
    import numpy as np

    info = {
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    try:
        import latentbridge

        info["latentbridge"] = latentbridge.__version__
        info.update({k: v for k, v in latentbridge._backend.config().items()
                     if k.startswith(("cpu_", "cuda_"))})
    except Exception as exc:  # the table is still useful without it
        info["latentbridge_error"] = repr(exc)
    return info


def print_table(rows):
    if not rows:
        print("(no results)")
        return
    cols = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "" if v is None else str(v)

    widths = {c: max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print("  ".join("-" * widths[c] for c in cols))
    for r in rows:
        print("  ".join(fmt(r.get(c)).ljust(widths[c]) for c in cols))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=suites())
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=pathlib.Path, default=None,
                        help="results file (default bench/results/<suite>.json)")
    known, _ = parser.parse_known_args(argv)
    module = importlib.import_module(f"suite_{known.suite}")
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    args = parser.parse_args(argv)
    rows = module.run(args)
    print_table(rows)
    path = args.json or HERE / "results" / f"{args.suite}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": environment_info(), "suite": args.suite, "results": rows}, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
