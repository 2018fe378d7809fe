"""Reliability of the C++ boundary: Ctrl-C interrupts long kernels, memory limits raise
MemoryError before allocating, calls from many threads equal serial calls, results are
reproducible bit for bit."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import latentbridge as lb
from latentbridge._validation import available_memory, check_allocation

PYTHON_DIR = str(Path(lb.__file__).resolve().parent.parent)


# ---- interruptibility ------------------------------------------------------------------------------

LONG_CALL = textwrap.dedent("""
    import sys, time
    import numpy as np
    import latentbridge as lb
    X = np.random.default_rng(0).standard_normal((6000, 4096))
    {warm}
    print("ready", flush=True)
    t0 = time.perf_counter()
    try:
        {call}
    except KeyboardInterrupt:
        print("interrupted after %.3f at %.6f" % (time.perf_counter() - t0, time.time()), flush=True)
        raise
    print("finished after %.3f" % (time.perf_counter() - t0), flush=True)
""")


def interrupt_after(code, wait=1.0):
    """Run code in a subprocess that prints "ready" before its long call, send SIGINT after
    `wait` seconds, and return (stdout, stderr, returncode, seconds from SIGINT to the
    KeyboardInterrupt in the child, by the wall clock both processes share; from SIGINT to the
    child's exit when it printed no time). Interpreter shutdown is not counted: with numpy, scipy
    and scikit-learn loaded it alone can take seconds on a loaded machine."""
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    # a shell without job control starts background jobs with SIGINT ignored, and Python then
    # installs no handler: give the child Python's own handler, whatever the parent inherited
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n" + code
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(wait)
        assert proc.poll() is None, "the call finished before the signal: make it longer"
        sent, t0 = time.time(), time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        elapsed = time.perf_counter() - t0
    finally:
        proc.kill()
    stamp = [line.rsplit(" at ", 1)[1] for line in out.splitlines() if line.startswith("interrupted after")]
    if stamp:
        elapsed = float(stamp[0]) - sent
    return out, err, proc.returncode, elapsed


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_ctrl_c_interrupts_pairwise_distances(n_jobs):
    """SIGINT during a ~10 s pairwise_distances call raises KeyboardInterrupt within a second."""
    code = LONG_CALL.format(warm="", call=f"lb.pairwise_distances(X, n_jobs={n_jobs})")
    out, err, returncode, elapsed = interrupt_after(code, wait=1.0)
    assert "interrupted after" in out, (out, err)
    assert "KeyboardInterrupt" in err
    assert returncode != 0
    assert elapsed < 2.0, f"took {elapsed:.2f} s to return after SIGINT"


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ctrl_c_interrupts_the_r_cross_cohomology(n_threads):
    """SIGINT during the R-Cross cohomology reduction (noise against a plane, n = 300: minutes with
    the engine forced) raises KeyboardInterrupt within a second, with two threads too, where the
    calling thread may be waiting for a helper inside one long column."""
    warm = ("from latentbridge import _core; from scipy.spatial.distance import cdist; "
            "rng = np.random.default_rng(0); P = rng.standard_normal((300, 32)); "
            "Q = rng.standard_normal((300, 2)) @ rng.standard_normal((2, 32)); "
            "r1 = cdist(P, P); r1 /= np.quantile(r1, 0.9); r2 = cdist(Q, Q); "
            "r2 /= np.quantile(r2, 0.9); w = r1.astype(np.float32); "
            "m = np.minimum(r1, r2).astype(np.float32)")
    call = f"_core.r_cross_barcode_h1(w, m, {n_threads}, 'cohomology')"
    out, err, returncode, elapsed = interrupt_after(LONG_CALL.format(warm=warm, call=call), wait=2.0)
    assert "interrupted after" in out, (out, err)
    assert "KeyboardInterrupt" in err and returncode != 0
    assert elapsed < 2.0, f"took {elapsed:.2f} s to return after SIGINT"


def test_ctrl_c_interrupts_native_statistics():
    """The streamed cross products (RidgeMap's native backend) stop on SIGINT as well."""
    call = ("from latentbridge._stats import CrossStats; "
            "[CrossStats(4096, 4096, backend='native').update(X, X) for _ in range(20)]")
    code = LONG_CALL.format(warm="", call=call)
    out, err, returncode, elapsed = interrupt_after(code, wait=1.0)
    assert "KeyboardInterrupt" in err and returncode != 0, (out, err)
    assert elapsed < 2.0


def test_worker_thread_calls_are_not_interrupted_by_polling():
    """The poll acts on the main thread only: a call from another thread completes normally."""
    X = np.random.default_rng(1).standard_normal((600, 64))
    with ThreadPoolExecutor(1) as ex:
        D = ex.submit(lb.pairwise_distances, X, n_jobs=2).result()
    np.testing.assert_array_equal(D, lb.pairwise_distances(X, n_jobs=2))


# ---- memory limits -----------------------------------------------------------------------------------

def test_check_allocation_env_limit(monkeypatch):
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "1M")
    assert available_memory() == 1 << 20
    assert check_allocation(1000, "small") == 1000
    with pytest.raises(MemoryError, match=r"big thing needs 2\.0 MiB \(2097152 bytes\).*1\.0 MiB"):
        check_allocation(2 << 20, "big thing")
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "lots")
    with pytest.raises(ValueError, match="LATENTBRIDGE_MEMORY_LIMIT"):
        available_memory()
    monkeypatch.delenv("LATENTBRIDGE_MEMORY_LIMIT")
    assert available_memory() is None or available_memory() > 0


