"""The CUDA kernels (cuda/src/*.cu) run on a CPU emulation of CUDA and are compared with the CPU code.

CI and most development machines have nvcc but no GPU, so the ``gpu`` tests skip there and the
device code would otherwise only ever be compiled. This test builds it for the host instead:

* tests/cuda_emu/transform.py rewrites each .cu file: ``kernel<<<grid, block, smem, stream>>>(args)``
  becomes ``emu::launch(grid, block, smem, kernel, args)`` and ``__shared__`` arrays become
  function-local statics (refilled with 0xFF at every block). It fails, rather than skips, on any
  launch or construct it does not handle (every ``<<<`` of the code must be rewritten).
* tests/cuda_emu/include holds stand-ins for ``cuda_runtime.h``, ``cub/cub.cuh`` and
  ``math_constants.h``, and tests/cuda_emu/emu_rt.cpp the runtime: the blocks of a launch run one
  after another; each CUDA thread of a block is a fiber with its own stack; ``__syncthreads`` and
  ``__syncthreads_or`` are real barriers over the block, ``__shfl_*_sync`` and ``__ballot_sync``
  real barriers over the 32 lanes of a warp; a barrier that not every thread reaches aborts as a
  deadlock. Runnable threads are resumed in forward, reverse or pseudo-random order (varied per
  case). ``cudaMalloc`` hands out host memory filled with 0xFF (NaN / -1) with a guard zone checked
  by ``cudaFree``; ``cudaMemcpy`` checks that its device side lies in a live allocation; leaks are
  counted. CUB's radix sort and reduce-by-key are simple host algorithms with CUB's contracts.
* tests/cuda_emu/emu_test.cpp calls the CPU function and the emulated CUDA function on the same
  inputs: ``knn_sqeuclidean`` (self and query mode, d in {1, 3, 5, 20}, k in {1, 7, 40}, exact
  duplicates and ties, batched output; bitwise equal), ``mahalanobis_rerank`` (-1 candidates;
  bitwise), ``diffusion_graph`` (alpha 0 / 0.5 / 1: same pattern, values within 1e-12, T exactly
  symmetric), ``pairwise_distances`` (float and double, conftest's tolerance), ``cross_accumulate``
  and ``eigsh_largest`` (a diffusion kernel with n = 2000, nev 8, deflation, plain and
  Chebyshev-filtered Lanczos: eigenvalues within 1e-9, orthonormal vectors, residuals < 1e-8), and
  the same error messages on bad input.

What this proves: the index arithmetic of every kernel (grid-stride loops, tiles, batches, partial
blocks and warps), that barriers sit where every thread reaches them and suffice under a
sequential-block schedule with varied thread orders, the block and warp reductions, the host logic
around the kernels (memory budget, batching, CUB calls, copies, RAII frees), and parity with the CPU
implementations. What it cannot prove: anything about true concurrency between blocks (blocks never
overlap here, so an inter-block race or a missing atomic across blocks is invisible), the GPU memory
model (no reordering, no stale caches, warps do not run in lockstep), nvcc's floating-point choices
(FMA contraction happens on the GPU but not here), resource limits beyond the launch checks
(registers, occupancy), and performance.

The build (about 20 s of compilation on 2 cores) is cached for the session. It needs a C++17
compiler and Eigen (cmeel-eigen, in the ``test`` extra) and skips without them.
LATENTBRIDGE_EMU_CUDA_SRC=DIR tests the .cu files of DIR instead of cuda/src (e.g. a mutated copy).
"""

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

EMU_DIR = Path(__file__).resolve().parent / "cuda_emu"
GROUPS = ["knn", "rerank", "graph", "distance", "stats", "eigsh"]


