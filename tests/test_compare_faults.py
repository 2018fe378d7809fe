"""compare_many under faults: a worker process killed mid-run (Dask LocalCluster, process pool), lost
tasks retried, a measure that raises on some pairs, progress over the pairs.

The worker kills are synchronised with files, not sleeps: the measure writes ``started-<pid>`` and waits
for a ``go`` file, so a worker is known to be inside a task when its process is killed.
"""

import concurrent.futures
import os
import signal
import time

import numpy as np
import pytest
from test_compare import wall_clock_guard  # noqa: F401  (autouse: a test that hangs fails instead)

from latentbridge.compare import compare_many

SYNC_TIMEOUT = 90.0  # seconds; only reached when something is broken (the test then fails, not hangs)


def linear_cka_oracle(X, Y):
    """Linear CKA's closed form, written out independently of the library."""
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    return np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc))


def waiting_cka(sync_dir):
    """A measure ``wait_then_cka(X, Y)``: it writes ``started-<its pid>`` in ``sync_dir``, waits for the file
    ``go`` there, then returns linear CKA. A closure that refers only to modules, so that Dask (cloudpickle)
    ships it by value to workers that cannot import this test module."""

    def wait_then_cka(X, Y):
        import os
        import pathlib
        import time

        import latentbridge

        folder = pathlib.Path(sync_dir)
        (folder / f"started-{os.getpid()}").touch()
        deadline = time.monotonic() + 90.0
        while not (folder / "go").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the test never wrote its go file")
            time.sleep(0.01)
        return latentbridge.cka(X, Y)

    return wait_then_cka


def wait_then_cka(X, Y, sync_dir):
    """The same measure at module level (a process pool pickles functions by reference)."""
    return waiting_cka(sync_dir)(X, Y)


@pytest.fixture(scope="module")
def reps():
    rng = np.random.default_rng(7)
    base = rng.standard_normal((40, 5))
    return {"base": base, "mixed": base @ rng.standard_normal((5, 4)) + 0.5 * rng.standard_normal((40, 4)),
            "noise": rng.standard_normal((40, 3)), "wide": np.hstack([base, rng.standard_normal((40, 6))])}


def wait_for_started(sync_dir, count, candidates):
    """Pids (among ``candidates``, the processes this test started) that are inside a task, once at
    least ``count`` distinct ones are."""
    deadline = time.monotonic() + SYNC_TIMEOUT
    while True:
        pids = {int(p.name.split("-")[1]) for p in sync_dir.glob("started-*")}
        inside = pids & set(candidates())
        if len(inside) >= count:
            return sorted(inside)
        assert time.monotonic() < deadline, f"workers never started their tasks (started: {pids})"
        time.sleep(0.02)


def our_descendants():
    import psutil

    return [p.pid for p in psutil.Process().children(recursive=True)]


def run_in_background(fn):
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


def serial_reference(reps, sync_dir, metrics, options=None):
    (sync_dir / "go").touch()
    try:
        return compare_many(reps, metrics=metrics, progress=False, metric_options=options)
    finally:
        (sync_dir / "go").unlink()


def assert_same_result(got, expected):
    assert got.names == expected.names and got.metrics == expected.metrics and got.errors == {}
    for metric in expected.metrics:
        np.testing.assert_array_equal(got[metric], expected[metric])


def test_dask_local_cluster_survives_a_killed_worker(reps, tmp_path):
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("psutil")
    measure = waiting_cka(str(tmp_path))
    expected = serial_reference(reps, tmp_path, [measure, "cka"])
    names = list(reps)
    for i, a in enumerate(names):  # the serial run itself is right
        for j, b in enumerate(names):
            assert expected["wait_then_cka"][i, j] == pytest.approx(linear_cka_oracle(reps[a], reps[b]), rel=1e-9)
    for p in tmp_path.glob("started-*"):
        p.unlink()

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        worker_pids = set(client.run(os.getpid).values())
        assert len(worker_pids) == 2
        run = run_in_background(lambda: compare_many(reps, metrics=[measure, "cka"],
                                                     executor=client.get_executor(), progress=False))
        busy = wait_for_started(tmp_path, 2, lambda: worker_pids)  # both workers are inside a task
        victim = busy[0]
        assert victim in our_descendants()
        nanny = next(n for n in cluster.workers.values() if n.pid == victim)
        nanny.close_gracefully(reason="test: this worker is lost for good")  # no restart: a lost node
        os.kill(victim, signal.SIGKILL)
        (tmp_path / "go").touch()
        got = run.result(timeout=SYNC_TIMEOUT)
    assert_same_result(got, expected)


