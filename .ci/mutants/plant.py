"""Plant hand-written mutants (C++ or Python) one at a time and run the tests that must catch them.

Nothing in the repository's working tree is touched: the committed tree (``git archive HEAD``, or
the working tree with ``--worktree``) is synced into ``<workdir>/src``, where a file keeps its mtime
while its bytes are unchanged; C++ is built there with CMake into ``<workdir>/build`` (CUDA off),
incrementally, and that build is kept between invocations, so a mutant recompiles only its own file
(and the next mutant the file restored before it: the mutants of one file run one after another).
The extension is copied into the copy's package, and the tests are run from the copy
(``PYTHONPATH`` points at it, never at the in-tree module). The unmutated tree's tests run once per
tree (a digest in ``<workdir>/unmutated-tests-passed.json``). Each mutant is planted, tested and
restored before the next one (the restore is in a ``finally`` block, and checked byte for byte).

Usage: python .ci/mutants/plant.py [--list planted.toml] [--only ID ...] [--workdir DIR]
                                  [--worktree] [--jobs N] [--timeout S]
Prints one line per mutant (killed / SURVIVED / equivalent / build-error) and the score per file;
exit status 1 when a non-equivalent mutant survived.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import tomllib

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CPP_SUFFIXES = (".cpp", ".hpp", ".h", ".cu", ".cuh")


def load(path, key):
    with open(path, "rb") as f:
        return tomllib.load(f).get(key, [])


def sync_tree(dst, worktree):
    """The sources to mutate, HEAD's (default) or the working tree's, in dst. A file whose bytes
    are already there is left alone, mtime included, so that the build in ``<workdir>/build`` from
    an earlier invocation stays valid and recompiles only what changed; a file that differs is
    written anew (a fresh mtime, so that ninja sees it)."""
    with tempfile.TemporaryDirectory() as tmp:
        new = Path(tmp)
        if worktree:
            files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                                   check=True, capture_output=True, text=True).stdout.split()
            for f in files:
                if (REPO / f).is_file():
                    (new / f).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(REPO / f, new / f)
        else:
            archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(new)], input=archive, check=True)
        wanted = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
        dst.mkdir(parents=True, exist_ok=True)
        for rel in wanted:
            target = dst / rel
            data = (new / rel).read_bytes()
            if not target.is_file() or target.read_bytes() != data:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
                shutil.copymode(new / rel, target)
        for p in sorted(dst.rglob("*"), reverse=True):      # files the tree no longer has
            rel = p.relative_to(dst)
            if p.is_file() and rel not in wanted and not is_build_output(rel):
                p.unlink()


def is_build_output(rel):
    """The compiled extension copied into the package: kept between invocations."""
    return rel.parent == Path("python/latentbridge") and rel.name.startswith("_core")


def tree_digest(src, python):
    """A digest of the tree (sources and the extension in its package) and the interpreter: the
    unmutated tree's tests are not run again when an earlier invocation passed them (or more) on
    the same digest."""
    h = hashlib.sha256(python.encode())
    for p in sorted(src.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def build(src, bld, jobs, python):
    """Configure once, then an incremental build; the extension is copied into the copy's package."""
    if not (bld / "build.ninja").exists():
        pybind = subprocess.run([python, "-m", "pybind11", "--cmakedir"], check=True,
                                capture_output=True, text=True).stdout.strip()
        subprocess.run([python, "-m", "cmake", "-S", str(src), "-B", str(bld), "-G", "Ninja",
                        f"-DPython_EXECUTABLE={python}", f"-Dpybind11_DIR={pybind}",
                        "-DLATENTBRIDGE_CUDA=OFF"], check=True, capture_output=True)
    r = subprocess.run([python, "-m", "cmake", "--build", str(bld), "-j", str(jobs)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return False, r.stdout[-2000:] + r.stderr[-2000:]
    pkg = src / "python" / "latentbridge"
    for so in bld.glob("_core*.so"):
        shutil.copy2(so, pkg / so.name)
    return True, ""


def run_tests(src, tests, timeout, python):
    env = dict(os.environ, PYTHONPATH=str(src / "python"), OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    cmd = [python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        r = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "killed", "timeout"
    if r.returncode == 0:
        return "SURVIVED", ""
    if r.returncode == 1:
        failed = [ln.split(" ")[1] for ln in r.stdout.splitlines() if ln.startswith("FAILED ")]
        return "killed", (f"by {failed[0]}" if failed else "")
    return "error", r.stdout[-1500:] + r.stderr[-1500:]   # collection/usage error: not a kill


def plant(src, m):
    path = src / m["file"]
    original = path.read_bytes()
    text = original.decode()
    count = text.count(m["find"])
    if count != 1:
        raise SystemExit(f"mutant {m['id']}: `find` occurs {count} times in {m['file']} (need 1)")
    path.write_text(text.replace(m["find"], m["replace"]))
    return path, original


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--list", default=str(HERE / "planted.toml"))
    ap.add_argument("--equivalent", default=str(HERE / "equivalent.toml"))
    ap.add_argument("--only", nargs="*", help="mutant ids to run (default: all)")
    ap.add_argument("--kind", choices=("all", "cpp", "python"), default="all")
    ap.add_argument("--workdir", default=str(REPO / "build-mutation"))
    ap.add_argument("--worktree", action="store_true",
                    help="mutate the working tree's files instead of HEAD's")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="compiler processes (default: one per core)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per test run")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args(argv)

    mutants = load(args.list, "mutant") + load(args.equivalent, "equivalent")
    equivalent = {e["id"]: e for e in load(args.equivalent, "equivalent")}
    if args.only:
        mutants = [m for m in mutants if m["id"] in set(args.only)]
    if args.kind != "all":
        want_cpp = args.kind == "cpp"
        mutants = [m for m in mutants if m["file"].endswith(CPP_SUFFIXES) == want_cpp]
    if not mutants:
        raise SystemExit("no mutant selected")
    first_seen = {}
    for m in mutants:
        first_seen.setdefault(m["file"], len(first_seen))
    # one file's mutants one after another: a restored file is recompiled with the next mutant
    mutants.sort(key=lambda m: first_seen[m["file"]])

    work = Path(args.workdir).resolve()
    if work == REPO / "build-dev" or work == REPO:
        raise SystemExit("the mutation workdir must be its own folder (not build-dev/ or the repo)")
    src, bld = work / "src", work / "build"
    sync_tree(src, args.worktree)
    any_cpp = any(m["file"].endswith(CPP_SUFFIXES) for m in mutants)
    if any_cpp or (bld / "build.ninja").exists():
        ok, log = build(src, bld, args.jobs, args.python)
        if not ok:
            raise SystemExit(f"the unmutated tree does not build:\n{log}")
    else:   # Python mutants only: the in-tree extension (read, never written) serves
        for so in (REPO / "python" / "latentbridge").glob("_core*.so"):
            shutil.copy2(so, src / "python" / "latentbridge" / so.name)
    all_tests = sorted({t for m in mutants for t in m.get("tests", [])})
    stamp, digest = work / "unmutated-tests-passed.json", tree_digest(src, args.python)
    passed = json.loads(stamp.read_text()) if stamp.exists() else {}
    if not (passed.get("tree") == digest and set(all_tests) <= set(passed.get("tests", []))):
        status, _ = run_tests(src, all_tests, args.timeout, args.python)
        if status != "SURVIVED":
            raise SystemExit("the tests fail (or error) on the unmutated tree: fix that first")
        stamp.write_text(json.dumps({"tree": digest, "tests": all_tests}))

    per_file = defaultdict(lambda: [0, 0])     # file -> [killed, non-equivalent total]
    survivors = []
    for m in mutants:
        t0 = time.time()
        is_cpp = m["file"].endswith(CPP_SUFFIXES)
        path, original = plant(src, m)
        try:
            built, log = build(src, bld, args.jobs, args.python) if is_cpp else (True, "")
            if not built:
                result, detail = "build-error", log.strip().splitlines()[-1:] or [""]
            else:
                result, detail = run_tests(src, m.get("tests") or ["tests"], args.timeout,
                                           args.python)
        finally:
            path.write_bytes(original)
        assert path.read_bytes() == original
        if m["id"] in equivalent:
            label = "equivalent" if result == "SURVIVED" else f"equivalent-but-{result}"
        else:
            label = result
            if result in ("killed", "SURVIVED"):
                per_file[m["file"]][1] += 1
                per_file[m["file"]][0] += result == "killed"
            if result == "SURVIVED":
                survivors.append(m["id"])
        print(f"{label:12s} {m['id']:45s} {m['file']}  ({time.time() - t0:.0f} s)", flush=True)
        if detail:
            print(f"    {detail if isinstance(detail, str) else detail[0]}", flush=True)
    if any_cpp:
        build(src, bld, args.jobs, args.python)       # leave the build matching the sources
    print("\nscore per file (killed / non-equivalent mutants):")
    for f, (k, n) in sorted(per_file.items()):
        print(f"  {f:45s} {k}/{n} = {100.0 * k / n:.0f} %")
    killed, total = sum(v[0] for v in per_file.values()), sum(v[1] for v in per_file.values())
    if total:
        print(f"  {'all planted':45s} {killed}/{total} = {100.0 * killed / total:.0f} %")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
