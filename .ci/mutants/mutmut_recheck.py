"""Re-test the survivors of a finished mutmut run against the tests added since (one process).

Run by ``mutmut_run.py MODULE --recheck`` inside ``<workdir>/<module>/mutants`` (the folder of the
full run, whose mutated sources are kept): the committed ``tests/`` have been copied in already.
A survivor passed every test of the full run, so only tests that run did not have can kill it now:
the "new" tests are those absent from mutmut's own record of that run (``mutmut-stats.json``).
Each new test's coverage is taken once with mutmut's "stats" trampoline mode, then every survivor
runs (``MUTANT_UNDER_TEST``) only the new tests that call its function, stopping at the first
failure. A new test that fails on the unmutated module (it checks a fix made after the full run)
is left out and listed. Writes ``{name: exit code}`` (pytest's: 0 survived, 1 killed) as JSON to ``argv[1]``.

Usage: python mutmut_recheck.py OUT.json TESTFILE [TESTFILE ...] -- MUTANT [MUTANT ...]
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path


def main(argv):
    out, rest = argv[0], argv[1:]
    split = rest.index("--")
    test_files, survivors = rest[:split], rest[split + 1:]
    sys.path.insert(0, os.getcwd())
    import pytest
    from mutmut.mutation import trampoline
    from mutmut.utils.format_utils import mangled_name_from_mutant_name

    old = set(json.loads(Path("mutmut-stats.json").read_text())["duration_by_test"])
    current = {"test": None}
    hits = defaultdict(set)              # mangled function name -> new tests that call it
    failing = set()

    def record(name, caller=None):
        if current["test"] is not None:
            hits[name].add(current["test"])

    class Coverage:
        def pytest_runtest_setup(self, item):
            current["test"] = item.nodeid if item.nodeid not in old else None

        def pytest_runtest_teardown(self, item):
            current["test"] = None

        def pytest_runtest_logreport(self, report):
            if report.failed:
                failing.add(report.nodeid)

    trampoline.record_trampoline_hit = record
    os.environ["MUTANT_UNDER_TEST"] = "stats"
    code = pytest.main(["-q", "-p", "no:cacheprovider", *test_files],
                       plugins=[Coverage()])
    if code not in (0, 1, 5):
        raise SystemExit(f"pytest could not run the tests (exit {code})")
    # a test that fails on the unmutated module of the full run (it checks a later fix) kills
    # nothing here
    for name in sorted(failing):
        print(f"not used (fails on the unmutated module of the full run): {name}")
    hits = {k: v - failing for k, v in hits.items()}
    results = {}
    for name in survivors:
        tests = sorted(hits.get(mangled_name_from_mutant_name(name), ()))
        if not tests:
            results[name] = 0
            continue
        os.environ["MUTANT_UNDER_TEST"] = name
        results[name] = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", *tests]))
    os.environ["MUTANT_UNDER_TEST"] = ""
    Path(out).write_text(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1:])
