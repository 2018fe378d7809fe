"""R-Cross-Barcode_1 and RTD against giotto-ph on the doubled 2N x 2N matrix.

Cases:
* ``r_cross``: P is 64-D Gaussian, Q = P A / 8 + noise (a noisy linear transform), N from --sizes;
  latentbridge.r_cross_barcode(P, Q) (distances, normalisation and reduction) against giotto-ph
  ``ripser_parallel(M, maxdim=1, metric="precomputed", n_threads=--threads)`` on the doubled
  matrix M of the same input (built beforehand, not timed). Barcodes are checked to be equal.
* ``rings`` (--rings): the official Rings.ipynb experiment, 5 comparisons of 500 heavily tied
  points (one unit ring + 4 others against k unit rings, k = 1..5); giotto-ph with --rings-giotto
  (about 380 s on 2 cores).
* ``clusters`` (--clusters): the official Clusters.ipynb experiment (300 points), RTD per k.
* ``noise_vs_plane`` (--noise-sizes): issue 11's family, P 32-D Gaussian noise and Q a rank-2
  cloud (2-D Gaussian times a 2 x 32 Gaussian matrix), in both argument orders.
Every R-Cross row also has ``lb_cpu_s`` (process CPU time of one call, all threads: the fair
figure on a shared machine) and, for the families, ``x_64d`` / ``x_64d_cpu``: the ratio to the
64-D case (``r_cross_1``) of the same N and threads (issue 11: at most 20; give that N in
--sizes). With --peers, ``redzed_cpu_s`` and ``redzed_cpu_ratio`` = redzed CPU / ours.
``--peers`` also times redzed-tda (``redzed_tda.rips(M, maxdim=1, threshold=enclosing radius)``,
single-threaded) on the same prebuilt doubled matrix in the same run: its time, the ratio
``redzed_s / lb_median_s``, whether its finite H1 bars equal ours, and its peak memory.
* VR families (--families, e.g. ``gauss2000,sphere_3_192,o3_1024``): ``vr_barcode`` against
  redzed-tda (and giotto-ph with --families-giotto) on the same float32 matrix, every degree compared:
  ``gaussN`` is N Gaussian points in R^16 (H1); ``sphere_3_192`` (H2), ``o3_1024`` (H3, threshold
  1.8) and ``o3_4096`` (H3, threshold 1.4) are Ripser's example sets, read from --ripser-examples
  (a checkout's examples/ folder: github.com/Ripser/ripser); peak memory is the in-process RSS growth.
  ``lb_s`` and ``redzed_s`` are the median wall times (``*_min_s`` the least).
Timing (every case with a peer): one warm-up call of each, then ours and the peer's calls alternate,
--repeat rounds or more until the rounds took --min-seconds (at most 101; ``calls``), so that a burst
of load on the shared machine weighs on both alike; ``*_cpu_s`` is the process CPU per call.
Peak memory: the resident-set growth (sampled every 5 ms, psutil) of a fresh process during one call
from P and Q (for giotto-ph: building the doubled matrix it needs, then ripser_parallel), after a
small warm-up call, so the two libraries are measured the same way; ``--no-memory`` skips it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from run import time_alternating

import latentbridge as lb


def add_arguments(parser):
    parser.add_argument("--sizes", default="100,200,500,1000,2000",
                        help="comma-separated N for the r_cross case")
    parser.add_argument("--giotto-max", type=int, default=1000,
                        help="run giotto-ph only up to this N (it takes ~20 s at 1000)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries")
    parser.add_argument("--rings", action="store_true", help="run the rings experiment")
    parser.add_argument("--rings-giotto", action="store_true",
                        help="also run giotto-ph on the rings experiment (~380 s)")
    parser.add_argument("--clusters", action="store_true", help="run the clusters experiment")
    parser.add_argument("--noise-sizes", default="",
                        help="comma-separated N for the noise-vs-rank-2 case (e.g. 300,500)")
    parser.add_argument("--peers", action="store_true",
                        help="also time redzed-tda on the doubled matrix (same run, same inputs)")
    parser.add_argument("--families", default="",
                        help="comma-separated VR families: gaussN, sphere_3_192, o3_1024, o3_4096")
    parser.add_argument("--n-jobs", type=int, default=1,
                        help="n_jobs of vr_barcode in the VR families (--families)")
    parser.add_argument("--families-giotto", action="store_true",
                        help="also run giotto-ph on the VR families")
    parser.add_argument("--ripser-examples", default="examples",
                        help="folder with Ripser's example files (sphere_3_192, o3_*)")
    parser.add_argument("--min-seconds", type=float, default=1.0,
                        help="repeat a case's alternating calls until they took this long (at most 101)")
    parser.add_argument("--no-memory", action="store_true",
                        help="skip the peak-memory measurement (one fresh process per library)")


def _doubled(P, Q):
    r1 = lb.pairwise_distances(P)
    r2 = lb.pairwise_distances(Q)
    r1 /= np.quantile(r1, 0.9)
    r2 /= np.quantile(r2, 0.9)
    n = len(r1)
    M = np.zeros((2 * n, 2 * n))
    M[n:, :n] = r1
    M[:n, n:] = r1.T
    M[n:, n:] = np.minimum(r1, r2)
    M[M < r1.mean() * 1e-6] = 0
    return M


def _redzed(M):
    import redzed_tda

    thr = float(np.min(np.max(M, axis=1)))  # the enclosing radius, as ripser and giotto-ph use
    dgm = np.asarray(redzed_tda.rips(M, maxdim=1, threshold=thr)[1], dtype=np.float64)
    dgm = dgm[np.isfinite(dgm[:, 1]) & (dgm[:, 1] > dgm[:, 0])]
    # float32 values, as the other engines report them
    dgm = dgm.astype(np.float32).astype(np.float64)
    return dgm[np.lexsort((dgm[:, 1], dgm[:, 0]))]


def _giotto(M, threads):
    from gph import ripser_parallel

    dgm = ripser_parallel(M, maxdim=1, metric="precomputed", n_threads=threads)["dgms"][1]
    dgm = np.asarray(dgm, dtype=np.float64)
    return dgm[np.lexsort((dgm[:, 1], dgm[:, 0]))]


_CHILD = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[4])
from run import peak_memory_mb
data = np.load(sys.argv[2])
P, Q, threads = data["P"], data["Q"], int(sys.argv[3])
if sys.argv[1] == "latentbridge":
    import latentbridge as lb
    work = lambda A, B: lb.r_cross_barcode(A, B, n_jobs=threads)
elif sys.argv[1] == "redzed":
    from suite_rtd import _doubled, _redzed
    work = lambda A, B: _redzed(_doubled(A, B))
else:
    from suite_rtd import _doubled, _giotto
    work = lambda A, B: _giotto(_doubled(A, B), threads)
work(P[:20], Q[:20])  # load everything the call needs
print(peak_memory_mb(lambda: work(P, Q))[0])
"""


