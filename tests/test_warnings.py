"""Every warning of latentbridge names the user's line: the file and line of the call made outside the
package, whatever lies in between (other public functions, scikit-learn's Pipeline and set_output
wrapper, and in the mutation harness mutmut's trampoline). The oracle is this file's own line: each
check compares (filename, lineno) with the line after a ``next_line()`` call, written on one line.
"""

import _thread
import concurrent.futures
import os
import sys
import time
import warnings

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import latentbridge as lb
from latentbridge._warnings import warn_user
from latentbridge.compare import compare_many, compare_pair
from latentbridge.diffusion import (
    CandidateRecallWarning,
    DisconnectedGraphWarning,
    EigensolverWarning,
    NystromWarning,
    WhitneyWarning,
)
from latentbridge.measures import RegularisationWarning

PACKAGE_DIR = os.path.dirname(os.path.abspath(lb.__file__))


def next_line():
    """The line after the caller's: where the call under test is written."""
    return sys._getframe(1).f_lineno + 1


def assert_names(record, line, count=1):
    assert len(record) == count
    for w in record:
        assert (w.filename, w.lineno) == (__file__, line), str(w.message)


def relay_in(directory):
    """A function ``relay(f, *args) = f(*args)`` whose code claims to live in ``directory``: a
    stand-in for a frame of that package between the caller and the warning."""
    namespace = {}
    source = "def relay(f, *args):\n    return f(*args)\n"
    exec(compile(source, os.path.join(directory, "relay_for_test_warnings.py"), "exec"), namespace)
    return namespace["relay"]


# ---- the helper itself ------------------------------------------------------------------------

def test_a_direct_call_names_the_callers_line():
    with pytest.warns(UserWarning, match="^direct$") as record:
        line = next_line()
        warn_user("direct", UserWarning)
    assert_names(record, line)
    assert record[0].category is UserWarning


def test_frames_of_latentbridge_are_skipped_however_many():
    relay = relay_in(PACKAGE_DIR)
    inner = relay_in(os.path.join(PACKAGE_DIR, "diffusion"))     # a subpackage's file
    with pytest.warns(RuntimeWarning) as record:
        line = next_line()
        relay(relay, inner, warn_user, "three deep", RuntimeWarning)
    assert_names(record, line)
    assert record[0].category is RuntimeWarning


@pytest.mark.parametrize("package", ["sklearn", "mutmut"])
def test_frames_of_the_wrapping_packages_are_skipped(package):
    directory = os.path.dirname(os.path.abspath(pytest.importorskip(package).__file__))
    wrapper, ours = relay_in(os.path.join(directory, "utils")), relay_in(PACKAGE_DIR)
    with pytest.warns(UserWarning) as record:
        line = next_line()
        ours(wrapper, ours, warn_user, "wrapped", UserWarning)
    assert_names(record, line)


def test_a_frame_of_another_package_is_the_users():
    """Only latentbridge and the wrappers are skipped: a frame of another library (numpy's directory
    here) is where the walk stops."""
    other = os.path.join(os.path.dirname(os.path.abspath(np.__file__)), "relay_for_test_warnings.py")
    ours = relay_in(PACKAGE_DIR)
    with pytest.warns(UserWarning) as record:
        ours(relay_in(os.path.dirname(other)), ours, warn_user, "stops at numpy", UserWarning)
    assert [(w.filename, w.lineno) for w in record] == [(other, 2)]


@pytest.mark.parametrize("package", ["latentbridge", "sklearn"])
def test_a_package_that_only_shares_the_name_prefix_is_another(package):
    """A skipped directory ends with a separator: latentbridge_extra/ or sklearn_extra/ (the
    scikit-learn-extra package) is someone else's."""
    sibling = os.path.dirname(os.path.abspath(sys.modules[package].__file__)) + "_extra"
    with pytest.warns(UserWarning) as record:
        relay_in(sibling)(warn_user, "sibling", UserWarning)
    expected = os.path.join(sibling, "relay_for_test_warnings.py")
    assert [(w.filename, w.lineno) for w in record] == [(expected, 2)]


def test_wrappers_that_are_not_imported_are_not_needed(monkeypatch):
    monkeypatch.delitem(sys.modules, "sklearn")
    with pytest.warns(UserWarning) as record:
        line = next_line()
        warn_user("without scikit-learn", UserWarning)
    assert_names(record, line)


