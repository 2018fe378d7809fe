"""Mahalanobis diffusion maps and network transformations (Bertalan, Dietrich, Kevrekidis et al.).

    python bench/run.py dmaps [--quick] [--n 100000] [--neighbors 32] [--threads 2]
                              [--skip-scipy] [--skip-networks] [--skip-square]

Rows:
  * perf (4.3 setup): the square [-1, 1]^2 observed as tanh(W x + b) in R^5 with rank-2 5 x 5
    precisions pinv(J J^T) from the analytic Jacobian; 10 eigenpairs, end to end
    (precisions -> k-NN -> Mahalanobis re-ranking -> kernel -> eigensolver). latentbridge
    (median/min over --repeat after a warm-up, plus peak RSS growth) against a numpy/scipy
    pipeline of the same algorithm (cKDTree candidates, numpy quadratic forms, scipy.sparse
    normalisation, ARPACK eigsh(which="LA") at the same tolerance) run once in the same process.
    Reported: the stage times, the largest eigenvalue difference, and the agreement of the two
    10-dimensional embeddings (smallest canonical correlation: 1 = same subspace).
  * square (4.3): two different observations of the square (R^5 and R^6); the gap ratios
    -log a_p / -log a_1 (Neumann square: 1 1 2 4 4) and the correlation of the two embeddings
    after NetworkTransformation's block-orthogonal alignment.
  * networks (4.1 / 4.2): two small tanh MLPs per task trained here with numpy (Adam, a few
    seconds) on f(x) = tanh(2x) (4.1, monotone) and f(x) = sin(pi x) (4.2, not monotone); the
    activations of the second hidden layer (8 neurons) with precisions from 15-point input bursts
    (Tikhonov, ridge 0.1) and from the analytic Jacobian. |corr(phi_1 of A, phi_1 of B)| for the
    Mahalanobis and the Euclidean maps, and the error of T = psi^-1 o O o phi on held-out inputs.
"""

from __future__ import annotations

import time

import numpy as np

from run import peak_memory_mb, time_call


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=None, help="points of the 4.3 case (100000)")
    parser.add_argument("--neighbors", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="where latentbridge runs (cuda: also a CPU row for the same-run ratio "
                             "unless --skip-cpu)")
    parser.add_argument("--skip-cpu", action="store_true", help="with --device cuda: no CPU row")
    parser.add_argument("--skip-scipy", action="store_true", help="skip the numpy/scipy reference")
    parser.add_argument("--skip-networks", action="store_true")
    parser.add_argument("--skip-square", action="store_true")


def tanh_square(n, seed=0, m=5):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    W = np.random.default_rng(100 + seed).standard_normal((m, 2))
    b = 0.3 * np.random.default_rng(200 + seed).standard_normal(m)
    Y = np.tanh(X @ W.T + b)
    J = (1 - Y**2)[:, :, None] * W[None]
    return X, Y, J


# ------------------------------------------------------------------------------------------------
# the numpy/scipy reference pipeline (same algorithm, written with the standard tools)


