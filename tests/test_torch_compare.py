"""compare_layers: streamed linear CKA against latentbridge.cka on the full activations (which is itself
tested against the Gram-space definition), the subsample measures, inputs_b, bad input, save/load, plot."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
lbt = pytest.importorskip("latentbridge.torch")
import latentbridge as lb  # noqa: E402
from latentbridge._streaming_cka import StreamingLinearCKA  # noqa: E402
from latentbridge.compare import ComparisonResult  # noqa: E402
from latentbridge.torch._compare import _Reservoir  # noqa: E402

nn = torch.nn


def nets():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 3))
    b = nn.Sequential(nn.Linear(5, 20), nn.Tanh(), nn.Linear(20, 3))
    return a, b


def gram_cka(X, Y):
    """Linear CKA from its Gram-space definition (Kornblith et al. 2019), biased HSIC."""
    n = len(X)
    H = np.eye(n) - 1.0 / n
    K, L = H @ X @ X.T @ H, H @ Y @ Y.T @ H
    return np.sum(K * L) / np.sqrt(np.sum(K * K) * np.sum(L * L))


@pytest.mark.parametrize("debiased", [False, True])
def test_streamed_cka_equals_cka_on_full_activations(debiased):
    a, b = nets()
    X = torch.randn(301, 5) * 3 + 10  # far from the origin: the shifted sums must not cancel
    res = lbt.compare_layers(a, b, X, batch_size=37, progress=False,
                             metric_options={"cka": {"debiased": debiased}})
    A = lbt.activations(a, X, res.names, batch_size=37)  # same batches: float32 forward passes
    B = lbt.activations(b, X, res.columns, batch_size=37)  # round differently with other batch sizes
    ref = np.array([[lb.cka(A[i], B[j], debiased=debiased) for j in res.columns] for i in res.names])
    np.testing.assert_allclose(res["cka"], ref, rtol=0, atol=1e-10)
    if not debiased:
        A64 = {k: v.astype(np.float64) for k, v in A.items()}
        B64 = {k: v.astype(np.float64) for k, v in B.items()}
        np.testing.assert_allclose(res["cka"][1, 0], gram_cka(A64["1"], B64["0"]), atol=1e-10)
    assert res.names == ["0", "1", "2", "3", "4"] and res.columns == ["0", "1", "2"]
    assert res.info["n_samples"] == 301


def test_streaming_statistics_do_not_depend_on_batching():
    rng = np.random.default_rng(0)
    X, Y, Z = rng.normal(size=(90, 4)), rng.normal(size=(90, 6)) + 5, rng.normal(size=(90, 3))
    results = []
    for edges in ([0, 90], [0, 4, 5, 50, 90], list(range(0, 91, 10))):
        st = StreamingLinearCKA([4, 6], [3], debiased=True)
        for lo, hi in zip(edges[:-1], edges[1:]):
            st.update([X[lo:hi], Y[lo:hi]], [Z[lo:hi]])
        results.append(st.result())
    np.testing.assert_allclose(results[1], results[0], atol=1e-12)
    np.testing.assert_allclose(results[2], results[0], atol=1e-12)
    np.testing.assert_allclose(results[0][1, 0], lb.cka(Y, Z, debiased=True), atol=1e-12)


def test_identical_models_give_one_on_the_diagonal_and_model_b_sees_the_same_samples():
    a, _ = nets()
    res = lbt.compare_layers(a, a, torch.randn(80, 5), progress=False, metrics=("cka", "mutual_knn"))
    np.testing.assert_allclose(np.diag(res["cka"]), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(res["mutual_knn"]), 1.0)


def test_sampled_measures_use_one_seeded_subsample_of_the_same_rows():
    a, b = nets()
    X = torch.randn(120, 5)
    res = lbt.compare_layers(a, b, X, metrics=("cka", "svcca", "mutual_knn"), max_samples=50, seed=3,
                             batch_size=16, progress=False)
    again = lbt.compare_layers(a, b, X, metrics=("svcca",), max_samples=50, seed=3, batch_size=40,
                               progress=False)
    # the subsample does not depend on batching; the float32 activations may (torch's CPU GEMM
    # blocks a batch of 16 and of 40 rows differently), so the values agree to float32 rounding
    np.testing.assert_allclose(res["svcca"], again["svcca"], rtol=1e-6)
    assert res.info["n_subsample"] == 50 and res.metrics == ["cka", "svcca", "mutual_knn"]
    # the same 50 rows for A and B, in stream order: replay the reservoir on the row numbers
    A = lbt.activations(a, X, ["2"], batch_size=16)["2"]
    B = lbt.activations(b, X, ["0"], batch_size=16)["0"]
    rows = _Reservoir(50, np.random.default_rng(3))
    idx = np.arange(120, dtype=float)[:, None]
    for lo in range(0, 120, 16):
        rows.add({"i": idx[lo:lo + 16]})
    keep = rows.arrays()["i"][:, 0].astype(int)
    assert len(np.unique(keep)) == 50 and np.all(np.diff(keep) > 0)
    np.testing.assert_allclose(res["svcca"][2, 0], lb.svcca(A[keep], B[keep]), rtol=1e-12)
    np.testing.assert_allclose(res["mutual_knn"][2, 0], lb.mutual_knn(A[keep], B[keep]), rtol=1e-12)


def test_reservoir_is_uniform():
    counts = np.zeros(40)
    for seed in range(400):
        r = _Reservoir(10, np.random.default_rng(seed))
        idx = np.arange(40, dtype=float)[:, None]
        for lo in range(0, 40, 7):
            r.add({"i": idx[lo:lo + 7]})
        counts[r.arrays()["i"][:, 0].astype(int)] += 1
    # each row is kept with probability 10/40: 100 of 400 draws, sd ~ 8.7
    assert np.all(np.abs(counts - 100) < 5 * 8.7), counts


def test_inputs_b_must_match_batch_sizes():
    a, b = nets()
    X = torch.randn(20, 5)
    res = lbt.compare_layers(a, b, list(X.split(6)), inputs_b=list((X * 1.0).split(6)), progress=False)
    ref = lbt.compare_layers(a, b, X, batch_size=6, progress=False)
    np.testing.assert_allclose(res["cka"], ref["cka"], atol=1e-12)
    with pytest.raises(ValueError, match="batch 1: inputs has 6 samples, inputs_b 4"):
        lbt.compare_layers(a, b, list(X.split(6)), inputs_b=[X[:6], X[6:10], X[10:]], progress=False)
    with pytest.raises(ValueError, match="inputs_b has more batches"):
        lbt.compare_layers(a, b, list(X[:12].split(6)), inputs_b=list(X.split(6)), progress=False)


def test_bad_arguments():
    a, b = nets()
    X = torch.randn(10, 5)
    with pytest.raises(ValueError, match="unknown metric"):
        lbt.compare_layers(a, b, X, metrics=("cosine_sim",), progress=False)
    with pytest.raises(ValueError, match="max_samples"):
        lbt.compare_layers(a, b, X, metrics=("rtd",), max_samples=1, progress=False)
    with pytest.raises(ValueError, match="layers_b: no module named '7'"):
        lbt.compare_layers(a, b, X, layers_b=["7"], progress=False)
    with pytest.raises(ValueError, match="at least 2"):
        lbt.compare_layers(a, b, X[:1], progress=False)
    with pytest.raises(RuntimeError, match="model_b raised on batch 0"):
        lbt.compare_layers(a, nn.Sequential(nn.Linear(4, 2)), X, progress=False)  # wrong input width for B
    assert not any(m._forward_hooks for m in a.modules()) and a.training


def test_constant_layer_gives_nan_with_a_warning():
    a, b = nets()
    dead = nn.Sequential(nn.Linear(5, 4), nn.ReLU())
    with torch.no_grad():
        dead[0].bias.fill_(-100.0)
    with pytest.warns(UserWarning, match=r"model_b: layer\(s\) \['1'\] are constant"):
        res = lbt.compare_layers(a, dead, torch.randn(30, 5), progress=False)
    assert np.isnan(res["cka"][:, 1]).all() and np.isfinite(res["cka"][:, 0]).all()


def test_result_round_trip_and_heatmap(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from latentbridge.plotting import plot_layer_similarity

    a, b = nets()
    res = lbt.compare_layers(a, b, torch.randn(40, 5), progress=False)
    res.save(tmp_path / "layers.npz")
    back = ComparisonResult.load(tmp_path / "layers.npz")
    np.testing.assert_array_equal(back["cka"], res["cka"])
    assert back.columns == res.columns and back.info["n_samples"] == 40
    ax = plot_layer_similarity(back)
    assert [t.get_text() for t in ax.get_yticklabels()] == res.names
    assert [t.get_text() for t in ax.get_xticklabels()] == res.columns
    assert ax.images[0].get_array().shape == (5, 3)


def test_progress_is_shown_when_asked(capsys):
    a, b = nets()
    lbt.compare_layers(a, b, torch.randn(40, 5), batch_size=10, metrics=("cka", "mutual_knn"), progress=True)
    err = capsys.readouterr().err
    assert "compare_layers" in err and "sampled measures" in err
    lbt.compare_layers(a, b, torch.randn(40, 5), progress=False)
    assert capsys.readouterr().err == ""