def test_pairwise_distances_output_too_large(monkeypatch):
    X = np.zeros((300, 2))
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "100K")
    with pytest.raises(MemoryError, match=r"pairwise_distances output \(n, m\) = \(300, 300\) float64"):
        lb.pairwise_distances(X)
    lb.pairwise_distances(X[:100])      # 80 KB fits


def test_pairwise_distances_huge_request_without_override():
    """A 10^6 x 10^6 float64 output (8 TB) is refused with the size, not attempted."""
    X = np.broadcast_to(np.zeros(2), (1_000_000, 2))
    with pytest.raises(MemoryError, match=r"7\.3 TiB"):
        lb.pairwise_distances(X, X)


def test_similarity_memory_limits(monkeypatch):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((200, 3)), rng.standard_normal((200, 3))
    ref = lb.cka(X, Y)
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "200K")
    with pytest.raises(MemoryError, match=r"cka\(kernel='rbf'\) Gram matrices \(200, 200\)"):
        lb.cka(X, Y, kernel="rbf")
    with pytest.raises(MemoryError, match="minibatch_cka"):
        lb.minibatch_cka(X, Y, batch_size=200)
    with pytest.raises(MemoryError, match="pairwise_distances output"):
        lb.mutual_knn(X, Y, k=5)
    wide = rng.standard_normal((200, 150))
    with pytest.raises(MemoryError, match=r"cka\(kernel='linear'\) statistics \(p, q\) = \(150, 150\)"):
        lb.cka(wide, wide)      # neither the Gram form (1.3 MB) nor the feature form (1.6 MB) fits
    monkeypatch.delenv("LATENTBRIDGE_MEMORY_LIMIT")
    assert lb.cka(X, Y) == ref


def test_linear_cka_gram_fallback_is_exact(monkeypatch):
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((140, 100)), rng.standard_normal((140, 100))
    gram = lb.cka(X, Y, debiased=True)           # n small against p, q: Gram form
    # the Gram form needs 940 KB, the feature form 722 KB
    monkeypatch.setenv("LATENTBRIDGE_MEMORY_LIMIT", "800K")
    feature = lb.cka(X, Y, debiased=True)
    assert feature == pytest.approx(gram, rel=1e-9, abs=1e-12)


# ---- concurrency and determinism -----------------------------------------------------------------

def _calls():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((300, 24)).astype(np.float32)
    Y = rng.standard_normal((300, 16))
    A = rng.standard_normal((40, 24)).astype(np.float32)
    return [
        ("pairwise", lambda: lb.pairwise_distances(X, n_jobs=2)),
        ("pairwise_xy", lambda: lb.pairwise_distances(X, A, metric="cosine", n_jobs=-1)),
        ("cka", lambda: lb.cka(X, Y)),
        ("cka_rbf", lambda: lb.cka(X[:120], Y[:120], kernel="rbf", debiased=True)),
        ("svcca", lambda: lb.svcca(X, Y)),
        ("pwcca", lambda: lb.pwcca(X, Y)),
        ("mutual_knn", lambda: lb.mutual_knn(X, Y, k=5)),
        ("minibatch", lambda: lb.minibatch_cka(X, Y, batch_size=64, random_state=3)),
        ("ridge", lambda: lb.RidgeMap(alpha=0.5, n_jobs=2).fit(X, Y).coef_),
        ("procrustes", lambda: lb.Procrustes(scale=True).fit(X[:, :16], Y).transform(X[:, :16])),
        ("relative", lambda: lb.relative_representation(X, A)),
        ("mrr", lambda: lb.mrr(X, X + 0.1)),
        ("r_cross", lambda: lb.r_cross_barcode(X[:80], Y[:80], n_jobs=2)),
        ("rtd", lambda: lb.rtd(X, Y, trials=2, batch=60, seed=5, n_jobs=2)),
        ("vr", lambda: lb.vr_barcode(lb.pairwise_distances(X[:60]), maxdim=1)[1]),
        ("dmaps", lambda: lb.DiffusionMaps(n_components=3, n_neighbors=12, random_state=0,
                                           n_jobs=2).fit(X).embedding_),
    ]


def _same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))


