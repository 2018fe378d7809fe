"""Alignment, similarity and evaluation: speed targets and the papers' findings on real networks.

    python bench/run.py alignment [--quick] [--threads 2] [--stream-rows 100000] [--ridgecv]
                                  [--skip-perf] [--skip-digits]

Performance rows (seconds; median/min over --repeat after a warm-up):
  * ridge_cv: RidgeMap(alphas=7 values).fit at N x D -> D against ONE scikit-learn Ridge fit
    (ratio = ours / sklearn Ridge; target <= 1.5); --ridgecv also times sklearn's RidgeCV.
  * stream_<backend>: partial_fit over 10k-row float32 chunks, D -> D (2048 by default): the
    accumulation rate in GF/s of actual flops (3 N D^2: the symmetric X^T X counts half) against
    the machine's float64 GEMM rate measured in the same run (frac_of_gemm; target >= 0.7), and the
    peak RSS growth for two N (memory independent of N).
  * cka_linear: lb.cka at N x D (float32 in, float64 accumulation).
Digits rows: networks trained by latentbridge.datasets (two architectures x two seeds), reporting
transfer R^2 and stitched accuracy (rigid vs linear), the analytic map against a random-weights
control, and relative-representation MRR across seeds.
"""

from __future__ import annotations

import time

import numpy as np

from run import peak_memory_mb, time_call


def add_arguments(parser):
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--stream-rows", type=int, default=None,
                        help="rows streamed (default 100000; the paper's 1281167 works too)")
    parser.add_argument("--stream-dim", type=int, default=None)
    parser.add_argument("--ridgecv", action="store_true", help="also time sklearn RidgeCV (slow)")
    parser.add_argument("--skip-perf", action="store_true")
    parser.add_argument("--skip-digits", action="store_true")


def _limits(threads):
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(threads)
    except ImportError:
        import contextlib

        return contextlib.nullcontext()


def _ridge_rows(args, quick):
    import latentbridge as lb

    rows = []
    n, d = (20_000, 256) if quick else (100_000, 512)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    Y = X @ (rng.standard_normal((d, d)) / np.sqrt(d)) + rng.standard_normal((n, d))
    alphas = np.logspace(-3, 3, 7)
    from sklearn.linear_model import Ridge

    t_sk, t_sk_min = time_call(lambda: Ridge(alpha=1.0).fit(X, Y), args.repeat)
    t_cv, t_cv_min = time_call(lambda: lb.RidgeMap(alphas=alphas).fit(X, Y), args.repeat)
    t_one, _ = time_call(lambda: lb.RidgeMap(alpha=1.0).fit(X, Y), args.repeat)
    ours = lb.RidgeMap(alpha=1.0).fit(X, Y)
    err = float(np.max(np.abs(ours.coef_ - Ridge(alpha=1.0).fit(X, Y).coef_)))
    rows.append({"op": "sklearn Ridge fit", "size": f"{n}x{d}->{d}", "median_s": t_sk,
                 "min_s": t_sk_min})
    rows.append({"op": "RidgeMap fit (1 alpha)", "size": f"{n}x{d}->{d}", "median_s": t_one,
                 "max_abs_diff": err})
    rows.append({"op": "RidgeMap CV 7 alphas", "size": f"{n}x{d}->{d}", "median_s": t_cv,
                 "min_s": t_cv_min, "ratio_vs_ridge": t_cv / t_sk})
    if args.ridgecv:
        from sklearn.linear_model import RidgeCV

        t0 = time.perf_counter()
        RidgeCV(alphas=alphas).fit(X, Y)
        rows.append({"op": "sklearn RidgeCV 7 alphas", "size": f"{n}x{d}->{d}",
                     "median_s": time.perf_counter() - t0})
    return rows


