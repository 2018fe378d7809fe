"""Seed 002: linear maps between CNN feature spaces (McNeely-White, Beveridge & Draper).

Five classifiers of different architectures (two MLPs, three CNNs; feature widths 32-64) trained
here on scikit-learn's digits. For every ordered pair (A, B) a ridge map M (alpha by generalised
cross-validation, ``RidgeMap(alphas=...)``) is fitted from A's training features to B's, and the
test accuracy of the stitched network ``argmax(M f_A(x) W_B^T + b_B)`` is reported beside A's own
accuracy, as the % change from the source network and its median over targets (the layout of the
paper's Table 2). The analytic map ``M = pinv(W_B) W_A`` (``analytic_map``) gives exactly A's
accuracy whatever B is - shown with a random-weights network as B (the paper's control), so
accuracy after mapping alone does not prove that two networks are similar.

Open-set verification: LFW is not shipped, so the protocol runs on digits written as an LFW
``pairs.txt`` (10 folds; "same" = same digit class), read back with
``latentbridge.evaluation.read_lfw_pairs`` and scored with ``verification_accuracy``: B alone,
A -> B through a ridge map fitted per fold, and A against B with the identity map (chance, as the
paper reports for unmapped features).
"""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np

from . import (
    CLASSIFIERS,
    check_seed,
    check_size,
    digits_data,
    head_weights,
    numpy_forward,
    row,
    torch_threads,
    train_classifier,
)

SIZES = {
    "full": {"epochs": 40, "batch": 64, "lr": 2e-3, "pairs_per_fold": 25},
    "smoke": {"epochs": 4, "batch": 128, "lr": 5e-3, "pairs_per_fold": 10},
}
ALPHAS = np.logspace(-3, 3, 7)


def _accuracy(F, y, W, b):
    return float(np.mean(np.argmax(F @ W.T + b, axis=1) == y))


def _lfw_file(directory, y, per_fold, folds, rng):
    """Write digits pairs as an LFW pairs.txt: name = 'digit<c>', image k = test row of class c."""
    by_class = {c: np.flatnonzero(y == c) for c in np.unique(y)}
    lines = [f"{folds}\t{per_fold}"]
    classes = sorted(by_class)
    for _ in range(folds):
        for _ in range(per_fold):
            c = rng.choice(classes)
            i, j = rng.choice(by_class[c].size, 2, replace=False)
            lines.append(f"digit{c}\t{i + 1}\t{j + 1}")
        for _ in range(per_fold):
            c1, c2 = rng.choice(classes, 2, replace=False)
            i, j = rng.integers(by_class[c1].size), rng.integers(by_class[c2].size)
            lines.append(f"digit{c1}\t{i + 1}\tdigit{c2}\t{j + 1}")
    path = pathlib.Path(directory) / "pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path, by_class


def _rows_of_images(paths, by_class):
    """Map 'digit<c>/digit<c>_<k>.jpg' back to the test row index."""
    out = []
    for p in paths:
        name, file = p.split("/")
        c = int(name[len("digit"):])
        k = int(file.rsplit("_", 1)[1].split(".")[0])
        out.append(by_class[c][k - 1])
    return np.asarray(out)


def _verification_rows(F_te, y_te, cfg, seed):
    import latentbridge as lb
    from latentbridge.evaluation import read_lfw_pairs

    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path, by_class = _lfw_file(tmp, y_te, cfg["pairs_per_fold"], 10, rng)
        pairs = read_lfw_pairs(path)
    i1, i2 = _rows_of_images(pairs.first, by_class), _rows_of_images(pairs.second, by_class)
    a, b = "mlp-relu", "cnn-gap"  # equal widths (64), so the identity map is defined
    exp = f"verification, digits as LFW pairs.txt ({pairs.same.size} pairs, 10 folds)"
    own = lb.verification_accuracy(F_te[b][i1], F_te[b][i2], pairs.same)
    mapped = lb.verification_accuracy(F_te[a][i1], F_te[b][i2], pairs.same,
                                      mapping=lb.RidgeMap(alphas=ALPHAS))
    ident = lb.verification_accuracy(F_te[a][i1], F_te[b][i2], pairs.same)
    return [row(exp, f"{b} alone", own, None, "B's own features"),
            row(exp, f"{a} -> {b}, ridge map per fold", mapped, "close to B alone",
                "map fitted on the matched pairs of 9 folds"),
            row(exp, f"{a} vs {b}, identity map", ident, 0.5, "unmapped features: chance")]


