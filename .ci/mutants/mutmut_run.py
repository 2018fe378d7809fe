"""mutmut 3.8 over the Python layer, one module at a time, each scoped to its own test files.

For each module named in python_modules.toml (or on the command line) a private folder
``<workdir>/<module>`` gets the committed package (``latentbridge/``, with the in-tree compiled
extension copied in: read, never written), the committed ``tests/`` and the pytest settings, plus a
``[tool.mutmut]`` section that mutates only that module and selects only its tests. mutmut runs
there (``mutants/`` is its own), so the shared working tree is never touched. Scores come from
mutmut's result files.

Equivalent mutants are explained in equivalent.toml and equivalent/<module>.toml (``mutmut`` names,
each prefixed by the entry's ``prefix``) and found again by their fingerprints
(equivalent/fingerprints.json, mutmut_equivalents.py: the change a mutant makes, which survives
mutmut's renumbering). A run enters the fingerprinted ones as survivors without running them, and
leaves every explained one out of the score; ``--rerun-equivalents`` runs only the explained ones
(no score) and reports any that a test kills. ``--record-equivalents`` fingerprints the listed names
that have no fingerprint yet (named at the committed code), after checking that each survives (by
the last run's result where its function is unchanged, else by running it).

Usage: python .ci/mutants/mutmut_run.py [MODULE ...] [--workdir DIR] [--max-children N]
       [--rerun-equivalents | --record-equivalents | --recheck [--recheck-seconds S]]
A MODULE of the form ``package/file`` (``diffusion/maps``) mutates only that file of a package
listed in python_modules.toml (``latentbridge/diffusion/maps.py``), with the package's tests and
equivalents, in its own folder ``<workdir>/package-file`` (``diffusion-maps``); ``--recheck``
takes the same form.
Prints per module: killed / (killed + survived), the timeouts and the surviving mutant names
(``mutmut show NAME`` in ``<workdir>/<module>`` prints one). Exit status 1 when a mutant survived.

``--recheck`` does not run mutmut again: it keeps the folder of the last full run, copies the
committed tests into it and re-tests only that run's survivors against the tests added since
(mutmut_recheck.py; a survivor passed every older test already), then prints the same lines for
the combined result (the mutants are those of the module as it was at the full run).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import mutmut_equivalents as equivalents
import tomllib

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# mutmut's exit-code convention (mutmut/stats.py): 1 and 3 kill, 0 survives
KILLED, SURVIVED = {1, 3}, {0}
TIMEOUT = {36, 24, -24, 152, 255}
# mutmut stops a mutant after 2 * TIMEOUT_MULTIPLIER * (its tests' time + 1 s) CPU seconds (its
# default multiplier, 15, let each of rtd_lite's 30 looping mutants run about 19 s)
TIMEOUT_MULTIPLIER = 4


def split_module(module):
    """(package or module named in python_modules.toml, file of it or None): ``diffusion/maps``
    is the file maps.py of the package ``diffusion``; ``similarity`` is a module of its own."""
    package, _, file = module.partition("/")
    return package, (file.removesuffix(".py") or None)


def folder_name(module):
    """The work folder of a module: ``diffusion/maps`` works in ``diffusion-maps``."""
    return module.replace("/", "-")


def mutate_pattern(module):
    """mutmut's glob for a module (``similarity``: one file), a package (``measures``: its files)
    or one file of a package (``diffusion/maps``: that file alone)."""
    package, file = split_module(module)
    if file is not None:
        return f"latentbridge/{package}/{file}.py"
    if (REPO / "python" / "latentbridge" / module).is_dir():
        return f"latentbridge/{module}/*"
    return f"latentbridge/{module}.py"


def prepare(folder, module, tests):
    """The committed package and tests (git archive HEAD: a consistent state even while others
    edit the working tree) plus the in-tree compiled extension, laid out for mutmut."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD", "python/latentbridge", "tests"], cwd=REPO,
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "python" / "latentbridge").rename(folder / "latentbridge")
    (folder / "python").rmdir()
    for so in (REPO / "python" / "latentbridge").glob("_core*.so"):
        shutil.copy2(so, folder / "latentbridge" / so.name)
    with open(REPO / "pyproject.toml", "rb") as f:
        pytest_opts = tomllib.load(f)["tool"]["pytest"]["ini_options"]
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in pytest_opts.items()]
    lines += ["", "[tool.mutmut]",
              'source_paths = ["latentbridge"]',
              f'only_mutate = ["{mutate_pattern(module)}"]',
              f"pytest_add_cli_args_test_selection = {json.dumps(tests)}",
              'pytest_add_cli_args = ["-p", "no:cacheprovider"]',
              "use_git_change_detection = false",
              f"timeout_multiplier = {TIMEOUT_MULTIPLIER}", ""]
    (folder / "pyproject.toml").write_text("\n".join(lines))