def _stream_rows(args, quick):
    import latentbridge as lb
    from latentbridge import _stats

    rows = []
    d = args.stream_dim or (512 if quick else 2048)
    n_total = args.stream_rows or (40_000 if quick else 100_000)
    chunk = 10_000
    rng = np.random.default_rng(1)
    Xc = rng.standard_normal((chunk, d)).astype(np.float32)
    Yc = (Xc[:, ::-1] + rng.standard_normal((chunk, d)).astype(np.float32)).copy()
    A = rng.standard_normal((chunk, d))
    B = rng.standard_normal((chunk, d))
    t_gemm, _ = time_call(lambda: A.T @ B, args.repeat)
    gemm_rate = 2.0 * chunk * d * d / t_gemm / 1e9
    rows.append({"op": "numpy float64 GEMM (X^T Y)", "size": f"{chunk}x{d}", "median_s": t_gemm,
                 "gflops": gemm_rate})
    for backend in _stats.CPU_BACKENDS:
        def stream(n_rows, backend=backend):
            old = _stats.DEFAULT_BACKEND
            _stats.DEFAULT_BACKEND = backend
            try:
                est = lb.RidgeMap(alpha=1.0, n_jobs=args.threads)
                for i in range(n_rows // chunk):
                    est.partial_fit(Xc if i % 2 else Yc, Yc)   # any float32 chunk stream
                return est.coef_                                # one solve at the end
            finally:
                _stats.DEFAULT_BACKEND = old

        # accumulation time alone (the solve is O(d^3) once, reported separately)
        def accumulate(backend=backend, n_rows=n_total):
            st = _stats.CrossStats(d, d, backend=backend, n_threads=args.threads)
            for _ in range(n_rows // chunk):
                st.update(Xc, Yc)
            return st

        t_acc, t_acc_min = time_call(accumulate, max(1, args.repeat - 2), warmup=0)
        rate = 3.0 * n_total * d * d / t_acc / 1e9
        try:
            mem_small, _ = peak_memory_mb(lambda: stream(n_total // 2))
            mem_large, _ = peak_memory_mb(lambda: stream(n_total))
        except ImportError:
            mem_small = mem_large = None
        rows.append({"op": f"stream accumulate ({backend})", "size": f"{n_total}x{d}->{d} f32",
                     "median_s": t_acc, "min_s": t_acc_min, "gflops": rate,
                     "frac_of_gemm": rate / gemm_rate,
                     "peak_mb_half_n": mem_small, "peak_mb_full_n": mem_large})
    st = _stats.CrossStats(d, d)
    st.update(Xc, Yc)
    est = lb.RidgeMap(alpha=1.0)
    est.stats_ = st
    t_solve, _ = time_call(est._solve, 1, warmup=0)
    rows.append({"op": "RidgeMap solve from statistics", "size": f"{d}->{d}", "median_s": t_solve})
    return rows


def _cka_rows(args, quick):
    import latentbridge as lb

    n, d = (20_000, 512) if quick else (100_000, 2048)
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, d), dtype=np.float32)
    Y = (X[:, : d // 2] @ rng.standard_normal((d // 2, d), dtype=np.float32)
         + rng.standard_normal((n, d), dtype=np.float32))
    t, tmin = time_call(lambda: lb.cka(X, Y, n_jobs=args.threads), max(1, args.repeat - 2),
                        warmup=0)
    sub = 2000    # cross-check on a subset against the Gram-space definition in float64
    Xs, Ys = X[:sub].astype(np.float64), Y[:sub].astype(np.float64)
    Xs, Ys = Xs - Xs.mean(0), Ys - Ys.mean(0)
    K, L = Xs @ Xs.T, Ys @ Ys.T
    ref = np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))
    diff = abs(lb.cka(X[:sub], Y[:sub]) - ref)
    return [{"op": "cka linear", "size": f"{n}x{d} f32", "median_s": t, "min_s": tmin,
             "max_abs_diff": diff}]


def _digits_rows():
    import latentbridge as lb
    from latentbridge.datasets import digits_networks, train_digits_network

    t0 = time.perf_counter()
    data, nets = digits_networks()
    t_train = time.perf_counter() - t0
    rows = [{"op": "digits: train 4 networks", "median_s": t_train}]
    for key, net in nets.items():
        rows.append({"op": "digits: network", "case": f"{key[0]}-s{key[1]}",
                     "metric": "test accuracy", "value": net.test_accuracy})
    Xtr, Xte, yte = data.X_train, data.X_test, data.y_test
    pairs = [(("relu", 0), ("relu", 1)), (("tanh", 0), ("tanh", 1)), (("relu", 0), ("tanh", 1))]
    for a, b in pairs:
        A, B = nets[a], nets[b]
        case = f"{a[0]}-s{a[1]} -> {b[0]}-s{b[1]}"
        FA, FB, FAt, FBt = A.features(Xtr), B.features(Xtr), A.features(Xte), B.features(Xte)
        for name, est in [("rigid (Procrustes)", lb.Procrustes()),
                          ("orthogonal+scale", lb.Procrustes(scale=True)),
                          ("linear (LinearMap)", lb.LinearMap()),
                          ("ridge CV (RidgeMap)", lb.RidgeMap(alphas=np.logspace(-4, 2, 7)))]:
            est.fit(FA, FB)
            rows.append({"op": "digits: transfer", "case": case, "metric": f"{name} test R2",
                         "value": est.score(FAt, FBt)})
            rows.append({"op": "digits: transfer", "case": case,
                         "metric": f"{name} stitched acc",
                         "value": lb.stitched_accuracy(FAt, yte, B.W, B.b, mapping=est)})
        rng = np.random.default_rng(0)
        anchors = rng.choice(Xtr.shape[0], 300, replace=False)
        ra = lb.relative_representation(FAt, A.features(Xtr[anchors]))
        rb = lb.relative_representation(FBt, B.features(Xtr[anchors]))
        rows.append({"op": "digits: retrieval", "case": case, "metric": "MRR absolute (cosine)",
                     "value": lb.mrr(FAt, FBt)})
        rows.append({"op": "digits: retrieval", "case": case,
                     "metric": "MRR relative (300 anchors)", "value": lb.mrr(ra, rb)})
        for metric, value in [("linear CKA", lb.cka(FAt, FBt)),
                              ("debiased linear CKA", lb.cka(FAt, FBt, debiased=True)),
                              ("RBF CKA (median rule)", lb.cka(FAt, FBt, kernel="rbf")),
                              ("SVCCA (0.99)", lb.svcca(FAt, FBt)),
                              ("PWCCA", lb.pwcca(FAt, FBt)),
                              ("mutual kNN (k=10)", lb.mutual_knn(FAt, FBt))]:
            rows.append({"op": "digits: similarity", "case": case, "metric": metric,
                         "value": value})
        # relative geodesic representation: softmax of each network's own head as the decoder
        few = anchors[:50]
        ga = lb.RelativeGeodesic(lambda Z, net=A: _softmax(net.head(Z))).fit(A.features(Xtr[few]))
        gb = lb.RelativeGeodesic(lambda Z, net=B: _softmax(net.head(Z))).fit(B.features(Xtr[few]))
        rows.append({"op": "digits: retrieval", "case": case,
                     "metric": "MRR relative cosine (50 anchors)",
                     "value": lb.mrr(lb.relative_representation(FAt, A.features(Xtr[few])),
                                     lb.relative_representation(FBt, B.features(Xtr[few])))})
        rows.append({"op": "digits: retrieval", "case": case,
                     "metric": "MRR relative geodesic (50 anchors, 8 steps)",
                     "value": lb.mrr(ga.transform(FAt), gb.transform(FBt))})
    # analytic map vs the random-weights control (McNeely-White et al.)
    A = nets["relu", 0]
    R = train_digits_network("tanh", seed=123, data=data, epochs=0)   # untrained network
    FAt, FRt, FAtr, FRtr = A.features(Xte), R.features(Xte), A.features(Xtr), R.features(Xtr)
    M = lb.analytic_map(A.W, R.W, A.b, R.b)
    ridge = lb.RidgeMap(alphas=np.logspace(-4, 2, 7)).fit(FAtr, FRtr)
    case = "relu-s0 -> random tanh"
    for metric, value in [
        ("source network accuracy", A.test_accuracy),
        ("random network's own accuracy", R.test_accuracy),
        ("analytic map stitched acc", lb.stitched_accuracy(FAt, yte, R.W, R.b, mapping=M)),
        ("ridge map stitched acc", lb.stitched_accuracy(FAt, yte, R.W, R.b, mapping=ridge)),
        ("ridge map test R2", ridge.score(FAt, FRt)),
        ("linear CKA", lb.cka(FAt, FRt)),
    ]:
        rows.append({"op": "digits: analytic control", "case": case, "metric": metric,
                     "value": value})
    B = nets["tanh", 1]
    M = lb.analytic_map(A.W, B.W, A.b, B.b)
    rows.append({"op": "digits: analytic control", "case": "relu-s0 -> tanh-s1",
                 "metric": "analytic map stitched acc",
                 "value": lb.stitched_accuracy(FAt, yte, B.W, B.b, mapping=M)})
    return rows


def _softmax(Z):
    Z = Z - Z.max(axis=1, keepdims=True)
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def run(args):
    rows = []
    with _limits(args.threads):
        if not args.skip_perf:
            rows += _ridge_rows(args, args.quick)
            rows += _stream_rows(args, args.quick)
            rows += _cka_rows(args, args.quick)
        if not args.skip_digits:
            rows += _digits_rows()
    return rows