def test_process_pool_that_breaks_finishes_here_with_a_warning(reps, tmp_path):
    pytest.importorskip("psutil")
    options = {"wait_then_cka": {"sync_dir": str(tmp_path)}}
    expected = serial_reference(reps, tmp_path, [wait_then_cka], options)
    for p in tmp_path.glob("started-*"):
        p.unlink()
    # the warning comes from the background thread: record from before the run starts
    with pytest.warns(RuntimeWarning, match=r"stopped accepting work \(BrokenProcessPool.*ran in this process"), \
            concurrent.futures.ProcessPoolExecutor(2) as pool:
        run = run_in_background(lambda: compare_many(reps, metrics=[wait_then_cka], executor=pool,
                                                     progress=False, metric_options=options))
        victim = wait_for_started(tmp_path, 1, our_descendants)[0]
        os.kill(victim, signal.SIGKILL)
        (tmp_path / "go").touch()
        got = run.result(timeout=SYNC_TIMEOUT)
    assert_same_result(got, expected)


class FlakyExecutor(concurrent.futures.Executor):
    """Runs tasks in the calling thread; the first ``failures`` submissions of each task come back lost
    (their future raises ``ConnectionError``), as when a worker dies; after ``refuse_after`` submissions
    in all, ``submit`` raises ``BrokenExecutor``."""

    def __init__(self, failures=1, refuse_after=None):
        self.failures, self.refuse_after, self.submitted = failures, refuse_after, 0

    def submit(self, fn, *args, **kwargs):
        self.submitted += 1
        if self.refuse_after is not None and self.submitted > self.refuse_after:
            raise concurrent.futures.BrokenExecutor("the pool lost a process")
        future = concurrent.futures.Future()
        attempt = args[-1]
        if attempt < self.failures:
            future.set_exception(ConnectionError("worker tcp://10.0.0.1 lost"))
        else:
            future.set_result(fn(*args, **kwargs))
        return future


def test_lost_tasks_are_retried(reps):
    expected = compare_many(reps, metrics=("cka", "pwcca"), progress=False)
    flaky = FlakyExecutor(failures=2)
    got = compare_many(reps, metrics=("cka", "pwcca"), executor=flaky, progress=False, retries=2)
    assert_same_result(got, expected)
    pairs = 6 + 12  # cka: unordered pairs; pwcca (not symmetric): ordered pairs
    assert flaky.submitted == 3 * pairs


def test_two_retries_by_default(reps):
    """Lost twice, a pair still gets its value (three submissions); lost three times, it is an error."""
    expected = compare_many(reps, metrics="cka", progress=False)
    flaky = FlakyExecutor(failures=2)
    assert_same_result(compare_many(reps, metrics="cka", executor=flaky, progress=False), expected)
    assert flaky.submitted == 3 * 6
    with pytest.warns(RuntimeWarning, match="6 of 6 pair"):
        got = compare_many(reps, metrics="cka", executor=FlakyExecutor(failures=3), progress=False)
    assert set(got.errors.values()) == {"ConnectionError: worker tcp://10.0.0.1 lost"}


def test_a_task_lost_more_often_than_retries_is_an_error_of_its_pair(reps):
    with pytest.warns(RuntimeWarning, match="6 of 6 pair"):
        got = compare_many(reps, metrics="cka", executor=FlakyExecutor(failures=1), progress=False, retries=0)
    assert len(got.errors) == 6
    assert set(got.errors.values()) == {"ConnectionError: worker tcp://10.0.0.1 lost"}
    assert np.isnan(got["cka"][~np.eye(4, dtype=bool)]).all() and (np.diag(got["cka"]) == 1.0).all()


def test_an_executor_that_refuses_work_leaves_the_rest_to_this_process(reps):
    expected = compare_many(reps, metrics="cka", progress=False)
    with pytest.warns(RuntimeWarning, match=r"BrokenExecutor: the pool lost a process\); 4 pair"):
        got = compare_many(reps, metrics="cka", executor=FlakyExecutor(failures=0, refuse_after=2),
                           progress=False)
    assert_same_result(got, expected)


def fails_on_three_columns(X, Y):
    """A measure of one's own: ``10 * width(X) + width(Y)``, raising when either width is 3."""
    if X.shape[1] == 3 or Y.shape[1] == 3:
        raise ValueError("three columns are not supported")
    return 10.0 * X.shape[1] + Y.shape[1]


