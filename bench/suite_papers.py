"""The papers' experiments on networks trained here, our figures beside the published ones.

    python bench/run.py papers --paper 000|001|002|003|004|all [--smoke] [--seed N]

``--smoke`` (or ``--quick``) runs the tiny CI sizes. Each paper's rows are printed as they come
(experiment, quantity, ours, published, note), then the runner prints all rows together and writes
bench/results/papers.json. A paper whose optional packages (torch, mnist1d) are missing prints the
install command instead of its rows; bad ``--paper``/``--seed`` values stop with a message naming
the argument.
"""

from __future__ import annotations

import time

from papers import PAPERS, MissingDependency, check_papers, check_seed, print_rows, run_paper


def add_arguments(parser):
    parser.add_argument("--paper", default="all",
                        help=f"one of {', '.join(PAPERS)} or all (default all)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (the CI versions)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of data and networks")


def run(args):
    try:
        papers = check_papers(args.paper)
        seed = check_seed(args.seed)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"papers: {exc}") from None
    size = "smoke" if (args.smoke or args.quick) else "full"
    rows = []
    for key in papers:
        print(f"== paper {key}: {PAPERS[key]} ({size}, seed {seed})", flush=True)
        t0 = time.perf_counter()
        try:
            got = run_paper(key, size=size, seed=seed)
        except MissingDependency as exc:
            print(f"   skipped: {exc}", flush=True)
            rows.append({"paper": key, "experiment": "skipped", "quantity": "", "ours": None,
                         "published": None, "note": str(exc)})
            continue
        except ModuleNotFoundError as exc:
            if exc.name == f"papers.seed{key}":
                print(f"   not available yet: bench/papers/seed{key}.py is missing", flush=True)
                continue
            raise
        print_rows(got)
        print(f"   ({time.perf_counter() - t0:.1f} s)\n", flush=True)
        rows.extend(got)
    return rows
