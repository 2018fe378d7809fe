"""The ``latentbridge`` command line: ``info``, ``demo``, ``compare``, ``align``, ``measures``, ``bench``.

``compare A B`` gives the values of two activation files; ``compare --layers A.npz B.npz`` compares every
layer (array) of one archive with every layer of the other: labelled layer x layer matrices, printed or
written with ``--out DIR`` (``comparison.npz``, ``comparison.json``, one heat map PNG per measure).
``measures`` lists the registered measures (:func:`latentbridge.measures.registry`).

Exit codes: 0 success, 1 an error in the inputs or the run (a one-line message on stderr), 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import sys
import warnings

import numpy as np

ALIGN_METHODS = ("procrustes", "rigid", "linear", "ridge")


class CLIError(Exception):
    """An error to report on stderr with exit code 1."""


def load_array(path, key=None, option="--key"):
    """Load a 2-D activation matrix from .npy, .npz (``key`` or its only array), .safetensors or .pt.

    ``option`` is the command-line option that sets ``key`` (named in the error messages)."""
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
                    raise CLIError(f"{path} holds {len(keys)} arrays {keys}; choose one with {option}")
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
                raise CLIError(f"{path} holds {len(tensors)} tensors {sorted(tensors)}; choose one with {option}")
            arr = tensors[key] if key is not None else next(iter(tensors.values()))
        elif suffix in (".pt", ".pth"):
            try:
                import torch
            except ImportError:
                raise CLIError("reading .pt files needs torch: pip install torch") from None
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
            if isinstance(obj, dict):
                if key is None and len(obj) != 1:
                    raise CLIError(f"{path} holds {len(obj)} tensors {sorted(obj)}; choose one with {option}")
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


def load_layers(path):
    """Every array of a ``.npz`` archive of named layer activations: ``{name: (n, d) array}`` in the
    archive's order, each ``(n, ...)`` array flattened to ``(n, d)``; CLIError when the file is missing,
    not an archive, empty, or its layers have different numbers of rows."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    if path.suffix.lower() != ".npz":
        raise CLIError(f"{path}: --layers reads .npz archives of named layer activations (np.savez); "
                       f"got {path.suffix!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            layers = {name: z[name] for name in z.files}
    except Exception as exc:  # not a zip, pickled object arrays, ...
        raise CLIError(f"{path}: could not read the archive ({exc})") from None
    if not layers:
        raise CLIError(f"{path}: the archive holds no layers; save them with np.savez(path, name=array, ...)")
    for name, arr in layers.items():
        if arr.ndim == 0:
            raise CLIError(f"{path}: layer {name!r} is a scalar; each layer must be an (n_samples, ...) array")
        layers[name] = arr.reshape(arr.shape[0], -1)
    rows = {name: arr.shape[0] for name, arr in layers.items()}
    if len(set(rows.values())) != 1:
        raise CLIError(f"{path}: layers have different numbers of rows (samples): "
                       + ", ".join(f"{k}: {v}" for k, v in rows.items()))
    return layers


def _check_metrics(metrics):
    from .compare import METRICS

    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise CLIError(f"unknown measure(s) {bad}; choose from {','.join(METRICS)} (see `latentbridge measures`)")
    return metrics


def _cmd_compare(args):
    if args.layers:
        if args.A or args.B or args.key_a or args.key_b:
            raise CLIError("give either two files A B or --layers A.npz B.npz (every array of each), not both")
        return _compare_layer_archives(args)
    if not (args.A and args.B):
        raise CLIError("give two files A B, or --layers A.npz B.npz")
    if args.out:
        raise CLIError("--out writes the layer x layer result of --layers A.npz B.npz")
    from .compare import compare_pair

    metrics = _check_metrics(args.metrics or ["cka", "rtd"])
    A = load_array(args.A, args.key_a, "--key-a")
    B = load_array(args.B, args.key_b, "--key-b")
    if A.shape[0] != B.shape[0]:
        raise CLIError(f"A and B must have the same rows (samples); got {A.shape[0]} and {B.shape[0]}")
    values = {}
    for metric in metrics:
        values[metric] = compare_pair(A, B, metric)
    if args.json:
        print(json.dumps({"A": str(args.A), "B": str(args.B), "n_samples": int(A.shape[0]), **values}))
    else:
        print(f"A: {args.A} {A.shape}   B: {args.B} {B.shape}")
        for metric, value in values.items():
            print(f"  {metric:<11} {value:.6f}")
    return 0


def _compare_layer_archives(args):
    from .compare import compare_many

    metrics = _check_metrics(args.metrics or ["cka"])
    path_a, path_b = (pathlib.Path(p) for p in args.layers)
    layers_a, layers_b = load_layers(path_a), load_layers(path_b)
    n_a, n_b = next(iter(layers_a.values())).shape[0], next(iter(layers_b.values())).shape[0]
    if n_a != n_b:
        raise CLIError(f"the archives must hold the same samples: {path_a} has {n_a} rows, {path_b} has {n_b}")
    with warnings.catch_warnings():  # failed pairs are reported below, one line each
        warnings.filterwarnings("ignore", message="compare_many: ", category=RuntimeWarning)
        result = compare_many(layers_a, reps_b=layers_b, metrics=metrics, progress=not args.no_progress)
    result.info.update(layers_a=str(path_a), layers_b=str(path_b))
    for (row, col, metric), message in result.errors.items():
        print(f"latentbridge compare: {metric}({row}, {col}) failed, NaN: {message}", file=sys.stderr)
    if args.out:
        _write_layer_comparison(result, pathlib.Path(args.out), path_a.stem, path_b.stem)
    if args.json:
        print(json.dumps(result.to_dict()))
    elif not args.out:
        print(repr(result))
    return 0


def _write_layer_comparison(result, out, label_a, label_b):
    """``out/comparison.npz`` (ComparisonResult.save), ``out/comparison.json`` and ``out/<metric>.png``."""
    out.mkdir(parents=True, exist_ok=True)
    result.save(out / "comparison.npz")
    (out / "comparison.json").write_text(json.dumps(result.to_dict(), indent=1))
    written = [out / "comparison.npz", out / "comparison.json"]
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("latentbridge compare: heat maps skipped: matplotlib is not installed (pip install matplotlib)",
              file=sys.stderr)
    else:
        from .plotting import plot_layer_similarity

        for metric in result.metrics:
            ax = plot_layer_similarity(result, metric, label_a=label_a, label_b=label_b)
            ax.figure.tight_layout()
            ax.figure.savefig(out / f"{metric}.png", dpi=100)
            plt.close(ax.figure)
            written.append(out / f"{metric}.png")
    print("wrote " + " ".join(str(p) for p in written), file=sys.stderr)


def _cmd_measures(args):
    from .measures import registry

    table = registry()
    rows = [{"name": name, "kind": info.kind, "identical_value": info.identical_value,
             "symmetric": info.symmetric, "metric": info.metric, "invariances": sorted(info.invariances),
             "function": f"{info.func.__module__}.{info.func.__qualname__}"} for name, info in table.items()]
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    header = ("name", "kind", "on identical", "symmetric", "metric", "invariances")
    lines = [(r["name"], r["kind"], "depends" if r["identical_value"] is None else f"{r['identical_value']:g}",
              "yes" if r["symmetric"] else "no", "yes" if r["metric"] else "no", ",".join(r["invariances"]) or "-")
             for r in rows]
    widths = [max(len(str(line[k])) for line in [header, *lines]) for k in range(len(header))]
    for line in [header, *lines]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(line, widths)).rstrip())
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
    A = load_array(args.A, args.key_a, "--key-a")
    B = load_array(args.B, args.key_b, "--key-b")
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
    if args.json:     # strict JSON: no rows held out -> null, not NaN
        print(json.dumps({key: None if isinstance(value, float) and math.isnan(value) else value
                          for key, value in report.items()}))
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
    """``"cka, rtd"`` -> ``["cka", "rtd"]`` (checked against the registry by the command: exit code 1)."""
    return [m.strip() for m in text.split(",") if m.strip()]


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

    def two_files(p, optional=False):
        nargs = "?" if optional else None
        p.add_argument("A", nargs=nargs, help="activations of model A (.npy, .npz, .safetensors, .pt)")
        p.add_argument("B", nargs=nargs, help="activations of model B, same samples in the same order")
        p.add_argument("--key-a", help="array name inside A (.npz/.safetensors/.pt)")
        p.add_argument("--key-b", help="array name inside B")
        p.add_argument("--json", action="store_true", help="print one JSON object")

    from .measures import registry

    p = sub.add_parser("compare", help="similarity of two representations, or every layer of two archives")
    two_files(p, optional=True)
    p.add_argument("--layers", nargs=2, metavar=("A.npz", "B.npz"),
                   help="two .npz archives of named layer activations (np.savez(path, layer=array)), same "
                        "samples: a layer x layer matrix per measure")
    p.add_argument("--metrics", type=_metric_list, default=None,
                   help=f"comma-separated names from `latentbridge measures` ({', '.join(registry())}) "
                        "(default cka,rtd for A B; cka for --layers)")
    p.add_argument("--out", help="with --layers: write comparison.npz, comparison.json and <measure>.png here")
    p.add_argument("--no-progress", action="store_true", help="with --layers: no progress bar on stderr")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("align", help="fit a map from A's space to B's on anchors; report the transfer error")
    two_files(p)
    p.add_argument("--method", choices=ALIGN_METHODS, default="linear")
    p.add_argument("--anchors", type=int, default=None, help="number of random anchor rows to fit on (default all)")
    p.add_argument("--alpha", type=float, default=1.0, help="ridge penalty (--method ridge)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="save the fitted map to this .npz")
    p.set_defaults(func=_cmd_align)

    p = sub.add_parser("measures", help="the registered measures and what each promises")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p.set_defaults(func=_cmd_measures)

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
