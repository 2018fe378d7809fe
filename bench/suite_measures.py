"""Every registered similarity measure at N x (D_x, D_y), and the reference libraries where they
compute the same quantity, in the same run: repsim 0.1.5 (C++ core; linear CKA and the CCA
summaries) and rsatoolbox 0.3.2 (RSA: correlation RDM, Spearman). The table gives our time, the
reference's, the ratio (reference / ours: > 1 means we are faster) and the two values.

    python bench/run.py measures [--quick] [--n 10000] [--dims 512x768] [--threads 2]
                                 [--measures cka,cca,...] [--no-references]
"""

from __future__ import annotations

import numpy as np

from run import time_call

# options that size the measures for a benchmark (defaults otherwise)
OPTIONS = {
    "rtd": {"trials": 3, "batch": 500, "seed": 0},
    "minibatch_cka": {"random_state": 0},
}


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=None, help="samples (default 10000; quick 2000)")
    parser.add_argument("--dims", default="512x768", help="D_x x D_y")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--measures", default=None, help="comma-separated registry names (all)")
    parser.add_argument("--no-references", action="store_true")


def _data(n, p, q, seed=0):
    """Two noisy linear read-outs of one 64-dimensional latent (related, not identical)."""
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, 64))
    X = np.tanh(Z @ rng.standard_normal((64, p)) / 8) + 0.3 * rng.standard_normal((n, p))
    Y = Z @ rng.standard_normal((64, q)) / 8 + 0.3 * rng.standard_normal((n, q))
    return X, Y


def _references():
    """name -> list of (label, function of X, Y, the option dict our measure is called with)."""
    refs = {}
    try:
        import repsim

        refs["cka"] = [("repsim.cka linear/gretton",
                        lambda X, Y: repsim.cka([X, Y], "linear", "gretton")[0, 1], {})]
        refs["cca"] = [("repsim.cca 'pillai' (= our mean)",
                        lambda X, Y: repsim.cca([X, Y], "pillai")[0, 1], {"kind": "mean"}),
                       ("repsim.cca 'yanai' (= our pillai)",
                        lambda X, Y: repsim.cca([X, Y], "yanai")[0, 1], {"kind": "pillai"})]
    except ImportError:
        pass
    try:
        import rsatoolbox

        def rsatoolbox_rsa(X, Y):
            rdms = [rsatoolbox.rdm.calc_rdm(rsatoolbox.data.Dataset(A), method="correlation")
                    for A in (X, Y)]
            return float(rsatoolbox.rdm.compare(rdms[0], rdms[1], method="spearman")[0, 0])

        refs["rsa"] = [("rsatoolbox correlation/spearman", rsatoolbox_rsa, {})]
    except ImportError:
        pass
    return refs


def _limits(threads):
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(threads)
    except ImportError:
        import contextlib

        return contextlib.nullcontext()


def run(args):
    from latentbridge.measures import registry

    n = args.n or (2000 if args.quick else 10000)
    p, q = (int(v) for v in args.dims.split("x"))
    table = registry()
    names = args.measures.split(",") if args.measures else list(table)
    refs = {} if args.no_references else _references()
    X, Y = _data(n, p, q)
    rows = []
    with _limits(args.threads):
        for name in names:
            fn = table[name].func
            cases = refs.get(name) or [(None, None, {})]
            for label, ref, extra in cases:
                options = {**OPTIONS.get(name, {}), **extra}
                if "n_jobs" in fn.__code__.co_varnames:
                    options["n_jobs"] = args.threads
                try:
                    ours = float(fn(X, Y, **options))
                except (ValueError, MemoryError) as exc:   # e.g. pwcca when n < p + q
                    rows.append({"measure": name, "n": n, "p": p, "q": q, "error": str(exc)[:80]})
                    continue
                med, best = time_call(lambda: fn(X, Y, **options), repeat=args.repeat, warmup=0)
                row = {"measure": name, "options": ",".join(f"{k}={v}" for k, v in extra.items()),
                       "n": n, "p": p, "q": q, "ours_s": med, "value": ours}
                if ref is not None:
                    value = float(ref(X, Y))
                    ref_med, _ = time_call(lambda: ref(X, Y), repeat=args.repeat, warmup=0)
                    row.update({"reference": label, "ref_s": ref_med, "ratio": ref_med / med,
                                "ref_value": value, "abs_diff": abs(value - ours)})
                rows.append(row)
                print(row, flush=True)
    return rows
