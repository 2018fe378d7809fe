"""Re-test the survivors of a finished mutmut run against the tests added since (one process).

Run by ``mutmut_run.py MODULE --recheck`` inside ``<workdir>/<module>/mutants`` (the folder of the
full run, whose mutated sources are kept): the committed ``tests/`` have been copied in already.
A survivor passed every test of the full run, so only tests that run did not have can kill it now:
the "new" tests are those absent from mutmut's own record of that run (``mutmut-stats.json``), by
name: a test edited since counts as old, so a new check belongs in a test of its own.
One pytest session collects the test files once; each new test runs once in mutmut's "stats"
trampoline mode to record the functions it calls; then every survivor (``MUTANT_UNDER_TEST``)
runs only the new tests that call its function, quickest first, stopping at the first failure.
A new test that fails on the unmutated module (it checks a fix made after the full run) is left
out and listed.
Writes ``{name: 0 survived | 1 killed}`` as JSON to the first argument after each survivor; with
``MUTMUT_RECHECK_SECONDS`` set it stops starting new survivors after that many seconds (the ones
left keep their "survived").

Usage: python mutmut_recheck.py OUT.json TESTFILE [TESTFILE ...] -- MUTANT [MUTANT ...]
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path


def main(argv):
    out, rest = argv[0], argv[1:]
    split = rest.index("--")
    test_files, survivors = rest[:split], rest[split + 1:]
    sys.path.insert(0, os.getcwd())
    import pytest
    from _pytest.runner import runtestprotocol
    from mutmut.mutation import trampoline
    from mutmut.utils.format_utils import mangled_name_from_mutant_name

    old = set(json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"])
    current = {"test": None}
    hits = defaultdict(set)              # mangled function name -> new tests that call it
    failing, results, seconds = set(), {}, {}

    def record(name, caller=None):
        if current["test"] is not None:
            hits[name].add(current["test"])

    def fails(item):
        if hasattr(item, "_initrequest"):          # fresh fixtures for a repeated run
            item._initrequest()
        return any(r.failed for r in runtestprotocol(item, nextitem=None, log=False))

    class Recheck:
        def pytest_runtestloop(self, session):
            new = [it for it in session.items if it.nodeid not in old]
            os.environ["MUTANT_UNDER_TEST"] = "stats"
            for item in new:
                current["test"] = item.nodeid
                start = time.perf_counter()
                if fails(item):
                    failing.add(item.nodeid)
                seconds[item.nodeid] = time.perf_counter() - start
                current["test"] = None
            for name in sorted(failing):
                print(f"not used (fails on the unmutated module of the full run): {name}")
            by_id = {it.nodeid: it for it in new if it.nodeid not in failing}
            stop = time.monotonic() + float(os.environ.get("MUTMUT_RECHECK_SECONDS", "inf"))
            for name in survivors:
                if time.monotonic() > stop:
                    print(f"time is up: {len(results)} of {len(survivors)} survivors rechecked")
                    break
                os.environ["MUTANT_UNDER_TEST"] = name
                tests = sorted(hits.get(mangled_name_from_mutant_name(name), set()) - failing,
                               key=seconds.get)          # quickest first, as mutmut does
                results[name] = int(any(fails(by_id[t]) for t in tests))
                print(f"{name}: {'killed' if results[name] else 'survived'}", flush=True)
                Path(out).write_text(json.dumps(results))      # kept if the run is stopped
            os.environ["MUTANT_UNDER_TEST"] = ""
            return True

    trampoline.record_trampoline_hit = record
    code = pytest.main(["-q", "-p", "no:cacheprovider", *test_files], plugins=[Recheck()])
    if code not in (0, 1, 5):
        raise SystemExit(f"pytest could not run the tests (exit {code})")
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
