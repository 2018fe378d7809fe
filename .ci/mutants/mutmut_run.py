"""mutmut 3.8 over the Python layer, one module at a time, each scoped to its own test files.

For each module named in python_modules.toml (or on the command line) a private folder
``<workdir>/<module>`` gets the committed package (``latentbridge/``, with the in-tree compiled
extension copied in: read, never written), the committed ``tests/`` and the pytest settings, plus a
``[tool.mutmut]`` section that mutates only that module and selects only its tests. mutmut runs
there (``mutants/`` is its own), so the shared working tree is never touched. Scores come from
mutmut's result files; mutants listed in equivalent.toml or equivalent/<module>.toml
(``mutmut = "<mutant name>"``) are left
out of the score (``mutmut = [names]``, each prefixed by the entry's ``prefix``). mutmut numbers
its mutants per function, so these names hold for the module version they were written against.

Usage: python .ci/mutants/mutmut_run.py [MODULE ...] [--workdir DIR] [--max-children N]
       [--recheck [--recheck-seconds S]]
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

import tomllib

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# mutmut's exit-code convention (mutmut/stats.py): 1 and 3 kill, 0 survives
KILLED, SURVIVED = {1, 3}, {0}
TIMEOUT = {36, 24, -24, 152, 255}


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
              "use_git_change_detection = false", ""]
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


def equivalent_names():
    """The mutmut names explained as equivalent: equivalent.toml and one file per module in
    equivalent/ (``equivalent/similarity.toml``), each a list of ``[[equivalent]]`` entries."""
    names = set()
    for path in [HERE / "equivalent.toml", *sorted((HERE / "equivalent").glob("*.toml"))]:
        with open(path, "rb") as f:
            for e in tomllib.load(f).get("equivalent", []):
                listed = e.get("mutmut", [])
                prefix = e.get("prefix", "")
                names.update(prefix + n for n in ([listed] if isinstance(listed, str) else listed))
    return names


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
    args = ap.parse_args(argv)
    with open(HERE / "python_modules.toml", "rb") as f:
        scope = tomllib.load(f)["modules"]
    equivalent = equivalent_names()
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
    mutmut = [args.python, "-c", "import sys; from mutmut.__main__ import cli; sys.exit(cli())"]
    any_survivor = False
    rows = []
    for module in modules:
        folder = Path(args.workdir).resolve() / folder_name(module)
        tests = scope[split_module(module)[0]]
        if args.recheck:
            if args.recheck_seconds is not None:
                env["MUTMUT_RECHECK_SECONDS"] = str(args.recheck_seconds)
            ok = recheck(folder, tests, equivalent, args.python, env)
            codes = results(folder) if ok else {}
        else:
            prepare(folder, module, tests)
            r = subprocess.run([*mutmut, "run", "--max-children", str(args.max_children)],
                               cwd=folder, env=env, capture_output=True, text=True)
            (folder / "mutmut-run.log").write_text(r.stdout + r.stderr)
            codes = results(folder)
            ok = r.returncode == 0 or bool(codes)
        if not ok:
            print(f"{module}: mutmut failed (see {folder}/mutmut-run.log or mutmut-recheck.log)")
            any_survivor = True
            continue
        counted = {k: c for k, c in codes.items() if k not in equivalent}
        killed = sum(c in KILLED for c in counted.values())
        survived = sorted(k for k, c in counted.items() if c in SURVIVED)
        timeouts = sum(c in TIMEOUT for c in counted.values())
        other = Counter(c for c in counted.values() if c not in KILLED | SURVIVED | TIMEOUT)
        total = killed + len(survived) + timeouts        # a timeout counts as caught
        score = 100.0 * (killed + timeouts) / total if total else float("nan")
        rows.append((module, killed + timeouts, total, score))
        print(f"{module}: {killed} killed, {timeouts} timeout, {len(survived)} survived, "
              f"{len(codes) - len(counted)} equivalent, other {dict(other)} -> {score:.1f} %",
              flush=True)
        for name in survived:
            print(f"    survived: {name}")
        any_survivor |= bool(survived)
    print("\nmutmut score per module (killed / non-equivalent mutants):")
    for module, k, n, score in rows:
        print(f"  {module:14s} {k}/{n} = {score:.1f} %")
    return 1 if any_survivor else 0


if __name__ == "__main__":
    sys.exit(main())
