"""compare_many on executors (serial, thread pool, Dask LocalCluster), its result object, plots."""

import concurrent.futures
import dataclasses
import functools
import re
import signal
import threading
import warnings

import numpy as np
import pytest

import latentbridge as lb
from latentbridge import compare as compare_module
from latentbridge.compare import ComparisonResult, compare_many

# Wall-clock limit of one test, in seconds. A compare_many that waits on a future that never completes
# uses no CPU, so neither CPU-time limits (mutmut's) nor anything else would end it: the guard below makes
# such a test fail instead of hanging. The Dask and plotting tests start a cluster or matplotlib.
WALL_SECONDS = 20
WALL_SECONDS_SLOW = {"test_dask_local_cluster": 120, "test_plots": 120,
                     "test_dask_local_cluster_survives_a_killed_worker": 300,
                     "test_process_pool_that_breaks_finishes_here_with_a_warning": 300}


@pytest.fixture(autouse=True)
def wall_clock_guard(request):
    """Fail the test with a TimeoutError once it has run WALL_SECONDS (SIGALRM; POSIX, main thread only:
    elsewhere the test runs unguarded). Also imported by test_compare_faults.py."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return
    limit = WALL_SECONDS_SLOW.get(request.node.originalname, WALL_SECONDS)

    def too_long(signum, frame):
        raise TimeoutError(f"{request.node.name} ran for more than {limit} s (a future that never completes?)")

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(limit)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


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
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
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


# ---- the orchestration, pinned where the mutation run found it loose (issue 17) -------------------

def whole(message):
    """A pytest ``match`` for exactly this message."""
    return "^" + re.escape(message) + "$"


def width_code(X, Y):
    """A measure of one's own: 10 * width(X) + width(Y) (not symmetric)."""
    return 10.0 * X.shape[1] + Y.shape[1]


def spy_in_registry(monkeypatch, name, value):
    """Replace the registry measure ``name`` by a spy returning ``value`` (its flags kept); returns the
    list of the keyword arguments of each call."""
    received = []

    def spy(X, Y, **options):
        received.append(options)
        return value

    monkeypatch.setitem(compare_module.METRICS, name,
                        dataclasses.replace(compare_module.METRICS[name], func=spy))
    return received


def test_rtd_defaults_are_seeded_and_explicit_options_win(monkeypatch):
    """compare_pair gives RTD seed=0, trials=5, batch=min(300, n_samples) unless told otherwise
    (a spy stands in for rtd and records what it receives)."""
    received = spy_in_registry(monkeypatch, "rtd", 0.5)
    narrow = np.random.default_rng(1).standard_normal((40, 3))
    assert compare_module.compare_pair(narrow, narrow, "rtd") == 0.5
    assert compare_module.compare_pair(np.ones((310, 2)), np.ones((310, 2)), "rtd") == 0.5
    compare_module.compare_pair(narrow, narrow, "rtd", {"trials": 2, "seed": 9})
    assert received == [{"seed": 0, "trials": 5, "batch": 40}, {"seed": 0, "trials": 5, "batch": 300},
                        {"seed": 9, "trials": 2, "batch": 40}]
    compare_module.compare_pair(narrow, narrow, "cka")          # no defaults for other measures
    assert len(received) == 3


def test_symmetric_measure_without_identical_value_computes_its_diagonal(reps):
    """ENSD depends on the representation even against itself: its diagonal is computed (the
    participation ratio (tr K)^2 / tr(K^2) of the centred Gram matrix K), its lower triangle
    mirrored; a measure with identical_value (cka) skips the diagonal: 6 + 10 pairs in all."""
    res = compare_many(reps, metrics=("cka", "ensd"), progress=False)
    names = list(reps)
    for i, a in enumerate(names):
        Xc = reps[a] - reps[a].mean(0)
        K = Xc @ Xc.T
        assert res["ensd"][i, i] == pytest.approx(np.trace(K) ** 2 / np.trace(K @ K), rel=1e-9)
    np.testing.assert_array_equal(res["ensd"], res["ensd"].T)
    assert res.info == {"n_samples": 120} and res.errors == {}


class RecordingExecutor(concurrent.futures.Executor):
    """Runs each task in the calling thread when submitted and records what was submitted."""

    def __init__(self):
        self.tasks = []

    def submit(self, fn, *args, **kwargs):
        self.tasks.append(args)
        future = concurrent.futures.Future()
        future.set_result(fn(*args, **kwargs))
        return future