def scipy_pipeline(Y, C, k, n_comp, k_eps=10, tol=1e-9, threads=2):
    import scipy.sparse as sp
    from scipy.sparse.linalg import eigsh
    from scipy.spatial import cKDTree

    times = {}
    t0 = time.perf_counter()
    n = Y.shape[0]
    kc = 3 * k
    _, cand = cKDTree(Y).query(Y, kc + 1, workers=threads)
    cand = cand[:, 1:]
    times["knn"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx = np.empty((n, k), dtype=np.int64)
    d2 = np.empty((n, k))
    for s in range(0, n, 5000):
        e = min(n, s + 5000)
        diff = Y[cand[s:e]] - Y[s:e, None, :]
        q = np.einsum("nka,nab,nkb->nk", diff, C[s:e], diff)
        q += np.einsum("nka,nkab,nkb->nk", diff, C[cand[s:e]], diff)
        part = np.argpartition(q, k - 1, axis=1)[:, :k]
        qq = np.take_along_axis(q, part, 1)
        order = np.argsort(qq, axis=1)
        idx[s:e] = np.take_along_axis(cand[s:e], np.take_along_axis(part, order, 1), 1)
        d2[s:e] = np.take_along_axis(qq, order, 1)
    eps = float(np.median(d2[:, k_eps - 1]))
    rows = np.repeat(np.arange(n), k)
    S = sp.csr_matrix((np.exp(-d2.ravel() / (2 * eps)), (rows, idx.ravel())), shape=(n, n))
    K = S.maximum(S.T) + sp.identity(n, format="csr")
    p = np.asarray(K.sum(axis=1)).ravel()
    Pi = sp.diags(1 / p)
    Wm = Pi @ K @ Pi
    qv = np.asarray(Wm.sum(axis=1)).ravel()
    Qi = sp.diags(1 / np.sqrt(qv))
    T = (Qi @ Wm @ Qi).tocsr()
    T = (T + T.T) * 0.5
    times["kernel"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    vals, vecs = eigsh(T, k=n_comp + 1, which="LA", tol=tol)
    times["eigsh"] = time.perf_counter() - t0
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    phi = vecs[:, 1:] / np.sqrt(qv)[:, None]
    return vals[1:], phi, times, T.nnz


def subspace_agreement(A, B):
    """Smallest canonical correlation between the column spaces of A and B (1 = identical)."""
    qa, _ = np.linalg.qr(A - A.mean(0))
    qb, _ = np.linalg.qr(B - B.mean(0))
    return float(np.linalg.svd(qa.T @ qb, compute_uv=False).min())


def latentbridge_row(args, Y, J, k, threads, device, n_comp=10):
    """(row, fitted DiffusionMaps): end-to-end time and memory of the estimator on ``device``,
    plus the time of each stage, calling the stage functions that ``DiffusionMaps.fit`` calls."""
    import latentbridge as lb
    from latentbridge.diffusion import graph, spectrum
    from latentbridge.diffusion.precisions import metric_factors

    params = dict(metric="mahalanobis", n_neighbors=k, n_jobs=threads, device=device, random_state=0)
    state = {}

    def ours():
        C = lb.precisions_from_jacobians(J)
        state["dm"] = lb.DiffusionMaps(n_comp, **params).fit(Y, precisions=C)

    med, best = time_call(ours, args.repeat)
    try:
        mem, _ = peak_memory_mb(ours)
    except ImportError:
        mem = None
    dm = state["dm"]
    st = {}
    t0 = time.perf_counter()
    G = metric_factors("mahalanobis", lb.precisions_from_jacobians(J), None, Y, threads)
    st["precisions"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    cand, _ = graph.euclidean_candidates(device, Y, None, dm.candidate_factor * k, threads)
    st["knn"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    idx, d2 = graph.mahalanobis_neighbors(device, Y, G, None, None, cand, k, threads)
    g = graph.kernel_graph(device, idx, d2, graph.auto_epsilon(Y, idx, d2, dm.k_epsilon),
                           dm.alpha, threads)
    st["kernel"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, _, info = spectrum.diffusion_spectrum(device, g, n_comp, tol=dm.tol, seed=0, n_threads=threads)
    st["eigsh"] = time.perf_counter() - t0
    row = {"case": "4.3 perf", "impl": f"latentbridge ({device})", "n": len(Y), "k": k,
           "threads": threads, "nnz": int(dm.kernel_matrix_.nnz), "median_s": med, "min_s": best,
           "peak_mb": mem, "t_prec": st["precisions"], "t_knn": st["knn"], "t_kernel": st["kernel"],
           "t_eigsh": st["eigsh"], "matvecs": info["n_matvec"]}
    return row, dm


def perf_rows(args, n, k, threads, device="cpu"):
    import latentbridge as lb

    _, Y, J = tanh_square(n)
    n_comp = 10
    row, dm = latentbridge_row(args, Y, J, k, threads, device, n_comp)
    rows = [row]
    if device == "cuda" and not args.skip_cpu:
        cpu_row, cpu = latentbridge_row(args, Y, J, k, threads, "cpu", n_comp)
        row["speedup"] = cpu_row["median_s"] / row["median_s"]  # over the CPU path, same run
        row["max_dlambda"] = float(np.abs(cpu.eigenvalues_ - dm.eigenvalues_).max())
        row["subspace_corr"] = subspace_agreement(cpu.embedding_, dm.embedding_)
        rows.append(cpu_row)
    if not args.skip_scipy:
        ref = {}

        def scipy_run():
            t0 = time.perf_counter()
            C = lb.precisions_from_jacobians(J)
            tp = time.perf_counter() - t0
            vals, phi, times, nnz = scipy_pipeline(Y, C, k, n_comp, tol=dm.tol, threads=threads)
            if "vals" not in ref:  # stage times of the timed run, not of the memory run
                ref.update(vals=vals, phi=phi, times=times, nnz=nnz, tp=tp)

        t_sc, _ = time_call(scipy_run, repeat=1, warmup=0)
        try:
            mem_sc, _ = peak_memory_mb(scipy_run)
        except ImportError:
            mem_sc = None
        rows.append({"case": "4.3 perf", "impl": "numpy/scipy (cKDTree + ARPACK)", "n": n, "k": k,
                     "threads": threads, "nnz": ref["nnz"], "median_s": t_sc, "min_s": t_sc,
                     "peak_mb": mem_sc, "t_prec": ref["tp"], "t_knn": ref["times"]["knn"],
                     "t_kernel": ref["times"]["kernel"], "t_eigsh": ref["times"]["eigsh"],
                     "speedup": t_sc / row["median_s"],
                     "max_dlambda": float(np.abs(ref["vals"] - dm.eigenvalues_).max()),
                     "subspace_corr": subspace_agreement(ref["phi"], dm.embedding_)})
    return rows


def square_rows(args, n, k, threads):
    import latentbridge as lb

    X, Ya, Ja = tanh_square(n, seed=1)
    r = np.random.default_rng(3)
    W = 0.8 * r.standard_normal((6, 2))
    Yb = np.tanh(X @ W.T + 0.3 * r.standard_normal(6))
    Jb = (1 - Yb**2)[:, :, None] * W[None]
    t0 = time.perf_counter()
    nt = lb.NetworkTransformation(lb.DiffusionMaps(5, metric="mahalanobis", n_neighbors=k,
                                                   n_jobs=threads, random_state=0))
    nt.fit(Ya, Yb, lb.precisions_from_jacobians(Ja), lb.precisions_from_jacobians(Jb),
           pairs=(np.arange(50), np.arange(50)))
    elapsed = time.perf_counter() - t0
    rows = []
    aligned = nt.dmap_a_.embedding_ @ nt.orthogonal_
    corr = [float(np.corrcoef(aligned[:, c], nt.dmap_b_.embedding_[:, c])[0, 1]) for c in range(5)]
    for name, dm in (("A (R^5)", nt.dmap_a_), ("B (R^6)", nt.dmap_b_)):
        g = -np.log(dm.eigenvalues_)
        rows.append({"case": "4.3 square", "impl": f"mahalanobis {name}", "n": n, "k": k,
                     "median_s": elapsed / 2,
                     "gap_ratios": " ".join(f"{v:.3f}" for v in g / g[0]),
                     "blocks": " ".join(str(len(b)) for b in nt.blocks_),
                     "aligned_corr": " ".join(f"{c:.4f}" for c in corr)})
    de = lb.DiffusionMaps(5, n_neighbors=k, n_jobs=threads, random_state=0).fit(Ya)
    g = -np.log(de.eigenvalues_)
    rows.append({"case": "4.3 square", "impl": "euclidean A (R^5)", "n": n, "k": k,
                 "gap_ratios": " ".join(f"{v:.3f}" for v in g / g[0])})
    return rows


# ------------------------------------------------------------------------------------------------
# 4.1 / 4.2: small networks trained here


class MLP:
    """1 -> h -> h -> 1 tanh network trained with Adam on mean squared error (numpy only)."""

    def __init__(self, hidden, seed):
        r = np.random.default_rng(seed)
        self.p = {"W1": r.standard_normal((1, hidden)) * 1.5, "b1": r.standard_normal(hidden) * 0.5,
                  "W2": r.standard_normal((hidden, hidden)) / np.sqrt(hidden), "b2": np.zeros(hidden),
                  "W3": r.standard_normal((hidden, 1)) / np.sqrt(hidden), "b3": np.zeros(1)}

    def hidden2(self, x):
        h1 = np.tanh(x[:, None] @ self.p["W1"] + self.p["b1"])
        return h1, np.tanh(h1 @ self.p["W2"] + self.p["b2"])

    def jacobian2(self, x):
        """d h2 / d x, shape (n, h, 1)."""
        h1, h2 = self.hidden2(x)
        dh1 = (1 - h1**2) * self.p["W1"][0]
        return ((1 - h2**2) * (dh1 @ self.p["W2"]))[:, :, None]

    def train(self, f, steps=3000, lr=3e-3, seed=0):
        r = np.random.default_rng(seed)
        m = {k: np.zeros_like(v) for k, v in self.p.items()}
        v = {k: np.zeros_like(v) for k, v in self.p.items()}
        for t in range(1, steps + 1):
            x = r.uniform(-1, 1, 256)
            y = f(x)[:, None]
            h1, h2 = self.hidden2(x)
            out = h2 @ self.p["W3"] + self.p["b3"]
            g_out = 2 * (out - y) / len(x)
            grads = {"W3": h2.T @ g_out, "b3": g_out.sum(0)}
            g2 = (g_out @ self.p["W3"].T) * (1 - h2**2)
            grads["W2"], grads["b2"] = h1.T @ g2, g2.sum(0)
            g1 = (g2 @ self.p["W2"].T) * (1 - h1**2)
            grads["W1"], grads["b1"] = x[None, :] @ g1, g1.sum(0)
            for k in self.p:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                self.p[k] -= lr * (m[k] / (1 - 0.9**t)) / (np.sqrt(v[k] / (1 - 0.999**t)) + 1e-8)
        x = np.linspace(-1, 1, 512)
        _, h2 = self.hidden2(x)
        return float(np.mean((h2 @ self.p["W3"] + self.p["b3"] - f(x)[:, None]) ** 2))


def network_rows(args, threads):
    import latentbridge as lb

    rows = []
    tasks = {"4.1 tanh(2x)": lambda x: np.tanh(2 * x), "4.2 sin(pi x)": lambda x: np.sin(np.pi * x)}
    n, q, sigma = 1000, 15, 0.01
    for ti, (name, f) in enumerate(tasks.items()):
        t0 = time.perf_counter()
        nets = [MLP(8, seed=10 * ti + s) for s in (1, 2)]
        mses = [net.train(f, seed=s) for s, net in enumerate(nets)]
        t_train = time.perf_counter() - t0
        rng = np.random.default_rng(ti)
        x = rng.uniform(-1, 1, n)
        xt = rng.uniform(-0.95, 0.95, 300)
        Ys = [net.hidden2(x)[1] for net in nets]
        bursts = [np.stack([net.hidden2(x + sigma * rng.standard_normal(n))[1] for _ in range(q)], 1)
                  for net in nets]
        truth = np.cos(np.pi * (x + 1) / 2)
        for prec in ("bursts+ridge", "jacobian", "euclidean"):
            if prec == "bursts+ridge":
                Cs = [lb.precisions_from_neighborhoods(B, ridge=0.1) for B in bursts]
            elif prec == "jacobian":
                Cs = [lb.precisions_from_jacobians(net.jacobian2(x)) for net in nets]
            else:
                Cs = [None, None]
            metric = "euclidean" if prec == "euclidean" else "mahalanobis"
            nt = lb.NetworkTransformation(lb.DiffusionMaps(1, metric=metric, n_neighbors=20,
                                                           n_jobs=threads, random_state=0))
            nt.fit(Ys[0], Ys[1], Cs[0], Cs[1], pairs=(np.arange(5), np.arange(5)))
            pa, pb = nt.dmap_a_.embedding_[:, 0], nt.dmap_b_.embedding_[:, 0]
            Yat = nets[0].hidden2(xt)[1]
            Ybt = nets[1].hidden2(xt)[1]
            Ct = None
            if prec == "jacobian":
                Ct = lb.precisions_from_jacobians(nets[0].jacobian2(xt))
            elif prec == "bursts+ridge":
                Bt = np.stack([nets[0].hidden2(xt + sigma * rng.standard_normal(len(xt)))[1]
                               for _ in range(q)], 1)
                Ct = lb.precisions_from_neighborhoods(Bt, ridge=0.1)
            pred = nt.transform(Yat, Ct)
            rows.append({"case": name, "impl": prec, "n": n, "train_s": t_train,
                         "train_mse": " ".join(f"{v:.1e}" for v in mses),
                         "corr_AB": float(abs(np.corrcoef(pa, pb)[0, 1])),
                         "corr_A_truth": float(abs(np.corrcoef(pa, truth)[0, 1])),
                         "T_rmse_over_std": float(np.sqrt(np.mean((pred - Ybt) ** 2)) / Ybt.std())})
    return rows


def run(args):
    n = args.n or (10_000 if args.quick else 100_000)
    rows = perf_rows(args, n, args.neighbors, args.threads, args.device)
    if not args.skip_square:
        rows += square_rows(args, min(n, 20_000) if args.quick else n, args.neighbors, args.threads)
    if not args.skip_networks:
        rows += network_rows(args, args.threads)
    return rows