def results(folder):
    """{mutant name: exit code} from mutmut's per-file .meta files, updated by a --recheck."""
    out = {}
    for meta in (folder / "mutants").rglob("*.meta"):
        data = json.loads(meta.read_text())
        out.update(data.get("exit_code_by_key", {}))
    rechecked = folder / "recheck.json"
    if rechecked.exists():
        out.update({k: (1 if c else 0) for k, c in json.loads(rechecked.read_text()).items()})
    return out


def recheck(folder, tests, equivalent, python, env):
    """Re-test the survivors of the full run in ``folder`` against the committed tests."""
    if not (folder / "mutants" / "mutmut-stats.json").exists():
        raise SystemExit(f"{folder}: no finished mutmut run to recheck; run without --recheck")
    archive = subprocess.run(["git", "archive", "HEAD", "tests"], cwd=REPO, check=True,
                             capture_output=True).stdout
    for target in (folder, folder / "mutants"):
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    survivors = sorted(k for k, c in results(folder).items() if c in SURVIVED and k not in equivalent)
    out = folder / "recheck.json"
    r = subprocess.run([python, str(HERE / "mutmut_recheck.py"), str(out.with_suffix(".tmp")),
                        *tests, "--", *survivors], cwd=folder / "mutants", env=env,
                       capture_output=True, text=True)
    (folder / "mutmut-recheck.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0 or not out.with_suffix(".tmp").exists():
        return False
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged.update(json.loads(out.with_suffix(".tmp").read_text()))
    print(f"{folder.name}: rechecked {len(json.loads(out.with_suffix('.tmp').read_text()))} of "
          f"{len(survivors)} survivors (see {folder / 'mutmut-recheck.log'})")
    out.write_text(json.dumps(merged))
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("modules", nargs="*")
    ap.add_argument("--workdir", default=str(REPO / "build-mutation" / "mutmut"))
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--recheck", action="store_true",
                    help="re-test the last full run's survivors against the tests added since")
    ap.add_argument("--recheck-seconds", type=float, default=None,
                    help="with --recheck: stop starting survivors after this many seconds")
    ap.add_argument("--rerun-equivalents", action="store_true",
                    help="run only the explained equivalents; report any that a test kills")
    ap.add_argument("--record-equivalents", action="store_true",
                    help="fingerprint the listed names without a fingerprint (each checked to survive)")
    args = ap.parse_args(argv)
    with open(HERE / "python_modules.toml", "rb") as f:
        scope = tomllib.load(f)["modules"]
    listed = equivalents.listed_names()
    recorded = equivalents.load_recorded()
    modules = args.modules or list(scope)
    unknown = [m for m in modules if split_module(m)[0] not in scope]
    if unknown:
        raise SystemExit(f"unknown module(s) {unknown}; add them to python_modules.toml")
    missing = [m for m in modules if split_module(m)[1] is not None
               and not (REPO / "python" / mutate_pattern(m)).is_file()]
    if missing:
        raise SystemExit(f"no such file for {missing}: use package/file, e.g. diffusion/maps")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    run = [args.python, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())",
           "run", "--max-children", str(args.max_children)]
    any_survivor = False
    rows = []
    for module in modules:
        folder = Path(args.workdir).resolve() / folder_name(module)
        tests = scope[split_module(module)[0]]
        if args.record_equivalents:
            any_survivor |= not record(folder, module, tests, listed, recorded, run, args, env)
            continue
        if args.recheck:
            if args.recheck_seconds is not None:
                env["MUTMUT_RECHECK_SECONDS"] = str(args.recheck_seconds)
            carried, by_name, stale = equivalents.resolve(equivalents.fingerprints(folder),
                                                          listed, recorded)
            ok = recheck(folder, tests, carried | by_name, args.python, env)
            codes = results(folder) if ok else {}
        else:
            prepare(folder, module, tests)
            equivalents.generate(folder, args.python, args.max_children)
            carried, by_name, stale = equivalents.resolve(equivalents.fingerprints(folder),
                                                          listed, recorded)
            if args.rerun_equivalents:      # those alone, each named
                names = sorted(carried | by_name)
            else:
                equivalents.mark_survived(folder, carried)
                names = []
            r = subprocess.run([*run, *names], cwd=folder, env=env, capture_output=True, text=True)
            (folder / "mutmut-run.log").write_text(r.stdout + r.stderr)
            codes = results(folder)
            ok = r.returncode == 0 or bool(codes)
        if not ok:
            print(f"{module}: mutmut failed (see {folder}/mutmut-run.log or mutmut-recheck.log)")
            any_survivor = True
            continue
        explained = carried | by_name
        wrongly = sorted(k for k in explained if codes.get(k) not in SURVIVED | TIMEOUT | {None})
        if args.rerun_equivalents:
            print(f"{module}: {len(explained)} explained equivalents run, {len(wrongly)} of them "
                  "killed", flush=True)
            for name in wrongly:
                print(f"    explained as equivalent but killed (exit {codes[name]}): {name}")
            any_survivor |= bool(wrongly)
            continue
        counted = {k: c for k, c in codes.items() if k not in explained}
        killed = sum(c in KILLED for c in counted.values())
        survived = sorted(k for k, c in counted.items() if c in SURVIVED)
        timeouts = sum(c in TIMEOUT for c in counted.values())
        other = Counter(c for c in counted.values() if c not in KILLED | SURVIVED | TIMEOUT)
        total = killed + len(survived) + timeouts        # a timeout counts as caught
        score = 100.0 * (killed + timeouts) / total if total else float("nan")
        rows.append((module, killed + timeouts, total, score))
        not_run = 0 if args.recheck else len(carried)
        print(f"{module}: {killed} killed, {timeouts} timeout, {len(survived)} survived, "
              f"{len(explained)} equivalent ({not_run} carried by fingerprint, not run), "
              f"other {dict(other)} -> {score:.1f} %", flush=True)
        for name in survived:
            print(f"    survived: {name}")
        for name in sorted(stale):
            print(f"    stale equivalent entry (its mutation is gone; explain a survivor anew): {name}")
        for name in wrongly:
            print(f"    explained as equivalent but killed (exit {codes[name]}): {name}")
        any_survivor |= bool(survived) or bool(wrongly)
    if args.record_equivalents:
        kept = {n: fp for n, fp in recorded.items() if n in listed}     # entries removed: dropped
        equivalents.save_recorded(kept)
        print(f"fingerprints of {len(kept)} equivalent mutants in {equivalents.FINGERPRINTS}")
        return 1 if any_survivor else 0
    if rows:
        print("\nmutmut score per module (killed / non-equivalent mutants):")
    for module, k, n, score in rows:
        print(f"  {module:14s} {k}/{n} = {score:.1f} %")
    return 1 if any_survivor else 0


