"""``latentbridge demo``: the main job on an embedded dataset, end to end, no download.

Four small networks (two architectures x two seeds) are trained on scikit-learn's bundled digits in
numpy (seconds). Their penultimate activations on the held-out images are then

1. compared: linear CKA, SVCCA, mutual k-NN for every pair (:func:`compare_many`), and RTD with the
   R-Cross-Barcode for the main pair;
2. aligned on a few anchors: rigid / scaled Procrustes, linear and ridge maps, scored by the transfer
   error on held-out images and by the *stitched accuracy* (A's features -> map -> B's classifier),
   next to the analytic classifier map (which reproduces A's accuracy exactly, whatever B is);
3. re-expressed in model-independent coordinates: relative representations (cross-model retrieval
   MRR against the absolute features) and diffusion maps, Euclidean and Mahalanobis (precisions from
   the networks' Jacobians with respect to the images' intrinsic coordinates), compared with the
   diffusion map of those coordinates and across networks.

A summary table goes to stdout; ``--out`` receives ``report.html``, PNG figures and
``summary.json``.
"""

from __future__ import annotations

import html
import json
import pathlib
import sys
import time

import numpy as np

__all__ = ["run_demo", "network_jacobians"]


def network_jacobians(net, X):
    """Jacobians d features / d input of a :class:`~latentbridge.datasets.DigitsNetwork`: (n, m, 64)."""
    from .datasets import _act, _act_grad

    H = np.asarray(X, dtype=np.float64)
    J = np.broadcast_to(np.eye(H.shape[1]), (H.shape[0], H.shape[1], H.shape[1])).copy()
    for W, b, act in net.layers:
        H = _act(H @ W + b, act)
        J = _act_grad(H, act)[:, :, None] * np.einsum("ji,njk->nik", W, J)
    return J


class _Steps:
    """Progress over the demo's steps: tqdm when installed, plain lines otherwise."""

    def __init__(self, names, enabled):
        self.enabled = enabled
        self.bar = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=len(names), desc="demo", file=sys.stderr, leave=False)
            except ImportError:
                self.bar = None
        self.t0 = time.perf_counter()
        self.times = {}

    def __call__(self, name):
        now = time.perf_counter()
        if self.times:
            last = list(self.times)[-1]
            self.times[last] = now - self.times[last]
        self.times[name] = now
        if self.enabled:
            if self.bar is not None:
                self.bar.set_description(f"demo: {name}")
                self.bar.update(1)
            else:
                print(f"[demo] {name} ...", file=sys.stderr, flush=True)

    def close(self):
        if self.times:
            last = list(self.times)[-1]
            self.times[last] = time.perf_counter() - self.times[last]
        if self.bar is not None:
            self.bar.close()
        return time.perf_counter() - self.t0


