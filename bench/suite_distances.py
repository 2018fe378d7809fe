"""Pairwise distances: latentbridge against scipy's cdist and scikit-learn's pairwise_distances on
the CPU (same thread count for everyone, set with threadpoolctl), and against torch.cdist on a CUDA
device when torch and a device are present.

    python bench/run.py distances [--quick] [--threads 2] [--sizes 5000x512,20000x512]
"""

from __future__ import annotations

import numpy as np
from run import time_call


def add_arguments(parser):
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default=None, help="comma-separated NxD (X = Y = N x D)")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--no-scipy", action="store_true", help="skip scipy cdist (slow at large N)")


def _limits(threads):
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(threads)
    except ImportError:  # references then use their default threads; the table says so
        import contextlib

        return contextlib.nullcontext()


def _max_rel(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def run(args):
    import latentbridge as lb

    # numpy's OpenBLAS (0.3.31) segfaults on this project's machines for a float64 20000 x 512
    # X @ X.T with 2 threads (plain numpy, no latentbridge involved), so float64 stops at 16384.
    default = "5000x512,20000x512" if not args.quick else "2000x128,5000x512"
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.sizes or default).split(",")]
    rows = []
    for dtype in args.dtypes.split(","):
        dt = np.dtype(dtype)
        for n, d in sizes:
            if args.sizes is None and dt == np.float64 and n > 16384:
                n = 16384
            X = np.random.default_rng(0).standard_normal((n, d)).astype(dt)
            ours = lambda: lb.pairwise_distances(X, device="cpu", n_jobs=args.threads)  # noqa: E731
            t_ours, _ = time_call(ours, args.repeat)
            head = lb.pairwise_distances(X[:1000], X, device="cpu", n_jobs=args.threads)
            row = {"case": f"{n}x{d}", "dtype": dtype, "device": "cpu", "threads": args.threads,
                   "latentbridge_s": t_ours}
            try:
                from sklearn.metrics import pairwise_distances as sk_pd

                with _limits(args.threads):
                    t_sk, _ = time_call(lambda: sk_pd(X, n_jobs=None), max(1, args.repeat - 1))
                row.update(sklearn_s=t_sk, speedup_vs_sklearn=t_sk / t_ours)
            except ImportError:
                row["sklearn_s"] = None
            from scipy.spatial.distance import cdist

            row["max_rel_err_vs_cdist"] = _max_rel(head, cdist(X[:1000].astype(np.float64), X.astype(np.float64)))
            if not args.no_scipy and n <= 10000:
                t_sp, _ = time_call(lambda: cdist(X, X), 1)
                row.update(scipy_s=t_sp, speedup_vs_scipy=t_sp / t_ours)
            rows.append(row)
    rows.extend(_gpu_rows(args))
    return rows


def _gpu_rows(args):
    """Ours against torch.cdist on CUDA tensors (Y = X, euclidean): seconds, ratio, TFLOP/s (2 N^2 d
    flops, as for a full GEMM, although Y = X computes only the tiles on and above the diagonal)
    and the max relative error of the first 2048 rows against float64 torch.cdist. Each row is also
    printed as soon as it is measured, so that a run stopped by a time limit keeps what it did."""
    import latentbridge as lb

    if not lb.cuda_available():
        return []
    try:
        import torch
    except ImportError:
        torch = None
    rows = []
    sizes = [(4096, 512)] if args.quick else [(8192, 512), (32768, 512), (32768, 64), (32768, 2048)]
    for dtype in ("float32", "float64"):
        for n, d in sizes:
            flops = 2.0 * n * n * d
            row = {"case": f"{n}x{d}", "dtype": dtype, "device": "cuda"}
            repeat = args.repeat if n * d <= 32768 * 512 else max(1, min(args.repeat, 2))
            if torch is not None:
                X = torch.randn(n, d, device="cuda", dtype=getattr(torch, dtype))

                def ours():
                    lb.pairwise_distances(X)
                    torch.cuda.synchronize()

                def ref():
                    torch.cdist(X, X)
                    torch.cuda.synchronize()

                t_ours, _ = time_call(ours, repeat)
                torch.cuda.empty_cache()
                t_ref, _ = time_call(ref, repeat)
                torch.cuda.empty_cache()
                D = lb.pairwise_distances(X[:2048])
                R = torch.cdist(X[:2048].double(), X[:2048].double())
                row.update(
                    latentbridge_s=t_ours,
                    torch_cdist_s=t_ref,
                    speedup_vs_torch=t_ref / t_ours,
                    tflops=flops / t_ours / 1e12,
                    torch_tflops=flops / t_ref / 1e12,
                    max_rel_err=float(((D.double() - R).abs().max() / R.abs().max()).item()),
                )
                del X, D, R
                torch.cuda.empty_cache()
            else:
                X = np.random.default_rng(0).standard_normal((n, d)).astype(dtype)
                t_ours, _ = time_call(lambda: lb.pairwise_distances(X, device="cuda"), repeat)
                row.update(latentbridge_s_host_roundtrip=t_ours)
            print("gpu row:", row, flush=True)
            rows.append(row)
    return rows