@pytest.mark.parametrize("executor", [None, "threads"])
def test_a_raising_measure_is_reported_by_pair_and_the_rest_is_kept(reps, executor):
    data = {**reps, "collapsed": np.ones((40, 2))}  # cka raises on a constant representation
    pool = concurrent.futures.ThreadPoolExecutor(2) if executor else None
    try:
        with pytest.warns(RuntimeWarning) as caught:
            got = compare_many(data, metrics=("cka", fails_on_three_columns), executor=pool, progress=False)
    finally:
        if pool:
            pool.shutdown()
    assert len(caught) == 1
    # cka: 10 unordered pairs, 4 with the collapsed one, and the collapsed one against itself (a
    # constant representation's diagonal is computed); the callable: 25 ordered pairs, 9 with noise
    assert "14 of 36 pair(s) failed" in str(caught[0].message)
    names = list(data)
    expected = {}
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i <= j and "collapsed" in (a, b):    # cka checks X first
                expected[(a, b, "cka")] = f"ValueError: {'X' if a == b else 'Y'} is constant"
            if data[a].shape[1] == 3 or data[b].shape[1] == 3:
                expected[(a, b, "fails_on_three_columns")] = "ValueError: three columns are not supported"
    assert set(got.errors) == set(expected)
    for key, prefix in expected.items():
        assert got.errors[key].startswith(prefix)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            width = 10.0 * data[a].shape[1] + data[b].shape[1]
            cka_failed = "collapsed" in (a, b)
            if cka_failed:
                assert np.isnan(got["cka"][i, j])
            else:
                assert got["cka"][i, j] == pytest.approx(1.0 if a == b else linear_cka_oracle(data[a], data[b]))
            if (a, b, "fails_on_three_columns") in expected:
                assert np.isnan(got["fails_on_three_columns"][i, j])
            else:
                assert got["fails_on_three_columns"][i, j] == width


def test_on_error_raise_raises_the_measures_own_error(reps):
    with pytest.raises(ValueError, match="three columns are not supported"):
        compare_many(reps, metrics=fails_on_three_columns, progress=False, on_error="raise")
    with concurrent.futures.ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="three columns"):
        compare_many(reps, metrics=fails_on_three_columns, executor=pool, progress=False, on_error="raise")


def test_errors_survive_save_and_load(reps, tmp_path):
    from latentbridge.compare import ComparisonResult

    with pytest.warns(RuntimeWarning, match="failed"):
        got = compare_many(reps, metrics=fails_on_three_columns, progress=False)
    got.save(tmp_path / "r.npz")
    back = ComparisonResult.load(tmp_path / "r.npz")
    assert back.errors == got.errors and len(back.errors) == 7
    assert "7 failed pair(s)" in repr(back)
    plain = got.to_dict()
    assert [row[:3] for row in plain["errors"]] == [list(k) for k in got.errors]
    assert plain["metrics"]["fails_on_three_columns"][0][2] is None  # NaN -> null


def test_rectangular_comparison_computes_every_pair(reps):
    layers_b = {"b0": reps["noise"], "b1": reps["base"][:, ::-1]}
    got = compare_many({k: reps[k] for k in ("base", "wide")}, reps_b=layers_b, metrics="cka", progress=False)
    assert got.names == ["base", "wide"] and got.columns == ["b0", "b1"] and got["cka"].shape == (2, 2)
    for i, a in enumerate(("base", "wide")):
        for j, b in enumerate(layers_b):
            assert got["cka"][i, j] == pytest.approx(linear_cka_oracle(reps[a], layers_b[b]), rel=1e-9)
    with pytest.raises(ValueError, match=r"same rows.*reps_b: b0: 39"):
        compare_many({"a": reps["base"]}, reps_b={"b0": reps["noise"][:39]}, metrics="cka", progress=False)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"retries": -1}, ValueError, "retries"),
    ({"on_error": "ignore"}, ValueError, "on_error"),
    ({"metrics": ["cka", 3]}, TypeError, "callables"),
    ({"metrics": ["cka", "cka"]}, ValueError, "more than once"),
    ({"metrics": []}, ValueError, "unknown metric"),
])
def test_bad_options(reps, kwargs, error, match):
    with pytest.raises(error, match=match):
        compare_many(reps, **{"metrics": "cka", "progress": False, **kwargs})


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_progress_counts_every_pair_on_stderr(reps, capsys, monkeypatch, tqdm_installed):
    if tqdm_installed:
        pytest.importorskip("tqdm")
    else:
        monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)  # import fails: the text counter
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        compare_many(reps, metrics=("cka", "pwcca"), executor=pool, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "compare_many" in captured.err and "18/18" in captured.err
    if not tqdm_installed:
        assert captured.err.endswith("compare_many: 18/18\n")
    compare_many(reps, metrics="cka", progress=False)
    assert capsys.readouterr().err == ""


def test_progress_closes_when_a_pair_raises(reps, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)
    with pytest.raises(ValueError, match="three columns"):
        compare_many(reps, metrics=fails_on_three_columns, progress=True, on_error="raise")
    assert capsys.readouterr().err.endswith("\n")
