"""Seed 004: Representation Topology Divergence (Barannikov, Trofimov, Balabin & Burnaev).

On small CNNs (``cnn-small``: two convolutions and a 32-unit layer) trained here on scikit-learn's
digits, with RTD (``lb.rtd``, one trial on a fixed subset of test images) and linear CKA:

* training dynamics: the penultimate features after each epoch against the final network (RTD and
  linear CKA) and against the previous epoch; the paper finds RTD to the final network falling as
  training converges (Kendall tau of epoch vs RTD reported, negative when it falls);
* layer x layer RTD between two seeds (conv1, conv2, fc), saved as a heatmap;
* an ensemble of seeds: pairwise Disagreement (fraction of test predictions that differ) against
  pairwise RTD of the penultimate features, and their correlation;
* the (classical) MDS map of the all-pairs RTD matrix of the ensemble (plus the untrained
  network), saved as a plot;
* the synthetic experiments of the paper's official notebooks (clusters: 300 points in 60 groups
  placed on k = 2..12 cluster centres; rings: 5 rings, 1..5 of them the same unit circle, against
  1): Kendall tau between the number of clusters / duplicated rings and each measure's raw value
  (CKA, SVCCA, IMD, RTD; the paper's table matches raw similarities, not 1 - similarity) beside the
  paper's values (0.23 / 0.14 / 0.43 for clusters, -0.2 / -0.2 / 0.9 for rings, in the order CKA,
  SVCCA, IMD; RTD 1.0 and 0.8 in the official notebooks).
"""

from __future__ import annotations

import pathlib

import numpy as np

from . import (
    check_seed,
    check_size,
    digits_data,
    numpy_forward,
    row,
    torch_threads,
    train_classifier,
)

SIZES = {
    "full": {"epochs": 30, "batch": 64, "lr": 2e-3, "n_rtd": 300, "ensemble": 5, "every": 3,
             "clusters": (2, 3, 4, 5, 6, 10, 12), "rtd_synthetic": True},
    "smoke": {"epochs": 4, "batch": 128, "lr": 5e-3, "n_rtd": 80, "ensemble": 3, "every": 2,
              "clusters": (2, 4, 6, 12), "rtd_synthetic": False},
}
LAYERS = {"conv1": 2, "conv2": 4, "fc": 7}  # cnn-small body: outputs of its ReLUs
# Kendall tau of each measure's raw value (similarities CKA and SVCCA as they are, so a measure
# that tracks the change would give a tau near -1 for them and near +1 for IMD and RTD)
PUBLISHED_TAU = {"clusters": {"CKA": 0.23, "SVCCA": 0.14, "IMD": 0.43, "RTD": 1.0},
                 "rings": {"CKA": -0.2, "SVCCA": -0.2, "IMD": 0.9, "RTD": 0.8}}
HERE = pathlib.Path(__file__).resolve().parent


def _rtd(P, Q, seed):
    import latentbridge as lb

    return float(lb.rtd(P, Q, trials=1, batch=P.shape[0], seed=seed))


def _layer(body, X, index):
    return numpy_forward(body[:index + 1], X)


def clusters_pair(k, seed=7):
    """The notebook's clusters: 60 groups of 5 Gaussian points, then the groups moved to k centres."""
    rng = np.random.RandomState(seed)
    groups = np.stack([rng.multivariate_normal(np.zeros(2), np.eye(2), 5) for _ in range(60)])
    angle = 2 * np.pi * (np.arange(60) % k) / k
    centres = 10 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return groups.reshape(-1, 2), (groups + centres[:, None, :]).reshape(-1, 2)


def rings_cloud(n_unit, n_rings=5, per_ring=100):
    """The notebook's rings: ``n_rings`` circles of ``per_ring`` points; the first ``n_unit`` are the
    unit circle (duplicated), the others have radii 1 + 0.25, 1 - 0.25, 1 + 0.5, 1 - 0.5, ... ."""
    others = np.arange(n_rings - n_unit)
    steps = 0.25 * (others // 2 + 1) * np.where(others % 2 == 0, 1.0, -1.0)
    radii = np.concatenate([np.ones(n_unit), 1.0 + steps])
    t = 2 * np.pi * np.arange(per_ring) / per_ring
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)
    return (radii[:, None, None] * circle[None]).reshape(-1, 2)


