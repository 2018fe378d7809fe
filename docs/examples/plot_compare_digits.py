"""
Did two networks learn the same thing?
======================================

Two small networks of different architectures and seeds, trained here on scikit-learn's digits, are
compared on the same held-out images with linear CKA, SVCCA and RTD. Shuffling one model's rows keeps
each representation's geometry but breaks the pairing: every index should collapse to its "unrelated"
value, which is the control that makes the first numbers meaningful.
"""

import matplotlib.pyplot as plt
import numpy as np

import latentbridge as lb
from latentbridge.datasets import digits_networks
from latentbridge.plotting import plot_barcode, plot_similarity_matrix

data, nets = digits_networks()  # 2 architectures x 2 seeds, a few seconds
A = nets["relu", 0].features(data.X_test)
B = nets["tanh", 1].features(data.X_test)
shuffled = B[np.random.default_rng(0).permutation(len(B))]
print(f"A {A.shape}, B {B.shape}")

for name, other in (("paired rows", B), ("shuffled rows", shuffled)):
    print(f"{name:14s} CKA {lb.cka(A, other):.3f}  SVCCA {lb.svcca(A, other):.3f}  "
          f"RTD {lb.rtd(A, other, trials=3, batch=200, seed=0):.2f}")

# %%
# The four networks against each other
# ------------------------------------
# :func:`latentbridge.compare_many` runs every pair and returns labelled matrices.

reps = {f"{arch}-{seed}": net.features(data.X_test) for (arch, seed), net in nets.items()}
result = lb.compare_many(reps, metrics=("cka",), progress=False)
print(result.to_pandas("cka").round(3))
plot_similarity_matrix(result, title="linear CKA between the digits networks")
plt.tight_layout()

# %%
# The R-Cross-Barcode behind RTD
# ------------------------------
# RTD sums the lengths of these H1 bars; the shuffled pairing has many more long bars.

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
for ax, (name, other) in zip(axes, (("paired", B), ("shuffled", shuffled))):
    bars = lb.r_cross_barcode(A[:200], other[:200], dim=1)
    plot_barcode(bars, ax=ax, title=f"{name}: {len(bars)} H1 bars")
fig.tight_layout()
