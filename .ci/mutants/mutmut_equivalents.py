"""Equivalent mutants known by what they change, not by mutmut's number.

mutmut 3.8 names a mutant ``<module>.<function>__mutmut_<n>``, numbering the mutants of a function in
the order it generates them, so an edit above a mutation renumbers it. The equivalence files
(equivalent.toml, equivalent/<module>.toml) name mutants at the version they were explained against;
``equivalent/fingerprints.json`` maps each such name to its *fingerprint*: the function's mangled
name plus the lines the mutation removes and adds (stripped of indentation), and an occurrence
count when one function holds the same change twice. A fingerprint finds its mutant again after
any edit that leaves the mutated line alone; an edit of that line drops it (the mutant is then run
and, if it survives, reported for a new explanation).

``mutmut_run.py`` uses this module to carry explained equivalents into a run without running them
(``--rerun-equivalents`` runs only them), and ``--record-equivalents`` to fingerprint the listed
names that have no fingerprint yet, after checking that each one survives.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import subprocess
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
FINGERPRINTS = HERE / "equivalent" / "fingerprints.json"
MUTANT_FUNCTION = re.compile(r"^(?P<func>.+)__mutmut_(?P<n>orig|\d+)$")

# mutmut's own steps before it runs any test (mutmut/__main__.py, _run), in a child process so that
# its global state stays out of the caller
GENERATE = """
import os, sys
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants,
                             set_mutant_under_test, setup_source_paths, store_lines_covered_by_tests)
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir(); copy_also_copy_files(); setup_source_paths(); store_lines_covered_by_tests()
create_mutants(int(sys.argv[1]))
"""


def listed_names():
    """The mutmut names the equivalence files explain: equivalent.toml and equivalent/*.toml, each
    a list of ``[[equivalent]]`` entries with ``mutmut`` (a name or a list) and an optional
    ``prefix``."""
    names = set()
    for path in [HERE / "equivalent.toml", *sorted((HERE / "equivalent").glob("*.toml"))]:
        with open(path, "rb") as f:
            for e in tomllib.load(f).get("equivalent", []):
                listed = e.get("mutmut", [])
                prefix = e.get("prefix", "")
                names.update(prefix + n for n in ([listed] if isinstance(listed, str) else listed))
    return names


def generate(folder, python, max_children):
    """Write mutmut's mutants and result files under ``folder/mutants`` without running a test."""
    subprocess.run([python, "-c", GENERATE, str(max_children)], cwd=folder, check=True,
                   capture_output=True, text=True)


def mutated_files(folder):
    """{dotted module prefix of the mutant names: path of the mutated source} under folder."""
    root = folder / "mutants"
    out = {}
    for meta in root.rglob("*.py.meta"):
        source = meta.with_suffix("")
        dotted = ".".join(source.relative_to(root).with_suffix("").parts)
        out[dotted.replace(".__init__", "")] = source
    return out


def _changed_lines(orig, mutant):
    diff = difflib.unified_diff(orig, mutant, n=0, lineterm="")
    return [line[0] + line[1:].strip() for line in diff
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def fingerprints_of_file(dotted, source):
    """{mutant name: fingerprint} for every mutant in one mutated source file."""
    text = source.read_text()
    lines = text.splitlines()
    bodies = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            m = MUTANT_FUNCTION.match(node.name)
            if m:
                body = "\n".join(lines[node.lineno - 1:node.end_lineno]).replace(node.name, m["func"])
                bodies.setdefault(m["func"], {})[m["n"]] = body.splitlines()
    out = {}
    for func, versions in bodies.items():
        orig = versions.pop("orig")
        seen = {}
        for n in sorted(versions, key=int):
            change = "\n".join(_changed_lines(orig, versions[n]))
            seen[change] = seen.get(change, 0) + 1
            out[f"{dotted}.{func}__mutmut_{n}"] = f"{func}\n{change}\n#{seen[change]}"
    return out


def fingerprints(folder):
    """{mutant name: fingerprint} for every mutant generated in ``folder``."""
    out = {}
    for dotted, source in mutated_files(folder).items():
        out.update(fingerprints_of_file(dotted, source))
    return out


def load_recorded():
    return json.loads(FINGERPRINTS.read_text()) if FINGERPRINTS.exists() else {}


def save_recorded(recorded):
    FINGERPRINTS.write_text(json.dumps(dict(sorted(recorded.items())), indent=1,
                                       ensure_ascii=False) + "\n")


def resolve(current, listed, recorded):
    """Which of the current mutants the equivalence files explain.

    current: {name: fingerprint} of this run's mutants; listed: the names in the equivalence files;
    recorded: {listed name: fingerprint} (fingerprints.json). Returns (carried, unrecorded, stale):
    the current names whose fingerprint is recorded for a listed name; the listed names present in
    this run without a recorded fingerprint (explained by name only, and run); the listed names whose
    recorded mutation no longer exists in this run's modules.
    """
    by_print = {fp: name for name, fp in current.items()}
    prefixes = {name.rpartition(".")[0] for name in current}
    carried, unrecorded, stale = set(), set(), set()
    for name in listed:
        fp = recorded.get(name)
        if fp is not None and fp in by_print:
            carried.add(by_print[fp])
        elif name.rpartition(".")[0] not in prefixes:
            continue                      # another module's entry
        elif fp is None:
            if name in current:
                unrecorded.add(name)
        else:
            stale.add(name)
    return carried, unrecorded, stale


def mark_survived(folder, names):
    """Enter ``names`` as surviving mutants in mutmut's result files, so that `mutmut run` (which
    keeps a recorded result of a mutant it is not asked for by name) does not run them."""
    files = mutated_files(folder)
    for dotted, source in files.items():
        meta = source.with_name(source.name + ".meta")
        data = json.loads(meta.read_text())
        codes = data["exit_code_by_key"]
        mine = [n for n in names if n in codes]
        if mine:
            codes.update(dict.fromkeys(mine, 0))
            meta.write_text(json.dumps(data))