def _load(name):
    spec = importlib.util.spec_from_file_location(f"latentbridge_cuda_emu_{name}", EMU_DIR / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def emu_output(tmp_path_factory):
    """(exit status, output) of one run of the driver over every group, built once per session."""
    if os.name != "posix":
        pytest.skip("the CUDA emulation needs a POSIX system (fibers on mmap'ed stacks)")
    build = _load("build")
    if build.find_compiler() is None:
        pytest.skip("no C++ compiler found (c++, g++, clang++ or $CXX) to build the CUDA emulation")
    if build.find_eigen() is None:
        pytest.skip("Eigen not found: install cmeel-eigen (in the test extra) or set EIGEN3_INCLUDE_DIR")
    out = tmp_path_factory.mktemp("cuda_emu")
    cuda_src = os.environ.get("LATENTBRIDGE_EMU_CUDA_SRC") or None
    log = []
    try:
        exe = build.build(out, cuda_src=cuda_src, log=log.append)
    except build.BuildError as e:
        pytest.fail("building the CUDA emulation failed:\n" + "\n".join(log) + f"\n{e}", pytrace=False)
    try:
        proc = subprocess.run([str(exe)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=900)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the emulation driver ran longer than 900 s:\n{e.stdout or ''}", pytrace=False)
    return proc.returncode, "\n".join(log) + "\n" + proc.stdout


@pytest.mark.parametrize("group", GROUPS)
def test_cuda_kernels_match_cpu(emu_output, group):
    """Every case of the group ran, and the emulated CUDA function agreed with the CPU one."""
    status, output = emu_output
    lines = [line for line in output.splitlines() if line[:4] in ("ok  ", "FAIL") and line[5:].split()[:1] == [group]]
    failed = [line for line in lines if line.startswith("FAIL")]
    if failed or not lines:
        why = "\n".join(failed) if lines else f"no {group} case ran (the driver stopped early, exit status {status})"
        pytest.fail(f"emulated CUDA vs CPU, {group}:\n{why}\n\nfull output:\n{output}", pytrace=False)


def test_cuda_emulation_driver_passes(emu_output):
    """Exit status 0: no case failed, no deadlock or crash, every kernel launch site of the .cu files ran."""
    status, output = emu_output
    print(output)
    last = output.rstrip().splitlines()[-1] if output.strip() else ""
    if status != 0 or not last.startswith("PASS"):
        pytest.fail(f"the emulation driver failed (exit status {status}):\n{output}", pytrace=False)


def _body(text):
    """The rewritten file without the #line directive and the site registration appended at the end."""
    return text.split("\n", 1)[1].split("\nnamespace {\n[[maybe_unused]] const int emu_launch_sites_registered_")[0]


def test_transform_rewrites_every_launch():
    transform = _load("transform")
    src_dir = Path(os.environ.get("LATENTBRIDGE_EMU_CUDA_SRC") or EMU_DIR.parents[1] / "cuda" / "src")
    for name in ["knn.cu", "rerank.cu", "graph.cu", "eigsh.cu", "distance.cu", "stats.cu"]:
        src = (src_dir / name).read_text(encoding="utf-8")
        text, launches = transform.transform(src, name)
        assert launches > 0
        assert text.count("::emu::register_site(") == launches
        assert "<<<" not in text and "__shared__" not in text
        body = _body(text)
        assert body.count("\n") == src.count("\n")  # every line keeps its number
        for line_no, line in enumerate(body.splitlines(), 1):  # a launch stays on the line of its <<<
            if "::emu::launch(" in line:
                assert "<<<" in src.splitlines()[line_no - 1]


@pytest.mark.parametrize("snippet", [
    "void f() { k<<<4>>>(x); }",                       # one launch argument
    "void f() { k<<<1, 2, 3, 4, 5>>>(x); }",           # five
    "void f() { y = (k<<<1, 32>>>(x), 0); }",          # a launch inside an expression
    "void f() { (*p)<<<1, 32>>>(x); }",                # no kernel name
    "__global__ void g() { __shared__ double a[4], b[4]; }",  # two declarators
    "__global__ void g() { __syncwarp(); }",           # not emulated
    "__constant__ double c[4];",
])
def test_transform_fails_loudly(snippet):
    transform = _load("transform")
    with pytest.raises(transform.TransformError):
        transform.transform(snippet, "snippet.cu")


def test_transform_ignores_comments_and_strings():
    transform = _load("transform")
    src = ('// k<<<1, 32>>>(x);\nconst char* s = "<<<";\n/* __shared__ */\n'
           "void f() { ns::k<float><<<dim3(g, 2),\n 64, 0, st>>>(a,\n b); }\n")
    text, launches = transform.transform(src, "x.cu")
    assert launches == 1
    assert '::emu::launch("x.cu", 4, dim3(dim3(g, 2)), dim3(64), static_cast<std::size_t>(0), ns::k<float>, a,' in text
    assert "(void)st;" in text  # the stream is evaluated, then ignored
    assert '::emu::register_site("x.cu", 4, "ns::k<float>")' in text
    assert _body(text).count("\n") == src.count("\n")