def run_demo(out="latentbridge-report", *, quick=False, progress=True, seed=0, n_jobs=-1, stream=None):
    """Run the demo and write the report folder; returns the summary dict.

    Parameters
    ----------
    out : path or None
        Report folder (created); ``None`` writes nothing.
    quick : bool
        Fewer epochs and trials (a smoke run, as in the test suite).
    progress : bool
        Show progress on stderr.
    seed : int
        Seeds the anchor choice and RTD's subsampling (the networks use seeds 0 and 1).
    n_jobs : int
        CPU threads for the kernels (-1: all).
    stream : file, optional
        Where the summary table goes (default stdout).
    """
    from . import alignment, compare, diffusion, evaluation, relative, similarity, topology
    from .datasets import digits_networks

    stream = stream or sys.stdout
    steps = _Steps(["train", "compare", "rtd", "align", "relative", "dmaps", "report"], progress)
    rng = np.random.default_rng(seed)

    steps("train")
    data, nets = digits_networks(epochs=8 if quick else 30)
    key_a, key_b = ("relu", 0), ("tanh", 1)
    net_a, net_b = nets[key_a], nets[key_b]
    F_a, F_b = net_a.features(data.X_test), net_b.features(data.X_test)
    T_a, T_b = net_a.features(data.X_train), net_b.features(data.X_train)
    y = data.y_test
    names = {k: f"{k[0]}-s{k[1]}" for k in nets}
    summary = {"n_test": int(len(y)), "feature_dim": int(F_a.shape[1]),
               "networks": {names[k]: {"test_accuracy": v.test_accuracy} for k, v in nets.items()},
               "pair": [names[key_a], names[key_b]]}

    steps("compare")
    reps = {names[k]: v.features(data.X_test) for k, v in nets.items()}
    comparison = compare.compare_many(reps, metrics=("cka", "svcca", "mutual_knn"), progress=False)
    summary["similarity"] = {m: comparison[m].round(4).tolist() for m in comparison.metrics}
    summary["similarity_names"] = comparison.names
    # control: B's features with the rows shuffled (same distribution, correspondence destroyed)
    shuffled = F_b[rng.permutation(len(F_b))]
    summary["cka_pair"] = float(similarity.cka(F_a, F_b))
    summary["cka_vs_shuffled"] = float(similarity.cka(F_a, shuffled))

    steps("rtd")
    batch = min(len(y), 200 if quick else 500)
    summary["rtd_pair"] = float(topology.rtd(F_a, F_b, trials=2 if quick else 5, batch=batch, seed=seed, n_jobs=n_jobs))
    summary["rtd_vs_shuffled"] = float(topology.rtd(F_a, shuffled, trials=2 if quick else 5, batch=batch, seed=seed, n_jobs=n_jobs))
    sub = rng.choice(len(y), size=batch, replace=False)
    barcode = topology.r_cross_barcode(F_a[sub], F_b[sub], n_jobs=n_jobs)

    steps("align")
    n_anchors = 200
    anchors = rng.choice(len(data.y_train), size=n_anchors, replace=False)
    methods = {
        "rigid (orthogonal)": alignment.Procrustes(scale=False, center=True),
        "Procrustes + scale": alignment.Procrustes(scale=True, center=True),
        "linear": alignment.LinearMap(),
        "ridge (alpha=1)": alignment.RidgeMap(alpha=1.0),
    }
    align_rows = {}
    denom = float(np.sum((F_b - F_b.mean(0)) ** 2))
    for label, est in methods.items():
        est.fit(T_a[anchors], T_b[anchors])
        err = float(np.sum((est.transform(F_a) - F_b) ** 2) / denom)
        acc = float(evaluation.stitched_accuracy(F_a, y, net_b.W, net_b.b, mapping=est))
        align_rows[label] = {"relative_error": err, "stitched_accuracy": acc}
    analytic = alignment.analytic_map(net_a.W, net_b.W, net_a.b, net_b.b)
    align_rows["analytic (classifiers)"] = {
        "relative_error": float(np.sum((analytic.transform(F_a) - F_b) ** 2) / denom),
        "stitched_accuracy": float(evaluation.stitched_accuracy(F_a, y, net_b.W, net_b.b, mapping=analytic)),
    }
    summary["alignment"] = align_rows
    summary["accuracy_a"] = float(np.mean(net_a.predict(data.X_test) == y))
    summary["accuracy_b"] = float(np.mean(net_b.predict(data.X_test) == y))

    steps("relative")
    rel_anchors = rng.choice(len(data.y_train), size=64, replace=False)
    key_c = ("relu", 1)  # same architecture as A, another seed: the reference case
    mrr_rows = {}
    for label, (k1, k2) in {f"{names[key_a]} vs {names[key_b]}": (key_a, key_b),
                            f"{names[key_a]} vs {names[key_c]}": (key_a, key_c)}.items():
        n1, n2 = nets[k1], nets[k2]
        G1, G2 = n1.features(data.X_test), n2.features(data.X_test)
        A1, A2 = n1.features(data.X_train[rel_anchors]), n2.features(data.X_train[rel_anchors])
        mrr_rows[label] = {
            "absolute": float(evaluation.mrr(G1, G2)),
            **{f"relative ({sim})": float(evaluation.mrr(relative.relative_representation(G1, A1, similarity=sim),
                                                         relative.relative_representation(G2, A2, similarity=sim)))
               for sim in ("cosine", "euclidean")},
        }
    summary["mrr"] = mrr_rows

    steps("dmaps")
    # The paper's setting: inputs vary along a few intrinsic coordinates z (here the top k principal
    # components of the images, x = mean + U z), and each network's Jacobian d features / d z gives
    # rank-k precisions; the Mahalanobis embedding should then recover the diffusion map of z from
    # either network, where the Euclidean embedding of the features sees each network's distortion.
    k_intr = 6
    mean = data.X_train.mean(axis=0)
    U = np.linalg.svd(data.X_train - mean, full_matrices=False)[2][:k_intr].T
    Z = (data.X_test - mean) @ U
    X_proj = mean + Z @ U.T
    dm_kw = {"n_components": 4, "n_neighbors": 32, "random_state": seed, "n_jobs": n_jobs}
    E_true = diffusion.DiffusionMaps(**dm_kw).fit(Z).embedding_
    embeddings, dm_rows = {}, {}
    for key in (key_a, key_c, key_b):
        net = nets[key]
        F = net.features(X_proj)
        C = diffusion.precisions_from_jacobians(network_jacobians(net, X_proj) @ U)
        E_eu = diffusion.DiffusionMaps(**dm_kw).fit(F).embedding_
        E_ma = diffusion.DiffusionMaps(metric="mahalanobis", **dm_kw).fit(F, precisions=C).embedding_
        embeddings[f"Euclidean, {names[key]}"] = E_eu
        embeddings[f"Mahalanobis, {names[key]}"] = E_ma
        dm_rows[names[key]] = {"euclidean": float(similarity.cka(E_eu, E_true)),
                               "mahalanobis": float(similarity.cka(E_ma, E_true))}
    summary["dmaps_intrinsic_dims"] = k_intr
    summary["dmaps_agreement"] = dm_rows
    pa, pc = names[key_a], names[key_c]
    summary["dmaps_pair"] = {
        "pair": f"{pa} vs {pc}",
        "euclidean": float(similarity.cka(embeddings[f"Euclidean, {pa}"], embeddings[f"Euclidean, {pc}"])),
        "mahalanobis": float(similarity.cka(embeddings[f"Mahalanobis, {pa}"], embeddings[f"Mahalanobis, {pc}"])),
    }

    steps("report")
    if out is not None:
        shown = {k: v for k, v in embeddings.items() if names[key_b] not in k}
        _write_report(pathlib.Path(out), summary, comparison, barcode, y, shown)
    summary["seconds"] = steps.close()
    summary["step_seconds"] = {k: round(v, 3) for k, v in steps.times.items()}
    _print_summary(summary, stream, out)
    if out is not None:
        (pathlib.Path(out) / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _lines(s):
    a, b = s["pair"]
    yield f"latentbridge demo: digits ({s['n_test']} held-out images), features of {a} (A) vs {b} (B), d={s['feature_dim']}"
    yield ""
    yield "Similarity                        A vs B      A vs B with rows shuffled (control)"
    yield f"  linear CKA                      {s['cka_pair']:8.4f}    {s['cka_vs_shuffled']:8.4f}"
    yield f"  RTD (lower = more alike)        {s['rtd_pair']:8.4f}    {s['rtd_vs_shuffled']:8.4f}"
    yield ""
    yield f"Alignment on 200 anchors          rel. error  stitched acc.   (A alone {s['accuracy_a']:.4f}, B alone {s['accuracy_b']:.4f})"
    for label, row in s["alignment"].items():
        yield f"  {label:<30}  {row['relative_error']:8.4f}    {row['stitched_accuracy']:8.4f}"
    yield ""
    yield "Cross-model retrieval of held-out images (MRR, 1 = perfect; 64 anchors)"
    yield "  pair                          absolute  relative(cos)  relative(euclid)"
    for label, row in s["mrr"].items():
        yield (f"  {label:<28}  {row['absolute']:8.4f}  {row['relative (cosine)']:13.4f}"
               f"  {row['relative (euclidean)']:16.4f}")
    yield ""
    yield (f"Diffusion maps vs the intrinsic coordinates ({s['dmaps_intrinsic_dims']} principal components"
           " of the images); CKA of the 4 leading coordinates, 1 = same up to rotation")
    yield "  network                       Euclidean  Mahalanobis"
    for name, row in s["dmaps_agreement"].items():
        yield f"  {name:<28}  {row['euclidean']:9.4f}  {row['mahalanobis']:11.4f}"
    p = s["dmaps_pair"]
    yield f"  {p['pair']:<28}  {p['euclidean']:9.4f}  {p['mahalanobis']:11.4f}   (the two embeddings)"


def _print_summary(s, stream, out):
    for line in _lines(s):
        print(line, file=stream)
    print(f"\nfinished in {s['seconds']:.1f} s" + (f"; report in {out}/report.html" if out else ""), file=stream)


def _write_report(out, summary, comparison, barcode, labels, embeddings):
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from .plotting import plot_barcode, plot_embedding, plot_similarity_matrix
    except ImportError:
        plt = None
    if plt is not None:
        ax = plot_barcode(barcode, title="R-Cross-Barcode_1(A, B)")
        ax.figure.tight_layout()
        ax.figure.savefig(out / "barcode.png", dpi=110)
        plt.close(ax.figure)
        figures.append(("barcode.png", "R-Cross-Barcode_1 of A and B (its total length is RTD)"))
        fig, axes = plt.subplots(1, len(embeddings), figsize=(4.5 * len(embeddings), 4.5))
        for ax, (title, E) in zip(axes, embeddings.items()):
            plot_embedding(E, labels=labels, ax=ax, title=f"diffusion map, {title}")
        fig.tight_layout()
        fig.savefig(out / "embeddings.png", dpi=100)
        plt.close(fig)
        figures.append(("embeddings.png", "Diffusion-map coordinates 1-2, coloured by digit"))
        fig, axes = plt.subplots(1, len(comparison.metrics), figsize=(5.5 * len(comparison.metrics), 4.8))
        for ax, metric in zip(np.atleast_1d(axes), comparison.metrics):
            plot_similarity_matrix(comparison[metric], comparison.names, ax=ax, title=metric)
        fig.tight_layout()
        fig.savefig(out / "similarity.png", dpi=100)
        plt.close(fig)
        figures.append(("similarity.png", "Similarity of the four networks' features"))
    body = "\n".join(html.escape(line) for line in _lines(summary))
    imgs = "\n".join(f'<figure><img src="{f}" alt="{html.escape(c)}"><figcaption>{html.escape(c)}</figcaption></figure>'
                     for f, c in figures) or "<p>(install matplotlib for figures: pip install 'latentbridge[plot]')</p>"
    (out / "report.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>latentbridge demo</title>"
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto}pre{background:#f6f6f6;padding:1em}"
        "img{max-width:100%}</style></head><body><h1>latentbridge demo</h1>"
        f"<pre>{body}</pre>{imgs}</body></html>"
    )
