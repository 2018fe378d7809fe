"""DiffusionMaps and NetworkTransformation as scikit-learn estimators: scikit-learn's own checks,
clone/get_params/set_params with the nested ``diffusion_maps__*`` parameters, pipelines and pandas
output. Oracles: scikit-learn's checks, StandardScaler written out by hand, the estimator fitted
directly on the same data."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_sklearn_estimators import _DTYPE_RULE

import latentbridge as lb

# The sparse kernel's Nystrom extension (transform) uses the n_neighbors nearest training points of
# a query, while the fitted kernel row of a training point is the symmetric union of the k-NN lists:
# at a training point transform approximates embedding_ instead of reproducing it, so the checks
# that compare fit_transform(X) with fit(X).transform(X) cannot apply. With n_neighbors=None (all
# pairs) the rows are the same and those checks pass (the dense instance runs them).
_SPARSE_NYSTROM = ("sparse Nystrom (k nearest training points) approximates the fitted "
                   "coordinates of the symmetric union graph; exact with n_neighbors=None")
_SPARSE_ONLY = ["check_transformer_general", "check_transformer_data_not_an_array"]


def _expected_failed_checks(estimator):
    failed = dict(_DTYPE_RULE)  # the project-wide dtype rule (TypeError for complex/object input)
    if estimator.n_neighbors is not None:
        failed.update(dict.fromkeys(_SPARSE_ONLY, _SPARSE_NYSTROM))
    return failed


# scikit-learn's data are well separated blobs: the kernel graph is (nearly) disconnected and
# DisconnectedGraphWarning says so, rightly; the checks test the API, not that data.
@pytest.mark.filterwarnings("ignore::latentbridge.diffusion.DisconnectedGraphWarning")
@parametrize_with_checks(
    [lb.DiffusionMaps(2, n_neighbors=None, k_epsilon=2, random_state=0),
     lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=2, random_state=0)],
    expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture
def square():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 2))
    W = rng.standard_normal((5, 2))
    Y = np.tanh(X @ W.T)
    return X, Y, (1 - Y**2)[:, :, None] * W[None]


def test_pipeline_with_scaler_equals_fit_on_standardised_data(square):
    _, Y, _ = square
    Y = Y * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + 2.0  # columns on different scales
    params = dict(n_components=3, n_neighbors=12, random_state=0)
    got = make_pipeline(StandardScaler(), lb.DiffusionMaps(**params)).fit_transform(Y)
    Ys = (Y - Y.mean(0)) / Y.std(0)  # StandardScaler by hand
    ref = lb.DiffusionMaps(**params).fit(Ys)
    np.testing.assert_allclose(got, ref.embedding_, rtol=1e-9, atol=1e-9)


def test_pipeline_routes_precisions_to_fit(square):
    _, Y, J = square
    C = lb.precisions_from_jacobians(J)
    params = dict(n_components=2, metric="mahalanobis", n_neighbors=12, random_state=0)
    pipe = make_pipeline(lb.DiffusionMaps(**params)).fit(Y, diffusionmaps__precisions=C)
    ref = lb.DiffusionMaps(**params).fit(Y, precisions=C)
    np.testing.assert_array_equal(pipe[-1].embedding_, ref.embedding_)
    np.testing.assert_array_equal(pipe[-1].eigenvalues_, ref.eigenvalues_)


def test_pandas_output_and_feature_names(square):
    pd = pytest.importorskip("pandas")
    _, Y, _ = square
    frame = pd.DataFrame(Y, columns=[f"unit{i}" for i in range(5)])
    dm = lb.DiffusionMaps(3, n_neighbors=12, random_state=0).set_output(transform="pandas")
    out = dm.fit_transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["diffusionmaps0", "diffusionmaps1", "diffusionmaps2"]
    np.testing.assert_array_equal(out.to_numpy(), dm.embedding_)
    assert list(dm.feature_names_in_) == list(frame.columns)
    new = dm.transform(frame.iloc[:7])
    assert isinstance(new, pd.DataFrame) and new.shape == (7, 3)


def test_precisions_in_the_target_slot_raise_with_the_fix(square):
    _, Y, J = square
    C = lb.precisions_from_jacobians(J)
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=12)
    with pytest.raises(TypeError, match=r"pass the precisions by keyword: fit\(Y, precisions=C\)"):
        dm.fit(Y, C)
    with pytest.raises(TypeError, match="by keyword"):
        dm.fit_transform(Y, C)
    # a 1-D target, as a pipeline passes one, is ignored
    e = lb.DiffusionMaps(2, n_neighbors=12, random_state=0)
    np.testing.assert_array_equal(e.fit(Y, np.arange(len(Y))).embedding_,
                                  lb.DiffusionMaps(2, n_neighbors=12, random_state=0).fit(Y).embedding_)


def test_new_parameters_are_validated():
    Y = np.random.default_rng(1).standard_normal((40, 2))
    with pytest.raises(ValueError, match="candidate_factor must be >= 1"):
        lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=3, candidate_factor=0).fit(Y)
    with pytest.raises(TypeError, match="candidate_factor must be an integer"):
        lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=3, candidate_factor=2.5).fit(Y)
    with pytest.raises(ValueError, match=r"tol must be in \(0.0, 1.0\)"):
        lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=3, tol=0.0).fit(Y)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        lb.DiffusionMaps(2, n_neighbors=5, k_epsilon=3, alpha="1.0").fit(Y)


def test_tol_is_the_eigensolvers_tolerance():
    # oracle: ARPACK on the fitted kernel T; the eigenvalue error is at most the residual tol
    from scipy.sparse.linalg import eigsh

    Y = np.random.default_rng(2).uniform(size=(1500, 2)) * [2.0, 1.0]
    fits = {tol: lb.DiffusionMaps(4, n_neighbors=16, random_state=0, tol=tol).fit(Y)
            for tol in (1e-10, 1e-3)}
    for tol, dm in fits.items():
        ref = np.sort(eigsh(dm.kernel_matrix_, k=5, which="LA", tol=1e-13)[0])[::-1][1:]
        np.testing.assert_allclose(dm.eigenvalues_, ref, rtol=0, atol=tol)
    assert not np.array_equal(fits[1e-3].eigenvalues_, fits[1e-10].eigenvalues_)


# ---- NetworkTransformation: the nested DiffusionMaps ---------------------------------------------


def test_nested_parameters_get_set_and_clone():
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=20, random_state=0)
    nt = lb.NetworkTransformation(dm, degenerate_rtol=0.2)
    deep = nt.get_params(deep=True)
    assert deep["diffusion_maps"] is dm and deep["degenerate_rtol"] == 0.2
    for name, value in dm.get_params().items():
        assert deep[f"diffusion_maps__{name}"] == value
    # set_params reaches the nested estimator
    assert nt.set_params(diffusion_maps__n_components=3, diffusion_maps__tol=1e-9,
                         degenerate_rtol=0.05) is nt
    assert dm.n_components == 3 and dm.tol == 1e-9 and nt.degenerate_rtol == 0.05
    # clone: equal parameters, a new nested estimator
    twin = clone(nt)
    assert twin.diffusion_maps is not dm
    assert twin.get_params(deep=False).keys() == nt.get_params(deep=False).keys()
    assert {k: v for k, v in twin.get_params().items() if k != "diffusion_maps"} == \
        {k: v for k, v in nt.get_params().items() if k != "diffusion_maps"}
    # round trip without GridSearch: every deep parameter of one onto a fresh one
    fresh = lb.NetworkTransformation(lb.DiffusionMaps())
    nested = {k: v for k, v in nt.get_params().items() if "__" in k}
    fresh.set_params(**nested, degenerate_rtol=nt.degenerate_rtol)
    assert {k: v for k, v in fresh.get_params().items() if k != "diffusion_maps"} == \
        {k: v for k, v in nt.get_params().items() if k != "diffusion_maps"}
    with pytest.raises(ValueError, match="Invalid parameter"):
        nt.set_params(diffusion_maps__bogus=1)


def test_fit_clones_the_nested_estimator(square):
    X, Y, J = square
    C = lb.precisions_from_jacobians(J)
    dm = lb.DiffusionMaps(2, metric="mahalanobis", n_neighbors=12, random_state=0)
    nt = lb.NetworkTransformation(dm).fit(Y, Y, C, C)
    assert not hasattr(dm, "embedding_")  # the parameter stays unfitted
    assert nt.dmap_a_ is not dm and nt.dmap_b_ is not nt.dmap_a_
    # same data on both sides: the map is the identity and each side equals a direct fit
    np.testing.assert_allclose(nt.orthogonal_, np.eye(2), atol=1e-10)
    direct = clone(dm).fit(Y, precisions=C)
    np.testing.assert_array_equal(nt.dmap_a_.embedding_, direct.embedding_)
    # changing a nested parameter changes the next fit
    nt.set_params(diffusion_maps__n_components=1).fit(Y, Y, C, C)
    assert nt.orthogonal_.shape == (1, 1) and nt.dmap_b_.embedding_.shape == (len(Y), 1)