def record(folder, module, tests, listed, recorded, run, args, env):
    """Fingerprint the listed equivalents of ``module`` that have no fingerprint yet.

    Such a name is the mutant's name at the committed code. It must survive, or time out (an
    equivalent that is only slower): the result of the last run in ``folder`` stands for a mutant
    whose function mutmut hashes the same now, every other one is run. A name with a fingerprint
    keeps it (its number may be another mutant's now); one whose fingerprint no longer matches a
    mutant is reported as stale, for its entry to be rewritten. Updates ``recorded`` in place;
    True when no listed name was killed or stale.
    """
    old_codes = results(folder) if (folder / "mutants").exists() else {}
    old_hashes = function_hashes(folder) if old_codes else {}
    prepare(folder, module, tests)
    equivalents.generate(folder, args.python, args.max_children)
    current = equivalents.fingerprints(folder)
    hashes = function_hashes(folder)
    _, mine, stale = equivalents.resolve(current, listed, recorded)
    mine = sorted(mine)
    func = {n: n.partition("__mutmut_")[0] for n in mine}
    fine = SURVIVED | TIMEOUT
    known = {n for n in mine if old_codes.get(n) in fine and func[n] in hashes
             and old_hashes.get(func[n]) == hashes[func[n]]}
    to_run = [n for n in mine if n not in known]
    if to_run:
        r = subprocess.run([*run, *to_run], cwd=folder, env=env, capture_output=True, text=True)
        (folder / "mutmut-run.log").write_text(r.stdout + r.stderr)
    codes = results(folder)
    killed = [n for n in to_run if codes.get(n) not in fine]
    for n in mine:
        if n not in killed:
            recorded[n] = current[n]
    print(f"{module}: {len(mine) - len(killed)} new equivalents fingerprinted ({len(known)} by the "
          f"last run's result, {len(to_run) - len(killed)} run now)", flush=True)
    for n in killed:
        print(f"    listed as equivalent but killed (exit {codes.get(n)}): {n}")
    for n in sorted(stale):
        print(f"    stale: the mutation of {n} is gone; rewrite or remove its entry")
    return not killed and not stale


def function_hashes(folder):
    """{dotted function name: mutmut's hash of its source} from the result files in folder."""
    out = {}
    for dotted, source in equivalents.mutated_files(folder).items():
        data = json.loads(source.with_name(source.name + ".meta").read_text())
        out.update({f"{dotted}.{f}": h for f, h in data.get("hash_by_function_name", {}).items()})
    return out


if __name__ == "__main__":
    sys.exit(main())