def test_a_stack_of_latentbridge_frames_only_names_its_outermost_line():
    """A thread started with _thread runs the relay as its outermost frame: no frame is the user's,
    so the warning names the outermost one (still a line, never the warnings module's 'sys')."""
    relay = relay_in(PACKAGE_DIR)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _thread.start_new_thread(relay, (warn_user, "from a bare thread", UserWarning))
        deadline = time.monotonic() + 10.0
        while not record and time.monotonic() < deadline:
            time.sleep(0.005)
    assert [(w.filename, w.lineno, str(w.message)) for w in record] == [
        (os.path.join(PACKAGE_DIR, "relay_for_test_warnings.py"), 2, "from a bare thread")]


# ---- each warning of the package --------------------------------------------------------------

def test_analytic_map_rank_warning():
    W_A = np.random.default_rng(0).standard_normal((3, 4))
    W_B = np.outer([1.0, 2.0, 0.0], [1, 0, 0, 0]) + np.outer([0.0, 1.0, 1.0], [0, 1, 0, 0])
    with pytest.warns(UserWarning, match="W_B has rank 2") as record:
        line = next_line()
        lb.analytic_map(W_A, W_B)
    assert_names(record, line)


def test_compare_many_failure_and_refusal_warnings():
    rng = np.random.default_rng(1)
    data = {"base": rng.standard_normal((40, 3)), "collapsed": np.ones((40, 2))}
    with pytest.warns(RuntimeWarning, match="failed and are NaN") as record:
        line = next_line()
        compare_many(data, metrics="cka", progress=False)
    assert_names(record, line)

    class Refusing(concurrent.futures.Executor):
        def submit(self, fn, *args, **kwargs):
            raise concurrent.futures.BrokenExecutor("closed")

    reps = {"a": rng.standard_normal((40, 3)), "b": rng.standard_normal((40, 4))}
    with pytest.warns(RuntimeWarning, match="stopped accepting work") as record:
        line = next_line()
        compare_many(reps, metrics="cka", executor=Refusing(), progress=False)
    assert_names(record, line)


def test_rtd_batch_warning_directly_and_through_compare_pair():
    rng = np.random.default_rng(2)
    P, Q = rng.standard_normal((30, 3)), rng.standard_normal((30, 3))
    with pytest.warns(UserWarning, match="batch=31 exceeds the 30 samples") as record:
        line = next_line()
        lb.rtd(P, Q, trials=1, batch=31)
    assert_names(record, line)
    with pytest.warns(UserWarning, match="batch=31 exceeds the 30 samples") as record:
        line = next_line()
        compare_pair(P, Q, "rtd", {"trials": 1, "batch": 31})
    assert_names(record, line)