def run(size="full", seed=0):
    """Run the experiment; returns rows (experiment, quantity, ours, published, note)."""
    import latentbridge as lb

    cfg = SIZES[check_size(size)]
    seed = check_seed(seed)
    Xtr, Xte, ytr, yte = digits_data(seed)
    F_tr, F_te, heads, acc = {}, {}, {}, {}
    with torch_threads():
        for k, arch in enumerate(CLASSIFIERS):
            body, head = train_classifier(Xtr, ytr, arch, seed + k, epochs=cfg["epochs"],
                                          lr=cfg["lr"], batch_size=cfg["batch"])
            F_tr[arch], F_te[arch] = numpy_forward(body, Xtr), numpy_forward(body, Xte)
            heads[arch] = head_weights(head)
            acc[arch] = _accuracy(F_te[arch], yte, *heads[arch])
        body, head = train_classifier(Xtr, ytr, "cnn-small", seed + 99, epochs=0)
        R_tr, R_te, R_head = numpy_forward(body, Xtr), numpy_forward(body, Xte), head_weights(head)
    rows = [row("own test accuracy", arch, acc[arch], None, f"{CLASSIFIERS[arch]} features")
            for arch in CLASSIFIERS]
    exp = "all pairs: ridge-mapped accuracy through B's head (Table 2 layout)"
    for a in CLASSIFIERS:
        changes = []
        for b in CLASSIFIERS:
            if a == b:
                continue
            M = lb.RidgeMap(alphas=ALPHAS).fit(F_tr[a], F_tr[b])
            mapped = lb.stitched_accuracy(F_te[a], yte, *heads[b], mapping=M)
            change = 100.0 * (mapped - acc[a]) / acc[a]
            changes.append(change)
            rows.append(row(exp, f"{a} -> {b}", mapped, None,
                            f"{change:+.2f} % from {a} ({acc[a]:.4f}); {b} alone {acc[b]:.4f}"))
        rows.append(row(exp, f"median % change from {a}", float(np.median(changes)),
                        "small loss (a few %)", f"over {len(changes)} targets"))
    gaps = []
    for a in CLASSIFIERS:
        for b in CLASSIFIERS:
            if a != b:
                M = lb.analytic_map(heads[a][0], heads[b][0], heads[a][1], heads[b][1])
                gaps.append(abs(lb.stitched_accuracy(F_te[a], yte, *heads[b], mapping=M) - acc[a]))
    rows.append(row("analytic map pinv(W_B) W_A", "max |mapped - source accuracy| over 20 pairs",
                    max(gaps), 0.0, "exactly A's accuracy, whatever B is"))
    exp = "random-weights control (untrained cnn-small as B)"
    src = "cnn-gap"
    rows.append(row(exp, "random network's own accuracy", _accuracy(R_te, yte, *R_head), 0.1,
                    "chance on 10 classes"))
    M = lb.analytic_map(heads[src][0], R_head[0], heads[src][1], R_head[1])
    rows.append(row(exp, f"analytic map {src} -> random", lb.stitched_accuracy(
        F_te[src], yte, *R_head, mapping=M), "= source accuracy",
        f"{src} alone {acc[src]:.4f}: accuracy after mapping proves nothing"))
    M = lb.RidgeMap(alphas=ALPHAS).fit(F_tr[src], R_tr)
    rows.append(row(exp, f"ridge map {src} -> random", lb.stitched_accuracy(
        F_te[src], yte, *R_head, mapping=M), None, "a regression map keeps B's (random) head"))
    M = lb.RidgeMap(alphas=ALPHAS).fit(R_tr, F_tr[src])
    rows.append(row(exp, f"ridge map random -> {src}", lb.stitched_accuracy(
        R_te, yte, *heads[src], mapping=M), None, "random conv features mapped into a trained head"))
    rows.extend(_verification_rows(F_te, yte, cfg, seed))
    return rows
