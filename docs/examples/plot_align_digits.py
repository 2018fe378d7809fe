"""
Translating one network's features into another's
=================================================

Rigid (Procrustes), linear and ridge maps are fitted on 300 paired rows and scored on the rest
(R\\ :sup:`2` of the predicted target features). The stitched accuracy reads the mapped features with the
target network's own classifier; the analytic map, built from the two classifier heads alone, reproduces
the source network's accuracy exactly.
"""

import matplotlib.pyplot as plt

import latentbridge as lb
from latentbridge.datasets import digits_networks

data, nets = digits_networks()
src, dst = nets["relu", 0], nets["relu", 1]
A, B, y = src.features(data.X_test), dst.features(data.X_test), data.y_test
train, test = slice(0, 300), slice(300, None)

maps = {
    "Procrustes": lb.Procrustes(scale=True),
    "linear": lb.LinearMap(),
    "ridge (GCV)": lb.RidgeMap(alphas=[0.01, 0.1, 1.0, 10.0]),
}
r2, acc = {}, {}
for name, model in maps.items():
    model.fit(A[train], B[train])
    r2[name] = model.score(A[test], B[test])
    acc[name] = lb.stitched_accuracy(A[test], y[test], dst.W, dst.b, mapping=model)
analytic = lb.analytic_map(src.W, dst.W, src.b, dst.b)
acc["analytic"] = lb.stitched_accuracy(A[test], y[test], dst.W, dst.b, mapping=analytic)
for name in acc:
    print(f"{name:12s} test R^2 {r2.get(name, float('nan')):6.3f}   stitched accuracy {acc[name]:.3f}")
print(f"source network's own test accuracy {src.test_accuracy:.3f}")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
axes[0].bar(list(r2), list(r2.values()), color="C0")
axes[0].set_ylabel("test $R^2$")
axes[0].set_title("feature transfer, ReLU seed 0 -> seed 1")
axes[1].bar(list(acc), list(acc.values()), color="C1")
axes[1].set_ylim(0, 1)
axes[1].set_ylabel("stitched accuracy")
axes[1].set_title("read by seed 1's classifier")
for ax in axes:
    ax.tick_params(axis="x", rotation=20)
fig.tight_layout()