def test_regularisation_warning_through_the_nested_measures():
    """check_ridge sits below canonical_correlations or _shape_cosine, below cca or shape_distance,
    and one call further below compare_pair."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((20, 30)), rng.standard_normal((20, 30))
    with pytest.warns(RegularisationWarning, match="^cca: rank") as record:
        line = next_line()
        lb.cca(X, Y)
    assert_names(record, line)
    with pytest.warns(RegularisationWarning, match=r"^shape_distance\(alpha=0\): rank") as record:
        line = next_line()
        lb.shape_distance(X[:, :4], Y[:, :16], alpha=0.0)
    assert_names(record, line)
    with pytest.warns(RegularisationWarning, match="^cca: rank") as record:
        line = next_line()
        compare_pair(X, Y, "cca")
    assert_names(record, line)


def test_whitney_warning():
    Y = np.random.default_rng(4).standard_normal((30, 2))
    with pytest.warns(WhitneyWarning) as record:
        line = next_line()
        lb.whitney_check(Y, dimension=1.0)
    assert_names(record, line)


def _fitted_maps(n=30, seed=5):
    Y = np.random.default_rng(seed).standard_normal((n, 2))
    return Y, lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0)


def test_nystrom_warning_through_set_output_and_a_pipeline():
    Y, dm = _fitted_maps()
    dm.fit(Y)
    dm.eigenvalues_ = np.array([0.5, 1e-12])
    with pytest.warns(NystromWarning) as record:
        line = next_line()
        dm.transform(Y[:2])                   # scikit-learn's set_output wraps transform
    assert_names(record, line)
    for output in ("default", "pandas"):
        pipe = make_pipeline(StandardScaler(), lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0))
        pipe.set_output(transform=output).fit(Y)
        pipe[-1].eigenvalues_ = np.array([0.5, 1e-12])
        with pytest.warns(NystromWarning) as record:
            line = next_line()
            pipe.transform(Y[:2])
        assert_names(record, line)


def _tanh_data(n=100, seed=6):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((4, 2))
    Y = np.tanh(rng.uniform(-1, 1, (n, 2)) @ W.T)
    return Y, lb.precisions_from_jacobians((1 - Y**2)[:, :, None] * W[None])


def test_candidate_recall_warning_from_fit_fit_transform_and_a_pipeline(monkeypatch):
    from latentbridge.diffusion import maps

    monkeypatch.setattr(maps, "neighbor_recall", lambda *args: 0.5)
    Y, C = _tanh_data()

    def model():
        return lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=8, k_epsilon=4, random_state=0)

    with pytest.warns(CandidateRecallWarning) as record:
        line = next_line()
        model().fit(Y, precisions=C)
    assert_names(record, line)
    with pytest.warns(CandidateRecallWarning) as record:
        line = next_line()
        model().fit_transform(Y, precisions=C)          # through fit, then _warn_recall
    assert_names(record, line)
    with pytest.warns(CandidateRecallWarning) as record:
        line = next_line()
        make_pipeline(model()).fit(Y, diffusionmaps__precisions=C)
    assert_names(record, line)


def test_disconnected_graph_warning_from_fit_and_fit_transform():
    rng = np.random.default_rng(7)
    Y = np.vstack([rng.standard_normal((40, 2)), 100 + rng.standard_normal((40, 2))])
    dm = lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0)
    with pytest.warns(DisconnectedGraphWarning) as record:
        line = next_line()
        dm.fit(Y)
    assert_names(record, line)
    with pytest.warns(DisconnectedGraphWarning) as record:
        line = next_line()
        dm.fit_transform(Y)
    assert_names(record, line)


class _Unconverged:
    """The real kernels, but every eigensolver report says it stopped early."""

    def __init__(self, ops):
        self._ops = ops

    def __getattr__(self, name):
        return getattr(self._ops, name)

    def eigsh_largest(self, *args):
        vals, vecs, info = self._ops.eigsh_largest(*args)
        return vals, vecs, {**info, "converged": False}


def test_eigensolver_warning_from_fit_and_from_network_transformation(monkeypatch):
    from latentbridge.diffusion import spectrum

    real = spectrum.kernels
    monkeypatch.setattr(spectrum, "kernels", lambda device: _Unconverged(real(device)))
    Y, dm = _fitted_maps(seed=8)
    with pytest.warns(EigensolverWarning) as record:
        line = next_line()
        dm.fit(Y)
    assert_names(record, line)
    nt = lb.NetworkTransformation(lb.DiffusionMaps(2, n_neighbors=8, k_epsilon=4, random_state=0))
    with pytest.warns(EigensolverWarning) as record:
        line = next_line()
        nt.fit(Y, Y[:, ::-1])                  # one DiffusionMaps.fit per network: two warnings
    assert_names(record, line, count=2)


def test_torch_warnings():
    torch = pytest.importorskip("torch")
    lbt = pytest.importorskip("latentbridge.torch")
    nn = torch.nn
    torch.manual_seed(0)
    live = nn.Sequential(nn.Linear(5, 6), nn.Tanh())
    dead = nn.Sequential(nn.Linear(5, 4), nn.ReLU())
    with torch.no_grad():
        dead[0].bias.fill_(-100.0)
    x = torch.randn(20, 5)
    with pytest.warns(UserWarning, match="are constant over the samples") as record:
        line = next_line()
        lbt.compare_layers(live, dead, x, progress=False)
    assert_names(record, line)
    big = nn.Sequential(*[nn.Identity() for _ in range(101)])
    with pytest.warns(UserWarning, match="101 leaf modules") as record:
        line = next_line()
        lbt.activations(big, torch.randn(3, 2), None)
    assert_names(record, line)
    with pytest.warns(UserWarning, match="101 leaf modules") as record:
        line = next_line()
        lbt.compare_layers(big, live, x, layers_b=["1"], progress=False)
    assert_names(record, line)