def _peak_rss_mb(library, P, Q, threads):
    """Peak resident-set growth (MiB) of a fresh process computing one barcode with `library`."""
    try:
        return _run_child(library, P, Q, threads)
    except (subprocess.CalledProcessError, ValueError, IndexError):  # e.g. psutil missing
        return None


def _run_child(library, P, Q, threads):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pq.npz")
        np.savez(path, P=P, Q=Q)
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.join(here, "..", "python"), here, env.get("PYTHONPATH", "")])
        out = subprocess.run([sys.executable, "-c", _CHILD, library, path, str(threads), here],
                             capture_output=True, text=True, env=env, check=True)
        return round(float(out.stdout.strip().splitlines()[-1]), 1)


def _compare(P, Q, label, n, args, run_giotto, repeat):
    threads = args.threads
    calls = {"lb": lambda: lb.r_cross_barcode(P, Q, n_jobs=threads)}
    M = _doubled(P, Q) if args.peers or run_giotto else None  # the peers' input, built once
    if args.peers:
        calls["redzed"] = lambda: _redzed(M)
    results, t = time_alternating(calls, repeat, min_seconds=args.min_seconds)
    bars, med = results["lb"], t["lb"]["median_s"]
    row = {"case": label, "n": n, "threads": threads, "bars": len(bars), "calls": t["lb"]["calls"],
           "lb_median_s": med, "lb_min_s": t["lb"]["min_s"], "lb_cpu_s": t["lb"]["cpu_s"],
           "load_avg": os.getloadavg()[0]}
    if not args.no_memory:
        row["lb_peak_mb"] = _peak_rss_mb("latentbridge", P, Q, threads)
    if run_giotto:
        t0 = time.perf_counter()
        ref = _giotto(M, threads)
        gt = time.perf_counter() - t0
        row.update({"giotto_s": gt, "speedup": gt / med, "equal": bool(np.array_equal(ref, bars))})
        if not args.no_memory:
            row["giotto_peak_mb"] = _peak_rss_mb("giotto", P, Q, threads)
    if args.peers:
        rz = t["redzed"]
        row.update({"redzed_s": rz["median_s"], "redzed_ratio": rz["median_s"] / med,
                    "redzed_cpu_s": rz["cpu_s"], "redzed_cpu_ratio": rz["cpu_s"] / row["lb_cpu_s"],
                    "redzed_equal": bool(np.array_equal(results["redzed"], bars))})
        if not args.no_memory:
            row["redzed_peak_mb"] = _peak_rss_mb("redzed", P, Q, threads)
    return row


