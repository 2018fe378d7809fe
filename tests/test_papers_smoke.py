"""The papers' experiments (bench/papers, issue 16) at their tiny CI sizes.

Each smoke run trains its small networks on scikit-learn's digits (a few epochs) and must show the
paper's qualitative claims that hold at any size, not its exact figures; every published value must
be printed beside ours. Bad arguments and missing optional packages give messages, not tracebacks.
"""

import argparse
import io
import pathlib
import sys

import numpy as np
import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

papers = pytest.importorskip("papers")


def one(rows, quantity, experiment=""):
    """The ``ours`` value of the single row whose quantity and experiment contain the strings."""
    hits = [r for r in rows if quantity == r["quantity"] and experiment in r["experiment"]]
    assert len(hits) == 1, (quantity, experiment, len(hits))
    return hits[0]["ours"]


def every(rows, quantity, experiment=""):
    return [r["ours"] for r in rows if quantity == r["quantity"] and experiment in r["experiment"]]


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="the papers' networks are trained with torch")


@pytest.fixture(scope="module")
def smoke(torch, tmp_path_factory):
    cache = {}

    def get(paper):
        if paper not in cache:
            kwargs = {"out_dir": tmp_path_factory.mktemp("plots")} if paper == "004" else {}
            cache[paper] = papers.run_paper(paper, "smoke", seed=0, **kwargs)
        return cache[paper]

    return get


@pytest.mark.parametrize("paper", ["001", "002", "003", "004"])
def test_every_published_value_is_printed(smoke, paper):
    rows = smoke(paper)
    assert rows and all(set(papers.COLUMNS) <= set(r) for r in rows)
    out = io.StringIO()
    papers.print_rows(rows, file=out)
    text = out.getvalue()
    published = [r["published"] for r in rows if r["published"] is not None]
    assert published
    for value in published:
        assert papers.format_value(value) in text
    for r in rows:
        assert papers.format_value(r["ours"]) in text


def test_001_direct_alignment_claims(smoke):
    rows = smoke("001")
    for pair in ("MLP seed 0 -> MLP seed 1", "MLP seed 0 -> CNN seed 2"):
        unaligned = one(rows, "error / baseline, no alignment", pair)
        rigid = one(rows, "error / baseline, rigid", pair)
        affine = one(rows, "error / baseline, affine", pair)
        # every fitted alignment beats feeding A's codes to B's decoder unchanged
        for method in ("rigid", "orthogonal+scale", "linear", "affine"):
            assert one(rows, f"error / baseline, {method}", pair) < unaligned
        # the affine map is at least about as good as the rigid one (the paper: clearly better; at
        # smoke size the test error of the two can swap by a few %)
        assert affine <= 1.05 * rigid
    # more anchors help the affine map (on the better-trained MLP pair: the smoke CNN barely trains)
    pair = "MLP seed 0 -> MLP seed 1"
    assert (one(rows, "error / baseline, affine, 200 anchors", pair)
            < one(rows, "error / baseline, affine, 10 anchors", pair))


def test_002_linear_maps_claims(smoke):
    rows = smoke("002")
    assert one(rows, "max |mapped - source accuracy| over 20 pairs") == 0.0
    own = {r["quantity"]: r["ours"] for r in rows if r["experiment"] == "own test accuracy"}
    assert len(own) >= 5
    assert one(rows, "random network's own accuracy") < 0.25
    assert one(rows, "analytic map cnn-gap -> random") == own["cnn-gap"]
    assert one(rows, "ridge map cnn-gap -> random") < 0.25
    mapped = one(rows, "mlp-relu -> cnn-gap, ridge map per fold")
    assert one(rows, "mlp-relu vs cnn-gap, identity map") < mapped
    assert len(every(rows, "median % change from mlp-relu")) == 1


def test_003_relative_geodesic_claims(smoke):
    rows = smoke("003")
    for pair in ("MLP seed 1", "CNN seed 2"):
        absolute = one(rows, "retrieval MRR, absolute latents", pair)
        assert one(rows, "retrieval MRR symmetrised, cosine relative", pair) > absolute
    mlp = "MLP seed 1"  # the geodesic claim on the better-trained pair (the smoke CNN barely trains)
    assert (one(rows, "retrieval MRR symmetrised, geodesic length", mlp)
            > one(rows, "retrieval MRR, absolute latents", mlp))
    assert one(rows, "Spearman(proxy 8 points, optimised geodesic energy)") > 0.9
    assert one(rows, "mean optimised / straight-line energy") <= 1.0


