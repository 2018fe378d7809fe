"""compare_many on executors (serial, thread pool, Dask LocalCluster), its result object, plots."""

import concurrent.futures

import numpy as np
import pytest

import latentbridge as lb
from latentbridge.compare import ComparisonResult, compare_many


def linear_cka_oracle(X, Y):
    """The pinned closed form, written out independently of the library."""
    Xc = X - X.mean(0)
    Yc = Y - Y.mean(0)
    return np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))


@pytest.fixture(scope="module")
def reps():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((120, 8))
    return {
        "base": base,
        "rotated": base @ np.linalg.qr(rng.standard_normal((8, 8)))[0],
        "wider": np.hstack([base, rng.standard_normal((120, 4)) * 0.1]),
        "noise": rng.standard_normal((120, 6)),
    }


def check_cka_matrix(result, reps):
    names = list(reps)
    mat = result["cka"]
    assert result.names == names and mat.shape == (4, 4)
    assert np.allclose(np.diag(mat), 1.0)
    assert np.array_equal(mat, mat.T)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i != j:
                assert mat[i, j] == pytest.approx(linear_cka_oracle(reps[a], reps[b]), rel=1e-9)
    assert mat[0, 1] == pytest.approx(1.0)  # rotation invariance
    assert mat[0, 3] < 0.5


def test_serial(reps):
    res = compare_many(reps, metrics=("cka",), progress=False)
    assert isinstance(res, ComparisonResult)
    check_cka_matrix(res, reps)
    assert "ComparisonResult(4 representations" in repr(res)


def test_thread_pool_matches_serial(reps):
    serial = compare_many(reps, metrics=("cka", "mutual_knn", "pwcca"), progress=False)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        threaded = compare_many(reps, metrics=("cka", "mutual_knn", "pwcca"), executor=pool, progress=False)
    for metric in serial.metrics:
        np.testing.assert_array_equal(serial[metric], threaded[metric])
    check_cka_matrix(threaded, reps)
    # pwcca is not symmetric: both orders are computed
    assert not np.isnan(threaded["pwcca"]).any()


def test_dask_local_cluster(reps):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        res = compare_many(reps, metrics=("cka",), executor=client.get_executor(), progress=False)
    check_cka_matrix(res, reps)


def test_to_pandas(reps):
    pd = pytest.importorskip("pandas")
    res = compare_many(reps, metrics=("cka",), progress=False)
    df = res.to_pandas("cka")
    assert isinstance(df, pd.DataFrame) and list(df.index) == list(reps) and list(df.columns) == list(reps)
    assert set(res.to_pandas()) == {"cka"}


def test_progress_goes_to_stderr(reps, capsys):
    compare_many({k: reps[k] for k in ("base", "noise")}, metrics=("cka",), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"a": np.ones((5, 2))}, "at least two"),
        ({"a": np.ones((5, 2)), "b": np.ones((6, 2))}, "same rows"),
        ({"a": np.ones((5, 2)), "b": np.full((5, 2), np.nan)}, "NaN"),
    ],
)
def test_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        compare_many(bad, metrics=("cka",), progress=False)


def test_unknown_metric(reps):
    with pytest.raises(ValueError, match="unknown metric"):
        compare_many(reps, metrics=("cka", "euclid"), progress=False)


def test_plots(tmp_path, reps):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    from latentbridge.plotting import plot_barcode, plot_embedding, plot_similarity_matrix

    res = compare_many(reps, metrics=("cka",), progress=False)
    for name, draw in {
        "matrix": lambda: plot_similarity_matrix(res),
        "barcode": lambda: plot_barcode(np.array([[0.0, 1.0], [0.2, 0.5], [0.0, np.inf]])),
        "embedding": lambda: plot_embedding(reps["base"], labels=np.arange(120) % 3),
    }.items():
        ax = draw()
        path = tmp_path / f"{name}.png"
        ax.figure.savefig(path)
        plt.close(ax.figure)
        assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="square"):
        plot_similarity_matrix(np.ones((2, 3)))
    with pytest.raises(ValueError, match="at least two columns"):
        plot_embedding(np.ones((5, 1)))


def test_result_save_load_round_trip_square_and_rectangular(tmp_path):
    pd = pytest.importorskip("pandas")
    sq = ComparisonResult(names=["a", "b"], matrices={"cka": np.array([[1.0, 0.25], [0.25, 1.0]])},
                          info={"n_samples": 10})
    rect = ComparisonResult(names=["conv1", "conv2", "fc"], column_names=["l1", "l2"],
                            matrices={"cka": np.arange(6.0).reshape(3, 2) / 7, "rtd": np.ones((3, 2))})
    for res in (sq, rect):
        path = tmp_path / "r.npz"
        res.save(path)
        back = ComparisonResult.load(path)
        assert back.names == res.names and back.columns == res.columns
        assert (back.column_names is None) == (res.column_names is None)
        assert back.info == res.info and back.metrics == res.metrics
        for m in res.metrics:
            np.testing.assert_array_equal(back[m], res[m])
    df = rect.to_pandas("cka")
    assert list(df.index) == ["conv1", "conv2", "fc"] and list(df.columns) == ["l1", "l2"]
    assert df.loc["conv2", "l1"] == rect["cka"][1, 0]
    assert isinstance(rect.to_pandas()["rtd"], pd.DataFrame)
    assert "3 x 2" in repr(rect)
