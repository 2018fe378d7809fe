"""Seed 003: relative geodesic representations (Yu, Inal, Arvanitidis, Hauberg, Locatello, Fumero).

Autoencoders trained here on scikit-learn's digits (MLP across two seeds, and a CNN). Each sample
is described relative to the same anchor samples, in each network's own latent space:

* cosine relative representation (Moschella et al.): ``cos(z, z_a)`` per anchor;
* relative geodesic representation: the pullback length (and energy) of the straight latent path
  from z to each anchor through the network's own decoder, 8 steps (``RelativeGeodesic``).

Retrieval: test sample i of network A should retrieve sample i of network B (MRR with cosine
between relative vectors, A -> B, and symmetrised: the mean of A -> B and B -> A). Zero-shot
stitching: a ridge decoder (relative vector -> image) and a logistic-regression classifier trained
on A's relative vectors are applied unchanged to B's; reported as the image MSE ratio (B's vectors
against A's own) and the accuracy.

True geodesics: for random pairs of test codes, a path of 32 segments with fixed end points is
optimised (Adam on its interior points) to minimise the discretised pullback energy
``(K / 2) sum_j ||D(g_j) - D(g_{j-1})||^2``; the paper reports that the straight-line proxy with 8
points ranks pairs like the true geodesic energies with Spearman > 0.99.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import (
    check_seed,
    check_size,
    digits_data,
    numpy_forward,
    row,
    torch_module,
    torch_threads,
    train_autoencoder,
)

SIZES = {
    "full": {"epochs": 60, "batch": 64, "lr": 2e-3, "latent": 10, "anchors": 100, "train": 1000,
             "queries": 500, "pairs": 60, "segments": 32, "iters": 400},
    "smoke": {"epochs": 4, "batch": 128, "lr": 5e-3, "latent": 8, "anchors": 25, "train": 150,
              "queries": 80, "pairs": 12, "segments": 16, "iters": 40},
}


def _relatives(Z_by_split, anchors, decoder, kind):
    import latentbridge as lb

    if kind == "cosine":
        return {k: lb.relative_representation(Z, anchors) for k, Z in Z_by_split.items()}
    torch = torch_module()
    rg = lb.RelativeGeodesic(decoder, n_steps=8, quantity=kind).fit(
        torch.as_tensor(anchors, dtype=torch.float32))
    return {k: rg.transform(torch.as_tensor(Z, dtype=torch.float32)) for k, Z in Z_by_split.items()}


def geodesic_energies_optimised(decoder, z0, z1, segments, iters, seed):
    """Energies of paths z0[p] -> z1[p] (fixed ends) minimising the discretised pullback energy.

    Returns (straight-line energies, optimised energies) at ``segments`` segments, both
    ``(K / 2) sum_j ||D(g_j) - D(g_{j-1})||^2``.
    """
    torch = torch_module()
    torch.manual_seed(seed)
    a = torch.as_tensor(z0, dtype=torch.float32)
    b = torch.as_tensor(z1, dtype=torch.float32)
    t = torch.linspace(0.0, 1.0, segments + 1)[1:-1]
    inner = ((1 - t)[None, :, None] * a[:, None, :] + t[None, :, None] * b[:, None, :])
    inner = inner.clone().requires_grad_(True)
    for p in decoder.parameters():
        p.requires_grad_(False)

    def energies(mid):
        path = torch.cat([a[:, None], mid, b[:, None]], dim=1)
        out = decoder(path.reshape(-1, path.shape[-1])).reshape(path.shape[0], path.shape[1], -1)
        return 0.5 * segments * ((out[:, 1:] - out[:, :-1]) ** 2).sum(dim=(1, 2))

    with torch.no_grad():
        straight = energies(inner).double().numpy()
    opt = torch.optim.Adam([inner], lr=1e-2)
    for _ in range(iters):
        opt.zero_grad()
        energies(inner).sum().backward()
        opt.step()
    with torch.no_grad():
        best = energies(inner).double().numpy()
    return straight, np.minimum(best, straight)


def run(size="full", seed=0):
    """Run the experiment; returns rows (experiment, quantity, ours, published, note)."""
    from scipy.stats import spearmanr
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    import latentbridge as lb

    cfg = SIZES[check_size(size)]
    seed = check_seed(seed)
    Xtr, Xte, ytr, yte = digits_data(seed)
    rng = np.random.default_rng(seed)
    anchor_idx = rng.choice(Xtr.shape[0], cfg["anchors"], replace=False)
    fit_idx = rng.choice(Xtr.shape[0], min(cfg["train"], Xtr.shape[0]), replace=False)
    q_idx = rng.choice(Xte.shape[0], min(cfg["queries"], Xte.shape[0]), replace=False)
    X_fit, y_fit, X_q, y_q = Xtr[fit_idx], ytr[fit_idx], Xte[q_idx], yte[q_idx]
    rows = []
    with torch_threads():
        kw = {"epochs": cfg["epochs"], "image_shape": (8, 8), "lr": cfg["lr"],
              "batch_size": cfg["batch"]}
        nets = {f"MLP seed {seed}": train_autoencoder(Xtr, "mlp", cfg["latent"], seed, **kw),
                f"MLP seed {seed + 1}": train_autoencoder(Xtr, "mlp", cfg["latent"], seed + 1, **kw),
                f"CNN seed {seed + 2}": train_autoencoder(Xtr, "cnn", cfg["latent"], seed + 2, **kw)}
        rel = {}
        for name, (enc, dec) in nets.items():
            Z = {"fit": numpy_forward(enc, X_fit), "q": numpy_forward(enc, X_q)}
            anchors = numpy_forward(enc, Xtr[anchor_idx])
            for kind in ("cosine", "length", "energy"):
                rel[name, kind] = _relatives(Z, anchors, dec, kind)
        names = list(nets)
        for a, b in ((names[0], names[1]), (names[0], names[2])):
            exp = f"digits AEs: {a} vs {b} ({cfg['anchors']} anchors)"
            absolute = lb.mrr(numpy_forward(nets[a][0], X_q), numpy_forward(nets[b][0], X_q))
            rows.append(row(exp, "retrieval MRR, absolute latents", absolute, None,
                            f"{X_q.shape[0]} test queries; chance ~ {np.log(X_q.shape[0]) / X_q.shape[0]:.3f}"))
            for kind, label in (("cosine", "cosine relative"), ("length", "geodesic length"),
                                ("energy", "geodesic energy")):
                RA, RB = rel[a, kind], rel[b, kind]
                m_ab = lb.mrr(RA["q"], RB["q"])
                m_sym = 0.5 * (m_ab + lb.mrr(RB["q"], RA["q"]))
                claim = "higher than cosine" if kind != "cosine" else None
                rows.append(row(exp, f"retrieval MRR A->B, {label}", m_ab, claim, ""))
                rows.append(row(exp, f"retrieval MRR symmetrised, {label}", m_sym, claim, ""))
                scale = RA["fit"].std() or 1.0
                dec = Ridge(alpha=1.0).fit(RA["fit"] / scale, X_fit)
                own = float(np.mean((dec.predict(RA["q"] / scale) - X_q) ** 2))
                other = float(np.mean((dec.predict(RB["q"] / scale) - X_q) ** 2))
                rows.append(row(exp, f"zero-shot stitching image MSE B / A, {label}",
                                other / own, "lower than cosine" if kind != "cosine" else None,
                                f"ridge decoder on A's vectors; A's own MSE {own:.4g}"))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    clf = LogisticRegression(max_iter=300).fit(RA["fit"] / scale, y_fit)
                rows.append(row(exp, f"zero-shot stitching accuracy on B, {label}",
                                float(clf.score(RB["q"] / scale, y_q)),
                                "higher than cosine" if kind != "cosine" else None,
                                f"on A itself {clf.score(RA['q'] / scale, y_q):.4f}"))
        enc, dec = nets[names[0]]
        Zq = numpy_forward(enc, X_q)
        i, j = rng.choice(Zq.shape[0], 2 * cfg["pairs"], replace=False).reshape(2, -1)  # i != j
        proxy = np.diag(lb.geodesic_energies(Zq[i], Zq[j], lambda z: numpy_forward(dec, z),
                                             n_steps=8)) if cfg["pairs"] <= 200 else None
        straight, geo = geodesic_energies_optimised(dec, Zq[i], Zq[j], cfg["segments"],
                                                    cfg["iters"], seed)
    exp = f"true geodesics vs straight-line proxy ({cfg['pairs']} pairs, {names[0]})"
    rows.append(row(exp, "Spearman(proxy 8 points, optimised geodesic energy)",
                    float(spearmanr(proxy, geo).statistic), "> 0.99",
                    f"geodesic: {cfg['segments']} segments, {cfg['iters']} Adam steps"))
    rows.append(row(exp, "mean optimised / straight-line energy", float(np.mean(geo / straight)),
                    "<= 1", "how much shorter the optimised paths are"))
    return rows