def test_which_pairs_are_tasks_square_and_rectangular(reps):
    """Square: a symmetric measure with identical_value runs i < j only, a non-symmetric one
    every i != j, a callable every (i, j); rectangular: every pair of every measure."""
    names = list(reps)
    run = RecordingExecutor()
    res = compare_many(reps, metrics=("cka", "pwcca", width_code), executor=run, progress=False)
    pairs = [(next(k for k in names if reps[k] is X), next(k for k in names if reps[k] is Y), m)
             for X, Y, m, _, _ in run.tasks]
    expected = ([(a, b, "cka") for i, a in enumerate(names) for b in names[i + 1:]]
                + [(a, b, "pwcca") for a in names for b in names if a != b]
                + [(a, b, width_code) for a in names for b in names])
    assert sorted(map(str, pairs)) == sorted(map(str, expected))
    assert all(attempt == 0 for *_, attempt in run.tasks)
    np.testing.assert_array_equal(np.diag(res["pwcca"]), 1.0)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            assert res["width_code"][i, j] == width_code(reps[a], reps[b])
    run = RecordingExecutor()
    rect = compare_many({"base": reps["base"]}, reps_b={"base too": reps["base"], "noise": reps["noise"]},
                        metrics=("cka", width_code), executor=run, progress=False)
    assert len(run.tasks) == 4 and rect["cka"][0, 0] == pytest.approx(1.0)
    assert rect["width_code"].tolist() == [[88.0, 86.0]]


class PendingExecutor(concurrent.futures.Executor):
    """The first task runs at once; every later one stays pending (a busy cluster)."""

    def __init__(self):
        self.futures = []

    def submit(self, fn, *args, **kwargs):
        future = concurrent.futures.Future()
        if not self.futures:
            future.set_result(fn(*args, **kwargs))
        self.futures.append(future)
        return future


def test_on_error_raise_cancels_the_pending_tasks(reps):
    def always_fails(X, Y):
        raise ArithmeticError("no value")

    pool = PendingExecutor()
    with pytest.raises(ArithmeticError, match="no value"):
        compare_many(reps, metrics=always_fails, executor=pool, progress=False, on_error="raise")
    assert len(pool.futures) == 16
    assert all(f.cancelled() for f in pool.futures[1:]) and not pool.futures[0].cancelled()


def test_the_failure_warning_summarises_the_first_failure(reps):
    data = {"base": reps["base"], "collapsed": np.ones((120, 2))}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = compare_many(data, metrics="cka", progress=False)
    assert len(caught) == 1 and caught[0].category is RuntimeWarning
    error = res.errors[("base", "collapsed", "cka")]
    assert str(caught[0].message) == (
        "compare_many: 2 of 2 pair(s) failed and are NaN (see result.errors); the first, "
        f"('base', 'collapsed', 'cka'): {error}")   # the other: collapsed with itself
    assert set(res.errors) == {("base", "collapsed", "cka"), ("collapsed", "collapsed", "cka")}
    assert error.startswith("ValueError: ")


def test_the_refusal_warning_names_the_error_and_the_pairs_run_here(reps):
    class Refusing(concurrent.futures.Executor):
        def submit(self, fn, *args, **kwargs):
            raise concurrent.futures.BrokenExecutor("closed")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = compare_many(reps, metrics="cka", executor=Refusing(), progress=False)
    assert [str(w.message) for w in caught] == [
        "compare_many: the executor stopped accepting work (BrokenExecutor: closed); 6 pair(s) ran in "
        "this process instead."]
    check_cka_matrix(res, reps)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"retries": -1}, ValueError, "retries must be >= 0; got -1."),
    ({"on_error": "ignore"}, ValueError, "on_error must be one of ('record', 'raise'); got 'ignore'."),
    ({"metrics": ["cka", 3]}, TypeError,
     "metrics entries must be names of latentbridge.measures.registry() or callables "
     "f(X, Y, **options) -> float; got int 3."),
    ({"metrics": ["cka", "cka"]}, ValueError,
     "metrics: the label(s) ['cka'] appear more than once; each matrix needs its own name (give "
     "callables distinct __name__s)."),
    ({"metrics": ["cka", "euclid"]}, ValueError,
     f"unknown metric(s) ['euclid']; choose from {sorted(compare_module.METRICS)}."),
    ({"metrics": []}, ValueError, f"unknown metric(s) []; choose from {sorted(compare_module.METRICS)}."),
    ({"reps": {"a": np.ones((5, 2))}}, ValueError,
     "reps must be a dict of at least two name -> array entries; got dict of length 1."),
    ({"reps": [np.ones((5, 2))] * 2}, ValueError,
     "reps must be a dict of at least two name -> array entries; got list of length 2."),
    ({"reps": 5}, ValueError, "reps must be a dict of at least two name -> array entries; got int of length ?."),
    ({"reps": {"a": np.ones((5, 2))}, "reps_b": {}}, ValueError,
     "reps_b must be a dict of at least one name -> array entries; got dict of length 0."),
    ({"reps": {"a": np.ones((5, 2)), "b": np.full((5, 2), np.inf)}}, ValueError,
     "reps['b'] contains NaN or infinity (first at row 0, column 0). Remove or impute those entries first."),
    ({"reps": {"a": np.ones((5, 2)), "b": np.ones((4, 2))}}, ValueError,
     "every representation must have the same rows (samples); got a: 5, b: 4."),
])
def test_bad_arguments_whole_messages(kwargs, error, message):
    call = {"reps": {"a": np.eye(5), "b": np.eye(5)[::-1]}, "metrics": "cka", "progress": False, **kwargs}
    with pytest.raises(error, match=whole(message)):
        compare_many(call.pop("reps"), **call)