def _family(name, folder):
    """(float32 distance matrix, maxdim, threshold or None) of a named VR family."""
    if name.startswith("gauss"):
        X = np.random.default_rng(0).standard_normal((int(name[5:]), 16))
        return np.asarray(lb.pairwise_distances(X), dtype=np.float32), 1, None
    if name == "sphere_3_192":
        with open(os.path.join(folder, "sphere_3_192.lower_distance_matrix")) as f:
            vals = np.array(f.read().replace(",", " ").split(), dtype=np.float64)
        n = int(round((1 + np.sqrt(1 + 8 * len(vals))) / 2))
        D = np.zeros((n, n))
        D[np.tril_indices(n, -1)] = vals  # the lower triangle, row by row
        return (D + D.T).astype(np.float32), 2, None
    thr = {"o3_1024": 1.8, "o3_4096": 1.4}[name]
    X = np.loadtxt(os.path.join(folder, name + ".txt"))
    return np.asarray(lb.pairwise_distances(X), dtype=np.float32), 3, thr


def _vr_row(name, args):
    from run import peak_memory_mb

    D, k, thr = _family(name, args.ripser_examples)

    enclosing = float(np.min(D.max(axis=1)))

    def vr():
        return lb.vr_barcode(D, maxdim=k, threshold=thr, n_jobs=args.n_jobs)

    def redzed():
        import redzed_tda

        return redzed_tda.rips(D.astype(np.float64), maxdim=k,
                               threshold=enclosing if thr is None else thr)

    calls = {"lb": vr, "redzed": redzed} if args.peers else {"lb": vr}
    results, t = time_alternating(calls, args.repeat, min_seconds=args.min_seconds)
    med = t["lb"]["median_s"]
    ours = results["lb"]
    row = {"case": name, "n": len(D), "maxdim": k, "threshold": thr, "n_jobs": args.n_jobs,
           "bars": [len(b) for b in ours], "calls": t["lb"]["calls"], "lb_s": med,
           "lb_min_s": t["lb"]["min_s"], "lb_cpu_s": t["lb"]["cpu_s"],
           "load_avg": os.getloadavg()[0]}
    if not args.no_memory:
        try:
            row["lb_peak_mb"] = round(peak_memory_mb(vr)[0], 1)
        except ImportError:
            pass
    if args.peers:
        ref, rt = results["redzed"], t["redzed"]["median_s"]
        row.update({"redzed_s": rt, "redzed_min_s": t["redzed"]["min_s"], "redzed_ratio": rt / med,
                    "redzed_cpu_s": t["redzed"]["cpu_s"],
                    "redzed_equal": all(np.array_equal(_canon(a), _canon(b))
                                        for a, b in zip(ours, ref))})
        if not args.no_memory:
            try:
                row["redzed_peak_mb"] = round(peak_memory_mb(redzed)[0], 1)
            except ImportError:
                pass
    if args.families_giotto:
        from gph import ripser_parallel

        t0 = time.perf_counter()
        ref = ripser_parallel(D.astype(np.float64), maxdim=k, metric="precomputed",
                              n_threads=args.threads, thresh=np.inf if thr is None else thr)["dgms"]
        gt = time.perf_counter() - t0
        row.update({"giotto_s": gt, "giotto_ratio": gt / med,
                    "giotto_equal": all(np.array_equal(_canon(a), _canon(b))
                                        for a, b in zip(ours, ref))})
    return row


def _canon(bars):
    """Positive-length bars as float32 values, sorted (every engine's convention)."""
    b = np.asarray(bars, dtype=np.float64).reshape(-1, 2)
    b = b[b[:, 1] > b[:, 0]].astype(np.float32).astype(np.float64)
    return b[np.lexsort((b[:, 1], b[:, 0]))]


