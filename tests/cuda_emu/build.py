"""Build (and optionally run) the CPU emulation test of the CUDA kernels.

    python tests/cuda_emu/build.py [--out DIR] [--cuda-src DIR] [--jobs N] [--run [GROUP ...]]

Transforms the CUDA sources (cuda/src/{knn,rerank,graph,eigsh,distance,stats}.cu, or the same files in
--cuda-src DIR, e.g. a mutated copy) with transform.py, compiles them with the host C++ compiler
against the stand-in CUDA headers in include/, together with the CPU implementations they are
compared with (cpp/src, the generic gemm kernel as CMake compiles it) and the driver emu_test.cpp,
and links DIR/emu_test. Used by tests/test_cuda_emulated.py; runnable by hand for debugging.
Environment: CXX (compiler), EIGEN3_INCLUDE_DIR (when cmeel-eigen is not installed).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

# The CUDA files under test and the core sources their CPU counterparts (and host code) need.
CUDA_FILES = ["knn.cu", "rerank.cu", "graph.cu", "eigsh.cu", "distance.cu", "stats.cu"]
CORE_FILES = ["eigsh.cpp", "diffusion.cpp", "knn.cpp", "distance.cpp", "stats.cpp", "gemm.cpp"]


def _load_transform():
    spec = importlib.util.spec_from_file_location("latentbridge_cuda_emu_transform", HERE / "transform.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


transform = _load_transform()


class BuildError(Exception):
    """A step of the build failed; the message carries the command and its output."""


def find_compiler() -> str | None:
    """The host C++ compiler command: $CXX (may hold several words), else c++, g++ or clang++ on PATH
    (None when there is none)."""
    env = os.environ.get("CXX")
    if env:
        words = shlex.split(env)  # e.g. "ccache g++"
        if words and shutil.which(words[0]):
            return env
    for name in ("c++", "g++", "clang++"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def find_eigen() -> Path | None:
    """Eigen's include directory: cmeel.prefix/include/eigen3 of the cmeel-eigen wheel on sys.path,
    else $EIGEN3_INCLUDE_DIR (None when neither holds Eigen/Dense)."""
    candidates = [Path(p) / "cmeel.prefix" / "include" / "eigen3" for p in sys.path if p]
    if os.environ.get("EIGEN3_INCLUDE_DIR"):
        candidates.append(Path(os.environ["EIGEN3_INCLUDE_DIR"]))
    for c in candidates:
        if (c / "Eigen" / "Dense").is_file():
            return c
    return None


def _up_to_date(obj: Path, cmd: list[str]) -> bool:
    """Whether obj was built by cmd and is newer than every file of its dependency list (-MMD)."""
    dep, stamp = obj.with_suffix(".d"), obj.with_suffix(".cmd")
    try:
        if stamp.read_text() != "\0".join(cmd) or not dep.is_file():
            return False
        t = obj.stat().st_mtime
        files = dep.read_text().replace("\\\n", " ").split(":", 1)[1].split()
        return all(Path(f).stat().st_mtime <= t for f in files)
    except (OSError, IndexError):
        return False


def _compile(obj: Path, cmd: list[str], cwd: Path) -> bool:
    """Compile unless up to date; returns whether it compiled."""
    if _up_to_date(obj, cmd):
        return False
    _run(cmd + ["-MMD", "-MF", str(obj.with_suffix(".d"))], cwd)
    obj.with_suffix(".cmd").write_text("\0".join(cmd))
    return True


def _run(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise BuildError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}")
    return time.perf_counter() - t0


def build(out: Path, cuda_src: Path | None = None, jobs: int | None = None, cxx: str | None = None,
          eigen: Path | None = None, log=print) -> Path:
    """Build out/emu_test; returns its path. Raises BuildError (with the compiler output)."""
    cxx = cxx or find_compiler()
    if not cxx:
        raise BuildError("no C++ compiler found (set CXX)")
    eigen = eigen or find_eigen()
    if not eigen:
        raise BuildError("Eigen not found (pip install cmeel-eigen, or set EIGEN3_INCLUDE_DIR)")
    cuda_src = Path(cuda_src) if cuda_src else ROOT / "cuda" / "src"
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = jobs or max(1, min(8, os.cpu_count() or 1))

    # 1. Transform the CUDA sources (loud failure on anything not handled). check.cuh and the other
    # headers next to the .cu files are found through -I cuda_src.
    emu_sources = []
    for name in CUDA_FILES:
        src = cuda_src / name
        try:
            text, launches = transform.transform(src.read_text(encoding="utf-8"), str(src))
        except transform.TransformError as e:
            raise BuildError(f"transform.py: {e}") from e
        if launches == 0:
            raise BuildError(f"transform.py: {src}: no kernel launch found")
        dst = out / (name[:-3] + ".emu.cpp")
        if not dst.is_file() or dst.read_text(encoding="utf-8") != text:  # keep the mtime otherwise
            dst.write_text(text, encoding="utf-8")
        emu_sources.append(dst)
        log(f"transformed {src} ({launches} launches)")

    base = shlex.split(cxx) + ["-std=c++17", "-pthread", "-ffp-contract=off", "-DEIGEN_MPL2_ONLY",
            f"-I{ROOT / 'cpp' / 'include'}", f"-I{eigen}"]
    emu_inc = [f"-I{HERE / 'include'}", f"-I{ROOT / 'cuda' / 'include'}", f"-I{cuda_src}"]
    units = []  # (object, command), longest first so that two cores finish together
    for name in CORE_FILES:
        obj = out / ("core_" + name[:-4] + ".o")
        units.append((obj, base + ["-O1", "-c", str(ROOT / "cpp" / "src" / name), "-o", str(obj)]))
    obj = out / "core_gemm_kernels_generic.o"  # as CMake's lb_add_isa(generic ""): no dispatch
    units.append((obj, base + ["-O1", "-fno-math-errno", "-DLATENTBRIDGE_ISA=generic", "-c",
                               str(ROOT / "cpp" / "src" / "gemm_kernels.cpp"), "-o", str(obj)]))
    for src in emu_sources:  # the emulated kernels run millions of fibers: optimise
        obj = src.with_suffix(".o")
        units.append((obj, base + emu_inc + ["-O2", "-w", "-c", str(src), "-o", str(obj)]))
    for name in ("emu_rt.cpp", "emu_test.cpp"):
        obj = out / (name[:-4] + ".o")
        extra = ["-DEMU_USE_UCONTEXT"] if os.environ.get("EMU_USE_UCONTEXT") else []
        units.append((obj, base + emu_inc + extra + ["-O2", "-Wall", "-Wextra", "-c", str(HERE / name), "-o", str(obj)]))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_compile, obj, cmd, out) for obj, cmd in units]
        errors, compiled = [], 0
        for f in futures:
            try:
                compiled += f.result()
            except BuildError as e:
                errors.append(str(e))
    if errors:
        raise BuildError("\n\n".join(errors))
    exe = out / "emu_test"
    _run(base + [str(o) for o, _ in units] + ["-o", str(exe)], out)
    log(f"built {exe} with {cxx} ({platform.machine()}, {compiled} of {len(units)} units compiled, {jobs} jobs) in "
        f"{time.perf_counter() - t0:.1f}s")
    return exe


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build-emu", help="build directory (default: build-emu)")
    ap.add_argument("--cuda-src", type=Path, default=None, help="directory holding the .cu files to test")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--run", nargs="*", metavar="GROUP", help="run the driver (optionally only these groups)")
    args = ap.parse_args(argv)
    try:
        exe = build(args.out, args.cuda_src, args.jobs)
    except BuildError as e:
        print(e, file=sys.stderr)
        return 1
    if args.run is not None:
        return subprocess.run([str(exe), *args.run]).returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
