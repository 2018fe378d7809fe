"""Compare two models' activations end to end: similarity, topology, alignment, retrieval.

Usage:
    python examples/compare_two_models.py                     # two networks trained here on the digits
    python examples/compare_two_models.py A.npy B.npy [labels.npy]

A and B are activations of two models on the same inputs, in the same order (rows are inputs).
Without files, two small networks of different architectures and seeds are trained on scikit-learn's
bundled digits (a few seconds on a CPU) and their penultimate activations on held-out images are used.
"""

import sys

import numpy as np

import latentbridge as lb


def load_inputs(argv):
    if len(argv) >= 2:
        A, B = np.load(argv[0]), np.load(argv[1])
        labels = np.load(argv[2]) if len(argv) > 2 else None
        return A.reshape(len(A), -1), B.reshape(len(B), -1), labels, "A", "B"
    from latentbridge.datasets import digits_networks

    data, nets = digits_networks()
    a, b = nets["relu", 0], nets["tanh", 1]
    return a.features(data.X_test), b.features(data.X_test), data.y_test, "relu-seed0", "tanh-seed1"


def main(argv):
    A, B, labels, name_a, name_b = load_inputs(argv)
    n = len(A)
    print(f"{name_a}: {A.shape}   {name_b}: {B.shape}")

    # 1. Did they learn the same thing? Statistical and topological similarity.
    print(f"linear CKA            {lb.cka(A, B):.4f}")
    print(f"debiased CKA          {lb.cka(A, B, debiased=True):.4f}")
    print(f"SVCCA                 {lb.svcca(A, B):.4f}")
    print(f"mutual 10-NN          {lb.mutual_knn(A, B, k=10):.4f}")
    print(f"RTD                   {lb.rtd(A, B, trials=5, batch=min(500, n), seed=0, n_jobs=-1):.4f}")

    # 2. How do I translate one into the other? Fit on half, measure on the other half.
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    fit, test = order[: n // 2], order[n // 2:]
    for label, est in [("orthogonal", lb.Procrustes(scale=True)), ("linear", lb.LinearMap()),
                       ("ridge, CV", lb.RidgeMap(alphas=[1e-3, 1e-2, 1e-1, 1, 10, 100]))]:
        est.fit(A[fit], B[fit])
        print(f"{label:<12} map: held-out R^2 {est.score(A[test], B[test]):.4f}, "
              f"top-1 retrieval {lb.top_k_accuracy(est.transform(A[test]), B[test], k=1):.4f}")

    # 3. Model-independent coordinates: relative representations on 100 shared anchors.
    anchors = order[:100]
    R_a = lb.relative_representation(A, A[anchors])
    R_b = lb.relative_representation(B, B[anchors])
    print(f"MRR absolute {lb.mrr(A, B) if A.shape[1] == B.shape[1] else float('nan'):.4f}"
          f" -> relative {lb.mrr(R_a, R_b):.4f}")

    # 4. Diffusion-map embeddings of each model, compared up to rotation.
    E_a = lb.DiffusionMaps(n_components=4, random_state=0).fit(A).embedding_
    E_b = lb.DiffusionMaps(n_components=4, random_state=0).fit(B).embedding_
    print(f"diffusion maps (4 coordinates) agree with CKA {lb.cka(E_a, E_b):.4f}")
    if labels is not None:
        print("class structure kept by both:", ", ".join(
            f"{lb.cka(E, np.eye(labels.max() + 1)[labels]):.3f}" for E in (E_a, E_b)))


if __name__ == "__main__":
    main(sys.argv[1:])