def _synthetic_rows(cfg, seed):
    from scipy.stats import kendalltau

    import latentbridge as lb
    from latentbridge.measures import imd

    measures = {"CKA": lambda P, Q: lb.cka(P, Q),
                "SVCCA": lambda P, Q: lb.svcca(P, Q),
                "IMD": lambda P, Q: imd(P, Q, random_state=seed)}
    if cfg["rtd_synthetic"]:
        measures["RTD"] = lambda P, Q: _rtd(P, Q, seed)
    cases = {"clusters": [(k, *clusters_pair(k)) for k in cfg["clusters"]],
             "rings": [(k, rings_cloud(1), rings_cloud(k)) for k in range(1, 6)]}
    rows = []
    for case, pairs in cases.items():
        ks = [k for k, _, _ in pairs]
        for name, fn in measures.items():
            vals = [fn(P, Q) for _, P, Q in pairs]
            tau = float(kendalltau(ks, vals).statistic)
            rows.append(row(f"synthetic {case} (Kendall tau with the number of "
                            f"{'clusters' if case == 'clusters' else 'duplicated unit rings'})", name,
                            tau, PUBLISHED_TAU[case][name],
                            "values " + " ".join(f"{v:.3g}" for v in vals)))
    return rows


def classical_mds(D, n_components=2):
    """Classical (Torgerson) MDS: top eigenvectors of ``-J D^2 J / 2`` scaled by sqrt(eigenvalue)."""
    n = D.shape[0]
    J = np.eye(n) - 1.0 / n
    vals, vecs = np.linalg.eigh(-0.5 * J @ (D ** 2) @ J)
    top = np.argsort(vals)[::-1][:n_components]
    return vecs[:, top] * np.sqrt(np.maximum(vals[top], 0.0))