def test_a_callable_needs_a_name():
    with pytest.raises(TypeError, match=r"^metrics: the callable functools\.partial\(.*\) has no __name__ to "
                                        r"label its matrix; wrap it in a def \(functools\.partial objects "
                                        r"have none\)\.$"):
        compare_many({"a": np.eye(4), "b": np.eye(4)}, metrics=functools.partial(width_code), progress=False)
    one = compare_many({"a": np.eye(4), "b": np.eye(4)[:, :2]}, metrics=width_code, progress=False)
    assert one.metrics == ["width_code"] and one["width_code"].tolist() == [[44.0, 42.0], [24.0, 22.0]]


def test_result_views_dict_and_repr_by_hand():
    mat = np.array([[1.0, 0.25, np.nan], [0.5, -0.125, 1 / 3]])
    res = ComparisonResult(names=["conv1", "fc"], column_names=["l1", "l2", "layer_three_long"],
                           matrices={"cka": mat, "rtd": np.zeros((2, 3))}, info={"n_samples": 7},
                           errors={("conv1", "layer_three_long", "cka"): "ValueError: x"})
    assert res["cka"] is mat and res.metrics == ["cka", "rtd"] and res.columns == ["l1", "l2", "layer_three_long"]
    assert res.metrics is not res.metrics and res.columns is not res.column_names
    assert res.to_dict() == {
        "names": ["conv1", "fc"], "columns": ["l1", "l2", "layer_three_long"],
        "metrics": {"cka": [[1.0, 0.25, None], [0.5, -0.125, 1 / 3]], "rtd": [[0.0] * 3] * 2},
        "info": {"n_samples": 7}, "errors": [["conv1", "layer_three_long", "cka", "ValueError: x"]]}
    assert repr(res) == "\n".join([
        "ComparisonResult(2 x 3, metrics=['cka', 'rtd'], 1 failed pair(s) in .errors)",
        "[cka]",
        "             l1        l2 layer_thr",
        "conv1    1.0000    0.2500       nan",
        "fc       0.5000   -0.1250    0.3333",
        "[rtd]",
        "             l1        l2 layer_thr",
        "conv1    0.0000    0.0000    0.0000",
        "fc       0.0000    0.0000    0.0000"])
    square = ComparisonResult(names=["a", "bb"], matrices={"cka": np.eye(2)})
    assert square.columns == ["a", "bb"]
    assert repr(square).splitlines()[0] == "ComparisonResult(2 representations, metrics=['cka'])"


def test_load_reads_files_without_errors_and_to_pandas_needs_pandas(tmp_path, monkeypatch):
    path = tmp_path / "old.npz"       # as written before the errors were saved
    np.savez(path, names=np.array(["a", "b"]), columns=np.array(["a", "b"]), square=np.array(True),
             info=np.array('{"n_samples": 3}'), **{"metric:cka": np.eye(2)})
    back = ComparisonResult.load(path)
    assert back.errors == {} and back.column_names is None and back.info == {"n_samples": 3}
    np.testing.assert_array_equal(back["cka"], np.eye(2))
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    with pytest.raises(ImportError, match=whole("to_pandas needs pandas: pip install pandas")):
        back.to_pandas("cka")