def test_004_rtd_claims(smoke):
    rows = smoke("004")
    assert one(rows, "Kendall tau(epoch, RTD to final)") < 0
    assert one(rows, "mean RTD, matching layers") < one(rows, "mean RTD, different layers")
    assert one(rows, "untrained-to-trained / trained-to-trained mean RTD") > 1.0
    assert pathlib.Path(one(rows, "plot")).is_file()
    mds_note = [r["note"] for r in rows if r["experiment"].startswith("MDS")][0]
    assert pathlib.Path(mds_note.split("plot ", 1)[1]).is_file()
    taus = every(rows, "CKA") + every(rows, "SVCCA") + every(rows, "IMD")
    assert len(taus) == 6 and all(-1.0 <= t <= 1.0 for t in taus)


def test_synthetic_generators_match_the_notebooks():
    from papers.seed004 import clusters_pair, rings_cloud

    base, moved = clusters_pair(3)
    assert base.shape == moved.shape == (300, 2)
    # each group of 5 points moved rigidly to one of the 3 centres at distance 10
    shift = (moved - base).reshape(60, 5, 2)
    assert np.allclose(shift, shift[:, :1])
    assert np.allclose(np.linalg.norm(shift[:, 0], axis=1), 10.0)
    assert len(np.unique(np.round(shift[:, 0], 8), axis=0)) == 3
    radii = np.linalg.norm(rings_cloud(2), axis=1).reshape(5, 100)
    assert np.allclose(radii[:, 0], [1, 1, 1.25, 0.75, 1.5])
    assert np.array_equal(rings_cloud(1)[:100], rings_cloud(5)[:100])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"size": "big"}, ValueError, "size must be one of"),
    ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
    ({"seed": 1.5}, TypeError, "seed must be a non-negative integer"),
    ({"seed": True}, TypeError, "seed"),
    ({"paper": "007"}, ValueError, "paper must be one of"),
])
def test_bad_arguments_name_the_argument(kwargs, error, match):
    args = {"paper": "001", "size": "smoke", "seed": 0, **kwargs}
    with pytest.raises(error, match=match):
        papers.run_paper(args.pop("paper"), **args)


@pytest.mark.parametrize("paper", ["001", "002", "003", "004"])
def test_each_seed_checks_its_own_arguments(paper):
    import importlib

    module = importlib.import_module(f"papers.seed{paper}")
    with pytest.raises(ValueError, match="size"):
        module.run(size="tiny")
    with pytest.raises(ValueError, match="seed"):
        module.run(size="smoke", seed=-3)


def test_missing_optional_package_is_a_message(monkeypatch):
    with pytest.raises(papers.MissingDependency, match="pip install"):
        papers.require("latentbridge_no_such_module", "this check")
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(papers.MissingDependency, match="mnist1d"):
        papers.mnist1d_data(100)


def _args(**kw):
    return argparse.Namespace(**{"paper": "001", "smoke": True, "quick": False, "seed": 0, **kw})


def test_runner_reports_missing_packages_and_bad_arguments(monkeypatch, capsys):
    import suite_papers

    def missing(paper, size, seed):
        raise papers.MissingDependency("torch is needed: pip install torch==2.13.0")

    monkeypatch.setattr(suite_papers, "run_paper", missing)
    rows = suite_papers.run(_args())
    assert rows[0]["experiment"] == "skipped"
    assert "skipped: torch is needed" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="papers: paper must be one of"):
        suite_papers.run(_args(paper="9"))
    with pytest.raises(SystemExit, match="papers: seed must be"):
        suite_papers.run(_args(seed=-1))


def test_mnist1d_is_generated_offline_and_leaves_global_rngs_alone():
    pytest.importorskip("mnist1d", reason="MNIST-1D needs pip install --no-deps mnist1d")
    import random

    np.random.seed(123)
    random.seed(123)
    before = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    Xtr, Xte, ytr, yte = papers.mnist1d_data(100, seed=3)
    assert Xtr.shape == (80, 40) and Xte.shape == (20, 40)
    assert set(np.unique(np.concatenate([ytr, yte]))) <= set(range(10))
    assert (np.random.random(), random.random()) == before
    again = papers.mnist1d_data(100, seed=3)
    assert np.array_equal(again[0], Xtr)
