"""Seed 001: direct alignment of latent spaces (Lähner & Moeller), on autoencoders trained here.

Autoencoders (MLP across two seeds, and a CNN) on scikit-learn's digits and on MNIST-1D. A map T
from A's latent space to B's is fitted on paired training codes; the score is the paper's metric,
the reconstruction error of the test set decoded through B's decoder,
``mean ||D_B(T(E_A(x))) - x||^2`` (per input value), reported as a ratio to B's own error
``mean ||D_B(E_B(x)) - x||^2`` (the paper's "AE baseline"), so the ratios are comparable across
data sets: the paper's MNIST figures (latent 10, full correspondence, x 1e-3) are rigid 0.704,
linear 0.549, AE baseline 0.514, i.e. ratios 1.37 and 1.07.

Maps: rigid (``Procrustes()``: orthogonal + translation), orthogonal + scale
(``Procrustes(scale=True)``), linear (``LinearMap(fit_intercept=False)``), affine (``LinearMap()``)
and the MLP stitching baseline ``StitchingMLP(k)``. Anchor sweeps fit the affine and rigid maps on
random anchor subsets (spread over the random sets); class means (labels only) and class-restricted
ICP start without any paired sample.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from . import (
    check_seed,
    check_size,
    digits_data,
    mnist1d_data,
    numpy_forward,
    row,
    torch_threads,
    train_autoencoder,
)

SIZES = {
    "full": {"datasets": ("digits", "mnist1d"), "epochs": 60, "latent": 10, "n_mnist1d": 4000,
             "anchors": (10, 20, 50, 100, 300), "anchor_sets": 5, "mlp_k": (1, 2, 4),
             "mlp_iter": 400, "batch": 64, "lr": 2e-3},
    "smoke": {"datasets": ("digits",), "epochs": 5, "latent": 8, "n_mnist1d": 600,
              "anchors": (10, 200), "anchor_sets": 2, "mlp_k": (1,), "mlp_iter": 30, "batch": 128,
              "lr": 5e-3},
}
# Lähner & Moeller, MNIST, latent 10, full correspondence: error x 1e-3 / AE baseline 0.514
PUBLISHED_RATIO = {"rigid": round(0.704 / 0.514, 2), "linear": round(0.549 / 0.514, 2)}
IMAGE_SHAPE = {"digits": (8, 8), "mnist1d": (40,)}


def _data(name, cfg, seed):
    if name == "digits":
        return digits_data(seed)
    return mnist1d_data(cfg["n_mnist1d"], seed)


def _maps(cfg, seed):
    import latentbridge as lb

    maps = {"rigid": lb.Procrustes(), "orthogonal+scale": lb.Procrustes(scale=True),
            "linear": lb.LinearMap(fit_intercept=False), "affine": lb.LinearMap()}
    for k in cfg["mlp_k"]:
        maps[f"MLP k={k}"] = lb.StitchingMLP(k=k, max_iter=cfg["mlp_iter"], random_state=seed)
    return maps


def _error(decoder, Z, X):
    """Per-value reconstruction MSE of ``decoder(Z)`` against X."""
    return float(np.mean((numpy_forward(decoder, Z) - X) ** 2))


def _pair_rows(name, label, A, B, Xtr, Xte, ytr, cfg, seed):
    import latentbridge as lb

    (enc_a, _), (enc_b, dec_b) = A, B
    Za_tr, Zb_tr = numpy_forward(enc_a, Xtr), numpy_forward(enc_b, Xtr)
    Za_te, Zb_te = numpy_forward(enc_a, Xte), numpy_forward(enc_b, Xte)
    base = _error(dec_b, Zb_te, Xte)
    exp = f"{name}: {label}"
    rows = [row(exp, "B's own test MSE (AE baseline)", base, 0.514e-3,
                "published: MNIST, latent 10 (their units differ; compare the ratios)"),
            row(exp, "error / baseline, no alignment", _error(dec_b, Za_te, Xte) / base, None,
                "A's codes fed to B's decoder as they are")]
    ratios = {}
    for method, est in _maps(cfg, seed).items():
        with warnings.catch_warnings():  # the MLP's iteration budget is part of the setting
            warnings.simplefilter("ignore", ConvergenceWarning)
            T = est.fit(Za_tr, Zb_tr)
        ratios[method] = _error(dec_b, T.transform(Za_te), Xte) / base
        rows.append(row(exp, f"error / baseline, {method}", ratios[method],
                        PUBLISHED_RATIO.get(method), "all training pairs as anchors"))
    rng = np.random.default_rng(seed)
    for n in cfg["anchors"]:
        n = min(n, Za_tr.shape[0])
        for method in ("affine", "rigid"):
            vals = []
            for _ in range(cfg["anchor_sets"]):
                idx = rng.choice(Za_tr.shape[0], n, replace=False)
                T = (lb.LinearMap() if method == "affine" else lb.Procrustes()).fit(
                    Za_tr[idx], Zb_tr[idx])
                vals.append(_error(dec_b, T.transform(Za_te), Xte) / base)
            rows.append(row(exp, f"error / baseline, {method}, {n} anchors", float(np.mean(vals)),
                            "falls with more anchors",
                            f"+- {np.std(vals):.3g} over {cfg['anchor_sets']} random anchor sets"))
    ma, classes = lb.class_means(Za_tr, ytr)
    mb, _ = lb.class_means(Zb_tr, ytr)
    for method, est in (("rigid", lb.Procrustes()), ("affine", lb.LinearMap())):
        T = est.fit(ma, mb)
        rows.append(row(exp, f"error / baseline, {method}, class-mean anchors",
                        _error(dec_b, T.transform(Za_te), Xte) / base, None,
                        f"{classes.size} anchors from labels only"))
    for method, est in (("rigid", lb.Procrustes()), ("affine", lb.LinearMap())):
        icp = lb.ICP(estimator=est, max_iter=30).fit(Za_tr, Zb_tr, ytr, ytr)
        rows.append(row(exp, f"error / baseline, class-restricted ICP ({method})",
                        _error(dec_b, icp.transform(Za_te), Xte) / base,
                        "degrades vs class means",
                        f"{icp.n_iter_} iterations, converged={icp.converged_}"))
    return rows, ratios


def run(size="full", seed=0):
    """Run the experiment; returns rows (experiment, quantity, ours, published, note)."""
    cfg = SIZES[check_size(size)]
    seed = check_seed(seed)
    rows = []
    with torch_threads():
        for name in cfg["datasets"]:
            Xtr, Xte, ytr, _ = _data(name, cfg, seed)
            shape = IMAGE_SHAPE[name]
            kw = {"epochs": cfg["epochs"], "image_shape": shape, "lr": cfg["lr"],
                  "batch_size": cfg["batch"]}
            mlp_a = train_autoencoder(Xtr, "mlp", cfg["latent"], seed, **kw)
            mlp_b = train_autoencoder(Xtr, "mlp", cfg["latent"], seed + 1, **kw)
            cnn = train_autoencoder(Xtr, "cnn", cfg["latent"], seed + 2, **kw)
            for label, A, B in ((f"MLP seed {seed} -> MLP seed {seed + 1}", mlp_a, mlp_b),
                                (f"MLP seed {seed} -> CNN seed {seed + 2}", mlp_a, cnn)):
                got, _ = _pair_rows(name, label, A, B, Xtr, Xte, ytr, cfg, seed)
                rows.extend(got)
    return rows