def test_save_stores_float64_matrices(tmp_path):
    """Matrices are saved as float64 whatever they held (here integers), and read back as such."""
    res = ComparisonResult(names=["a", "b"], column_names=["c", "d", "e"],
                           matrices={"count": np.arange(6).reshape(2, 3)})
    res.save(tmp_path / "r.npz")
    back = ComparisonResult.load(tmp_path / "r.npz")
    assert back["count"].dtype == np.float64 and back["count"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back.columns == ["c", "d", "e"] and back.column_names == ["c", "d", "e"]


def test_load_refuses_pickled_object_arrays(tmp_path):
    """A result file is plain arrays; one holding a pickled object array (which could run code when
    unpickled) is refused, not loaded."""
    path = tmp_path / "pickled.npz"
    np.savez(path, names=np.array([{"a": 1}, "b"], dtype=object), columns=np.array(["a", "b"]),
             square=np.array(True), info=np.array("{}"), **{"metric:cka": np.eye(2)})
    with pytest.raises(ValueError, match="allow_pickle=False"):
        ComparisonResult.load(path)


def test_constant_representation_diagonal_is_computed_not_assumed():
    """A dead layer (all rows equal) against itself: CKA and RTD are undefined there, so its
    diagonal entry is what the measure itself gives (here an error: NaN and a record), never the
    registered value on identical inputs; the other diagonal entries keep that value."""
    rng = np.random.default_rng(3)
    reps = {"a": rng.standard_normal((40, 5)), "b": rng.standard_normal((40, 4)), "dead": np.ones((40, 3))}
    with pytest.raises(ValueError):
        lb.cka(reps["dead"], reps["dead"])            # the oracle: the measure called directly
    with pytest.warns(RuntimeWarning, match="failed and are NaN"):
        res = lb.compare_many(reps, metrics=("cka", "procrustes_distance"), progress=False)
    cka = res["cka"]
    assert cka[0, 0] == 1.0 and cka[1, 1] == 1.0 and np.isnan(cka[2, 2])
    assert ("dead", "dead", "cka") in res.errors and ("a", "a", "cka") not in res.errors
    try:
        direct = lb.procrustes_distance(reps["dead"], reps["dead"])
    except ValueError:
        direct = np.nan
    np.testing.assert_equal(res["procrustes_distance"][2, 2], direct)
    assert res["procrustes_distance"][0, 0] == 0.0


def offset_width_code(X, Y, offset=0.0, scale=1.0):
    """width_code with keyword options: scale * (10 * width(X) + width(Y)) + offset."""
    return scale * width_code(X, Y) + offset


@pytest.mark.parametrize("executor", [None, "recording"])
def test_metric_options_reach_each_measure_by_its_label(reps, monkeypatch, executor):
    """metric_options[label] is passed to that measure only: a registered one (a spy in the registry
    records its keyword arguments) and a callable of one's own, in this thread and on an executor."""
    received = spy_in_registry(monkeypatch, "cka", 0.25)
    two = {k: reps[k] for k in ("base", "noise")}
    pool = RecordingExecutor() if executor else None
    res = compare_many(two, metrics=("cka", offset_width_code), executor=pool, progress=False,
                       metric_options={"cka": {"debiased": True},
                                       "offset_width_code": {"offset": 0.5, "scale": 2.0}})
    assert received == [{"debiased": True}]                       # one unordered pair
    assert res["cka"].tolist() == [[1.0, 0.25], [0.25, 1.0]]
    assert res["offset_width_code"].tolist() == [[2.0 * 88 + 0.5, 2.0 * 86 + 0.5],
                                                 [2.0 * 68 + 0.5, 2.0 * 66 + 0.5]]


def test_progress_is_shown_by_default(reps, capsys):
    two = {k: reps[k] for k in ("base", "noise")}
    compare_many(two, metrics="cka")
    assert "compare_many" in capsys.readouterr().err          # the default progress=True
    compare_many(two, metrics="cka", progress=False)
    assert capsys.readouterr().err == ""


def test_representations_need_two_rows_and_rectangular_sizes_are_listed_in_full():
    def first(X, Y):
        return float(X[0, 0] + Y[-1, 0])

    two_rows = {"a": np.array([[1.0, 0.0], [2.0, 1.0]]), "b": np.array([[3.0], [5.0]])}
    assert compare_many(two_rows, metrics=first, progress=False)["first"].tolist() == [[3.0, 6.0],
                                                                                       [5.0, 8.0]]
    with pytest.raises(ValueError, match=r"^reps\['a'\] has 1 sample\(s\) .*at least 2 required\.$"):
        compare_many({"a": np.ones((1, 2)), "b": np.ones((1, 2))}, metrics=first, progress=False)
    with pytest.raises(ValueError, match=r"^every representation must have the same rows \(samples\); "
                                         r"got a: 5; reps_b: b: 6, c: 5\.$"):
        compare_many({"a": np.ones((5, 2))}, reps_b={"b": np.ones((6, 2)), "c": np.ones((5, 2))},
                     metrics=first, progress=False)