def _plots(out_dir, heat, layer_names, coords, labels):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    im = ax.imshow(heat, cmap="viridis")
    ax.set_xticks(range(len(layer_names)), layer_names)
    ax.set_yticks(range(len(layer_names)), layer_names)
    ax.set_xlabel("network B layer")
    ax.set_ylabel("network A layer")
    fig.colorbar(im, ax=ax, label="RTD")
    fig.tight_layout()
    heat_path = out_dir / "papers-004-layers-rtd.png"
    fig.savefig(heat_path, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.scatter(coords[:, 0], coords[:, 1])
    for (x, y), label in zip(coords, labels):
        ax.annotate(label, (x, y))
    ax.set_title("MDS of the all-pairs RTD matrix")
    fig.tight_layout()
    mds_path = out_dir / "papers-004-mds.png"
    fig.savefig(mds_path, dpi=100)
    plt.close(fig)
    return heat_path, mds_path


def run(size="full", seed=0, out_dir=None):
    """Run the experiment; returns rows (experiment, quantity, ours, published, note).

    Plots go to ``out_dir`` (default bench/results).
    """
    from scipy.stats import kendalltau, pearsonr

    import latentbridge as lb
    from latentbridge.measures import disagreement

    cfg = SIZES[check_size(size)]
    seed = check_seed(seed)
    out_dir = pathlib.Path(out_dir) if out_dir is not None else HERE.parent / "results"
    Xtr, Xte, ytr, yte = digits_data(seed)
    sub = np.random.default_rng(seed).choice(Xte.shape[0], cfg["n_rtd"], replace=False)
    Xs = Xte[sub]
    snapshots = {}

    def record(model, epoch):
        if epoch % cfg["every"] == 0 or epoch == cfg["epochs"]:
            snapshots[epoch] = numpy_forward(model[0], Xs)

    kw = {"epochs": cfg["epochs"], "lr": cfg["lr"], "batch_size": cfg["batch"]}
    rows = []
    with torch_threads():
        members = [train_classifier(Xtr, ytr, "cnn-small", seed, on_epoch=record, **kw)]
        members += [train_classifier(Xtr, ytr, "cnn-small", seed + s, **kw)
                    for s in range(1, cfg["ensemble"])]
        untrained = train_classifier(Xtr, ytr, "cnn-small", seed + 99, epochs=0)
        feats = [numpy_forward(body, Xs) for body, _ in members]
        preds = [np.argmax(numpy_forward(head, numpy_forward(body, Xte)), axis=1)
                 for body, head in members]
        layer_names = list(LAYERS)
        acts = [{n: _layer(members[m][0], Xs, i) for n, i in LAYERS.items()} for m in (0, 1)]
        untrained_feats = numpy_forward(untrained[0], Xs)

    # training dynamics
    epochs = sorted(snapshots)
    final = snapshots[epochs[-1]]
    exp = f"training dynamics (cnn-small seed {seed}, {cfg['n_rtd']} test images)"
    to_final = [_rtd(snapshots[e], final, seed) for e in epochs[:-1]]
    cka_final = [lb.cka(snapshots[e], final) for e in epochs[:-1]]
    steps = [_rtd(snapshots[a], snapshots[b], seed) for a, b in zip(epochs[:-1], epochs[1:])]
    rows.append(row(exp, "RTD to the final network, by epoch", " ".join(
        f"{e}:{v:.3g}" for e, v in zip(epochs, to_final)), "falls as training converges", ""))
    rows.append(row(exp, "Kendall tau(epoch, RTD to final)",
                    float(kendalltau(epochs[:-1], to_final).statistic), "negative", ""))
    rows.append(row(exp, "CKA to the final network, by epoch", " ".join(
        f"{e}:{v:.3g}" for e, v in zip(epochs, cka_final)), "rises as training converges", ""))
    rows.append(row(exp, "RTD between consecutive snapshots", " ".join(
        f"{a}->{b}:{v:.3g}" for a, b, v in zip(epochs[:-1], epochs[1:], steps)), None,
        f"snapshots every {cfg['every']} epochs"))

    # layer x layer
    heat = np.array([[_rtd(acts[0][a], acts[1][b], seed) for b in layer_names]
                     for a in layer_names])
    diag = float(np.mean(np.diag(heat)))
    off = float(np.mean(heat[~np.eye(len(layer_names), dtype=bool)]))
    exp = f"layer x layer RTD, seed {seed} vs seed {seed + 1}"
    rows.append(row(exp, "mean RTD, matching layers", diag, "lower than across layers",
                    "matrix " + "; ".join(" ".join(f"{v:.3g}" for v in r) for r in heat)))
    rows.append(row(exp, "mean RTD, different layers", off, None, "rows: " + " ".join(layer_names)))

    # ensemble: disagreement vs RTD
    pairs = [(a, b) for a in range(len(members)) for b in range(a + 1, len(members))]
    dis = [disagreement(preds[a], preds[b]) for a, b in pairs]
    rtds = [_rtd(feats[a], feats[b], seed) for a, b in pairs]
    exp = f"ensemble of {len(members)} seeds ({len(pairs)} pairs)"
    rows.append(row(exp, "Disagreement per pair", " ".join(f"{v:.3g}" for v in dis), None, ""))
    rows.append(row(exp, "RTD per pair", " ".join(f"{v:.3g}" for v in rtds), None, ""))
    corr = float(pearsonr(dis, rtds).statistic) if len(pairs) > 2 and np.ptp(dis) > 0 else float("nan")
    rows.append(row(exp, "Pearson(Disagreement, RTD)", corr, "positive",
                    "RTD tracks functional disagreement"))

    # MDS of the all-pairs RTD matrix (ensemble + untrained network)
    clouds = feats + [untrained_feats]
    labels = [f"seed {seed + m}" for m in range(len(members))] + ["untrained"]
    D = np.zeros((len(clouds), len(clouds)))
    for a in range(len(clouds)):
        for b in range(a + 1, len(clouds)):
            D[a, b] = D[b, a] = _rtd(clouds[a], clouds[b], seed)
    coords = classical_mds(D)
    heat_path, mds_path = _plots(out_dir, heat, layer_names, coords, labels)
    exp = "MDS map of the all-pairs RTD matrix"
    far = float(np.mean(D[-1, :-1]) / np.mean(D[:-1, :-1][np.triu_indices(len(members), 1)]))
    rows.append(row(exp, "untrained-to-trained / trained-to-trained mean RTD", far,
                    "untrained far from the trained cluster", f"plot {mds_path}"))
    rows.append(row("layer x layer heatmap", "plot", str(heat_path), None, ""))

    rows.extend(_synthetic_rows(cfg, seed))
    return rows