def test_threads_give_serial_results():
    """8 Python threads x 50 calls (a mix of every entry point) equal the serial results bit for bit."""
    calls = _calls()
    serial = {name: fn() for name, fn in calls}
    jobs = [calls[i % len(calls)] for i in range(8 * 50)]
    with ThreadPoolExecutor(8) as ex:
        results = list(ex.map(lambda c: (c[0], c[1]()), jobs))
    bad = [name for name, value in results if not _same(value, serial[name])]
    assert not bad, f"differs from the serial result: {sorted(set(bad))}"


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "cosine"])
def test_pairwise_independent_of_n_jobs(metric):
    X = np.random.default_rng(0).standard_normal((700, 33))
    Y = np.random.default_rng(1).standard_normal((500, 33)).astype(np.float32)
    ref = lb.pairwise_distances(X, Y, metric=metric, n_jobs=1)
    for n_jobs in (2, 3, 8):
        assert _same(lb.pairwise_distances(X, Y, metric=metric, n_jobs=n_jobs), ref)
    ref_sym = lb.pairwise_distances(X, metric=metric, n_jobs=1)
    assert _same(lb.pairwise_distances(X, metric=metric, n_jobs=5), ref_sym)


def test_rtd_and_dmaps_independent_of_n_jobs():
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((300, 10)), rng.standard_normal((300, 7))
    ref_rtd = lb.rtd(X, Y, trials=3, batch=100, seed=1, n_jobs=1)
    ref_dm = lb.DiffusionMaps(n_components=4, n_neighbors=16, random_state=0, n_jobs=1).fit(X)
    for n_jobs in (2, 3):
        assert lb.rtd(X, Y, trials=3, batch=100, seed=1, n_jobs=n_jobs) == ref_rtd
        dm = lb.DiffusionMaps(n_components=4, n_neighbors=16, random_state=0, n_jobs=n_jobs).fit(X)
        np.testing.assert_array_equal(dm.eigenvalues_, ref_dm.eigenvalues_)
        np.testing.assert_array_equal(dm.embedding_, ref_dm.embedding_)


def test_native_statistics_independent_of_n_jobs():
    """Each entry of the cross products is summed in one order whatever the thread count."""
    from latentbridge._stats import CrossStats

    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((5000, 70)), rng.standard_normal((5000, 50)).astype(np.float64)
    out = []
    for n_threads in (1, 2, 4):
        st = CrossStats(70, 50, want_yy=True, backend="native", n_threads=n_threads)
        st.update(X, Y)
        out.append((st.cxx(), st.cxy(), st.cyy()))
    for other in out[1:]:
        assert all(_same(a, b) for a, b in zip(out[0], other))


def test_huge_n_jobs_is_capped_not_an_error():
    from latentbridge._validation import check_n_jobs

    X = np.random.default_rng(0).standard_normal((50, 3))
    ref = lb.pairwise_distances(X)
    assert _same(lb.pairwise_distances(X, n_jobs=2**40), ref)   # beyond a C int before
    assert check_n_jobs(2**40) == max(64, 4 * (os.cpu_count() or 1))
    assert check_n_jobs(-10**6) == 1
    with pytest.raises(ValueError, match="n_jobs"):
        lb.pairwise_distances(X, n_jobs=0)


def test_seeded_results_reproducible():
    rng = np.random.default_rng(5)
    X, Y = rng.standard_normal((200, 8)), rng.standard_normal((200, 6))
    a = lb.minibatch_cka(X, Y, batch_size=32, random_state=11)
    b = lb.minibatch_cka(X, Y, batch_size=32, random_state=11)
    assert a == b
    assert _same(lb.RidgeMap(alphas=[0.1, 1, 10], n_jobs=2).fit(X, Y).coef_,
                 lb.RidgeMap(alphas=[0.1, 1, 10], n_jobs=1).fit(X, Y).coef_)


def test_ctrl_c_interrupts_a_long_barcode_reduction():
    """A large R-Cross-Barcode (a noisy linear map in 64-D at n = 4000: about 16 s on one idle core, so
    that a much faster machine is still inside the reduction when SIGINT arrives after 2 s; the
    matrices take about 0.5 s): the reduction polls for Ctrl-C between columns, so SIGINT
    returns within a second or two."""
    code = textwrap.dedent("""
        import time
        import numpy as np
        import latentbridge as lb
        rng = np.random.default_rng(0)
        P = rng.standard_normal((4000, 64))
        Q = P @ rng.standard_normal((64, 64)) + 0.5 * rng.standard_normal((4000, 64))
        print("ready", flush=True)
        t0 = time.perf_counter()
        try:
            lb.r_cross_barcode(P, Q, n_jobs=1)
        except KeyboardInterrupt:
            print("interrupted after %.3f at %.6f" % (time.perf_counter() - t0, time.time()), flush=True)
            raise
        print("finished after %.3f" % (time.perf_counter() - t0), flush=True)
    """)
    out, err, returncode, elapsed = interrupt_after(code, wait=2.0)
    assert "interrupted after" in out and "KeyboardInterrupt" in err, (out, err)
    assert elapsed < 2.0, f"took {elapsed:.2f} s to return after SIGINT"