def run(args):
    rows = []
    for name in [s for s in args.families.split(",") if s]:
        rows.append(_vr_row(name, args))
        print(rows[-1], flush=True)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.quick:
        sizes = [s for s in sizes if s <= 200] or sizes[:1]
    rng = np.random.default_rng(0)
    for n in sizes:
        P = rng.standard_normal((n, 64))
        Q = P @ rng.standard_normal((64, 64)) / 8 + 0.5 * rng.standard_normal((n, 64))
        repeat = args.repeat if n <= 1000 else 1
        rows.append(_compare(P, Q, "r_cross_1", n, args, n <= args.giotto_max, repeat))
        print(rows[-1], flush=True)

    for n in [int(s) for s in args.noise_sizes.split(",") if s]:
        P = rng.standard_normal((n, 32))
        Q = rng.standard_normal((n, 2)) @ rng.standard_normal((2, 32))
        for label, A, B in (("noise_vs_plane", P, Q), ("plane_vs_noise", Q, P)):
            rows.append(_compare(A, B, label, n, args, n <= args.giotto_max and args.rings_giotto,
                                 args.repeat))
            print(rows[-1], flush=True)

    if args.rings:
        base = _rings(1, 5)
        values, lb_total, g_total = [], 0.0, 0.0
        for k in range(1, 6):
            other = _rings(k, 5)
            row = _compare(base, other, f"rings k={k}", 500, args, args.rings_giotto, 1)
            b1 = lb.r_cross_barcode(base, other)
            b2 = lb.r_cross_barcode(other, base)
            values.append(0.5 * (np.sum(b1[:, 1] - b1[:, 0]) + np.sum(b2[:, 1] - b2[:, 0])))
            row["rtd"] = float(values[-1])
            lb_total += row["lb_median_s"]
            g_total += row.get("giotto_s", 0.0)
            rows.append(row)
            print(row, flush=True)
        from scipy.stats import kendalltau

        total = {"case": "rings total", "n": 500, "threads": args.threads, "lb_median_s": lb_total,
                 "kendall_tau": float(kendalltau(range(1, 6), values).statistic)}
        if args.rings_giotto:
            total.update({"giotto_s": g_total, "speedup": g_total / lb_total})
        rows.append(total)

    if args.clusters:
        state = np.random.RandomState(7)
        groups = [state.multivariate_normal(np.zeros(2), np.eye(2), 5) for _ in range(60)]
        base = np.concatenate(groups)
        ks, values = [2, 3, 4, 5, 6, 10, 12], []  # the notebook's clusters_list
        t0 = time.perf_counter()
        for k in ks:
            shifted = [g + 10 * np.array([np.cos(2 * np.pi * (i % k) / k),
                                          np.sin(2 * np.pi * (i % k) / k)])
                       for i, g in enumerate(groups)]
            values.append(lb.rtd(base, np.concatenate(shifted), trials=1, batch=300, seed=0,
                                 n_jobs=args.threads))
        from scipy.stats import kendalltau

        rows.append({"case": "clusters", "n": 300, "threads": args.threads,
                     "lb_median_s": time.perf_counter() - t0,
                     "kendall_tau": float(kendalltau(ks, values).statistic),
                     "rtd": " ".join(f"{v:.2f}" for v in values)})
    _add_family_ratios(rows)
    return rows


def _add_family_ratios(rows):
    """Issue 11's criterion: each R-Cross family's time over the 64-D case (r_cross_1) of the
    same N and thread count, wall (``x_64d``) and CPU (``x_64d_cpu``); 20 at most is the goal."""
    base = {(r["n"], r["threads"]): r for r in rows if r["case"] == "r_cross_1"}
    for r in rows:
        b = base.get((r["n"], r.get("threads")))
        if b is None or r["case"] == "r_cross_1" or "lb_cpu_s" not in r:
            continue
        r["x_64d"] = r["lb_median_s"] / b["lb_median_s"]
        r["x_64d_cpu"] = r["lb_cpu_s"] / max(b["lb_cpu_s"], 1e-9)


def _rings(n_large, n_total, per_ring=100):
    parts = []
    for i in range(n_total):
        if i < n_large:
            radius = 1.0
        else:
            idx = i - n_large
            radius = 1 + 0.25 * (2 + idx) / 2 if idx % 2 == 0 else 1 - 0.25 * (1 + idx) / 2
        t = 2 * np.pi * np.arange(per_ring) / per_ring
        parts.append(np.c_[np.cos(t), np.sin(t)] * radius)
    return np.concatenate(parts)
