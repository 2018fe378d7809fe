"""
Layer by layer from the command line
====================================

``latentbridge compare --layers A.npz B.npz`` compares every layer saved in one archive with every
layer saved in another. Here the layers of two digits networks of different architectures (a two-layer
ReLU MLP and a three-layer tanh MLP, trained here in a few seconds) are saved with ``np.savez``, the
command runs in a subprocess exactly as in a shell, and what it wrote is read back in Python.
"""

import json
import pathlib
import shutil
import subprocess
import sys
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import latentbridge as lb
from latentbridge.datasets import load_digits_split, train_digits_network
from latentbridge.plotting import plot_layer_similarity

data = load_digits_split()
relu = train_digits_network("relu", seed=0, data=data)
tanh = train_digits_network("tanh", seed=1, data=data)


def layer_activations(net, X):
    """The pixels, every hidden layer and the logits of a digits network, by name, in network order."""
    layers, H = {"pixels": X}, X
    for k, (W, b, activation) in enumerate(net.layers, start=1):
        Z = H @ W + b
        H = np.maximum(Z, 0.0) if activation == "relu" else np.tanh(Z)
        layers[f"hidden{k}"] = H
    layers["logits"] = net.head(H)
    return layers


folder = pathlib.Path(tempfile.mkdtemp())
layers_relu = layer_activations(relu, data.X_test)
layers_tanh = layer_activations(tanh, data.X_test)
np.savez(folder / "relu.npz", **layers_relu)
np.savez(folder / "tanh.npz", **layers_tanh)
print({name: layer.shape for name, layer in layers_tanh.items()})


def latentbridge_cli(*args):
    """Run ``latentbridge ARGS`` in ``folder`` (``python -m latentbridge`` is the same command); print
    its exit code, stderr and the start of its stdout."""
    run = subprocess.run([sys.executable, "-m", "latentbridge", *args], cwd=folder, capture_output=True,
                         text=True)
    stdout = run.stdout.strip()
    print(f"$ latentbridge {' '.join(args)}\n[exit code {run.returncode}]")
    print(f"stdout: {stdout[:240] + ' ...' if len(stdout) > 240 else stdout or '(empty)'}")
    print(f"stderr: {run.stderr.strip() or '(empty)'}")
    return run


# %%
# Two archives, two measures
# --------------------------
# ``--out cmp`` writes ``comparison.npz``, ``comparison.json`` and one heat map per measure, and
# prints nothing on stdout.

latentbridge_cli("compare", "--layers", "relu.npz", "tanh.npz", "--metrics", "cka,procrustes_distance",
                 "--out", "cmp", "--no-progress")
print(sorted(p.name for p in (folder / "cmp").iterdir()))

# %%
# Read back
# ---------
# ``comparison.npz`` is a :class:`latentbridge.ComparisonResult`: rows are the ReLU network's layers,
# columns the tanh network's, in the archives' order. It holds what
# :func:`latentbridge.compare_many` with ``reps_b`` computes in Python.

result = lb.ComparisonResult.load(folder / "cmp" / "comparison.npz")
print(result)
direct = lb.compare_many(layers_relu, reps_b=layers_tanh, metrics=("cka", "procrustes_distance"),
                         progress=False)
for metric in result.metrics:
    print(f"{metric}: largest difference from compare_many in Python "
          f"{np.abs(result[metric] - direct[metric]).max():.1e}")

fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, metric in zip(axes, result.metrics):
    plot_layer_similarity(result, metric, ax=ax, title=metric, label_a="ReLU network", label_b="tanh network")
fig.tight_layout()

# %%
# The command drew the same heat maps into ``cmp/`` (its axis titles are the archives' names).

fig, ax = plt.subplots(figsize=(6, 4.5))
ax.imshow(plt.imread(folder / "cmp" / "cka.png"))
ax.set_axis_off()

# %%
# A layer that collapsed
# ----------------------
# A layer whose ReLU units are all dead (every activation 0) makes CKA undefined. That pair is NaN, the
# failure is one line on stderr, the other values are kept and the exit code is 0; ``--json`` prints
# the result as one JSON object with the failures under ``"errors"``.

np.savez(folder / "dead.npz", hidden1=layers_tanh["hidden1"], dead=np.zeros((len(data.X_test), 16)))
run = latentbridge_cli("compare", "--layers", "relu.npz", "dead.npz", "--json", "--no-progress")
out = json.loads(run.stdout)
print("errors:", [error[:3] for error in out["errors"]])
print("cka column 'dead':", [row[1] for row in out["metrics"]["cka"]])

# %%
# Inputs that cannot be compared
# ------------------------------
# Archives of different samples are an input error: exit code 1 and one line on stderr, no traceback.

np.savez(folder / "fewer.npz", hidden1=layers_tanh["hidden1"][:100])
latentbridge_cli("compare", "--layers", "relu.npz", "fewer.npz")

shutil.rmtree(folder)
