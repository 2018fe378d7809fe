"""latentbridge's estimators are scikit-learn estimators: scikit-learn's own checks, and the tools a
user reaches for first (pipelines, grid search, cross-validation, clone, pandas output)."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone, is_regressor
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import latentbridge as lb


# Checks that cannot apply, with the reason. Every latentbridge estimator validates arrays with
# latentbridge._validation.as_float_matrix, whose documented rule is that non-real dtypes are the
# wrong type (TypeError), not a wrong value: scikit-learn's checks expect ValueError for complex
# input and expect object arrays of numbers to be converted.
_DTYPE_RULE = {
    "check_complex_data": "complex input is a TypeError by latentbridge's dtype rule "
                          "(as_float_matrix); scikit-learn expects ValueError",
    "check_dtype_object": "object arrays are rejected (TypeError) by latentbridge's dtype rule: "
                          "numbers are never guessed out of Python objects",
}
# ICP aligns two UNPAIRED point sets: its target Y is a point set (m, q), and without labels it
# starts from the identity map, so q must equal X's dimension. scikit-learn's checks pass a 1-D
# regression target y (n,), which is not a point set in X's space: every check that fits ICP on
# such a y cannot apply. ICP's own scikit-learn behaviour is tested below with point sets.
_ICP_TARGET = "ICP's target is a point set Y (m, q) in X's space, not a 1-D y"
_ICP_CHECKS_FITTING_A_1D_Y = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_pipeline_consistency",
    "check_estimators_nan_inf", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_transformer_data_not_an_array", "check_transformer_general",
    "check_transformer_preserve_dtypes", "check_transformer_n_iter",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent",
    "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
]


def _expected_failed_checks(estimator):
    failed = dict(_DTYPE_RULE)
    if isinstance(estimator, lb.ICP):
        failed.update(dict.fromkeys(_ICP_CHECKS_FITTING_A_1D_Y, _ICP_TARGET))
    return failed


# Small, fast instances: StitchingMLP with k=1 and a larger step trains 60 epochs (enough for
# scikit-learn's R^2 > 0.5 check in check_regressors_train), RelativeGeodesic uses 2 path segments.
ESTIMATORS = [lb.Procrustes(), lb.LinearMap(), lb.RidgeMap(), lb.ICP(),
              lb.StitchingMLP(k=1, max_iter=60, learning_rate_init=1e-2, random_state=0),
              lb.RelativeGeodesic(np.tanh, n_steps=2)]   # a ufunc: picklable, stable test ids


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---- the tools a user reaches for ----------------------------------------------------------------

@pytest.fixture
def paired():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 5)) * np.array([1.0, 10.0, 0.1, 3.0, 1.0]) + 4.0
    W = rng.standard_normal((5, 3))
    Y = X @ W + 0.05 * rng.standard_normal((60, 3))
    return X, Y


def test_pipeline_with_scaler_equals_ridge_on_standardised_data(paired):
    X, Y = paired
    pipe = make_pipeline(StandardScaler(), lb.RidgeMap(alpha=2.0)).fit(X, Y)
    Xs = (X - X.mean(0)) / X.std(0)           # StandardScaler by hand
    ref = Ridge(alpha=2.0).fit(Xs, Y)
    np.testing.assert_allclose(pipe.predict(X), ref.predict(Xs), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(pipe.transform(X), ref.predict(Xs), rtol=1e-9, atol=1e-9)


def test_grid_search_picks_the_alpha_of_the_best_mean_cv_r2(paired):
    X, Y = paired
    Y = Y + 0.5 * np.random.default_rng(1).standard_normal(Y.shape)
    search = GridSearchCV(lb.RidgeMap(), {"alpha": [0.1, 1.0, 10.0]}, cv=KFold(3)).fit(X, Y)
    # the oracle: scikit-learn's Ridge on the same folds, R^2 averaged over outputs per fold
    means = []
    for alpha in (0.1, 1.0, 10.0):
        folds = []
        for train, test in KFold(3).split(X):
            P = Ridge(alpha=alpha).fit(X[train], Y[train]).predict(X[test])
            T = Y[test]
            r2 = 1 - ((T - P) ** 2).sum(0) / ((T - T.mean(0)) ** 2).sum(0)
            folds.append(r2.mean())
        means.append(np.mean(folds))
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], means, rtol=1e-9)
    assert search.best_params_["alpha"] == (0.1, 1.0, 10.0)[int(np.argmax(means))]
    assert isinstance(search.best_estimator_, lb.RidgeMap)


def test_cross_val_score_linear_map_equals_least_squares(paired):
    X, Y = paired
    assert is_regressor(lb.LinearMap())       # plain KFold, not stratified
    scores = cross_val_score(lb.LinearMap(), X, Y, cv=4)
    ref = cross_val_score(LinearRegression(), X, Y, cv=4)
    np.testing.assert_allclose(scores, ref, rtol=1e-9)


def test_score_is_uniform_average_r2_with_constant_columns():
    """The documented R^2: per column 1 - SS_res/SS_tot, a constant column counts 1 if predicted
    exactly else 0, then the plain mean over columns (not variance-weighted)."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((40, 3))
    Y = np.column_stack([X @ [1.0, 2.0, 0.0] + rng.standard_normal(40), np.full(40, 3.0),
                         10 * X[:, 2] + rng.standard_normal(40)])
    est = lb.LinearMap().fit(X[:30], Y[:30])
    P, T = est.predict(X[30:]), Y[30:]
    r2 = []
    for j in range(3):
        ss_res = ((T[:, j] - P[:, j]) ** 2).sum()
        ss_tot = ((T[:, j] - T[:, j].mean()) ** 2).sum()
        r2.append(1 - ss_res / ss_tot if ss_tot > 0 else float(np.isclose(ss_res, 0, atol=1e-20)))
    assert est.score(X[30:], T) == pytest.approx(np.mean(r2), rel=1e-12)


def test_one_dimensional_target_predicts_one_dimensional(paired):
    X, Y = paired
    est = lb.LinearMap().fit(X, Y[:, 0])
    ref = LinearRegression().fit(X, Y[:, 0])
    assert est.predict(X).shape == (60,) and est.transform(X).shape == (60, 1)
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=1e-9)


@pytest.mark.parametrize("est", [lb.Procrustes(scale=True), lb.LinearMap(),
                                 lb.RidgeMap(alphas=[0.1, 1.0]), lb.ICP(max_iter=3),
                                 lb.StitchingMLP(k=1, max_iter=5, random_state=0)])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_clone_copies_parameters_not_fitted_state(est, paired):
    X, Y = paired
    fitted = est.fit(X, X @ np.eye(5)[:, :5] + 1.0 if isinstance(est, lb.ICP) else Y)
    copy = clone(fitted)
    assert type(copy) is type(est) and copy.get_params() == est.get_params()
    assert not [k for k in vars(copy) if k.endswith("_")]
    with pytest.raises(SklearnNotFittedError):
        copy.transform(X)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))


def test_set_output_pandas(paired):
    pd = pytest.importorskip("pandas")
    X, Y = paired
    frame = pd.DataFrame(X, columns=[f"unit{i}" for i in range(5)], index=np.arange(60) + 100)
    est = lb.RidgeMap(alpha=1.0).set_output(transform="pandas").fit(frame, Y)
    out = est.transform(frame)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["ridgemap0", "ridgemap1", "ridgemap2"]
    assert list(out.index) == list(frame.index)
    np.testing.assert_allclose(out.to_numpy(), Ridge(alpha=1.0).fit(X, Y).predict(X), rtol=1e-9)
    assert list(est.feature_names_in_) == list(frame.columns)
    assert isinstance(est.predict(frame), np.ndarray)    # set_output changes transform only
    geo = lb.RelativeGeodesic(np.tanh, n_steps=2).set_output(transform="pandas").fit(X[:4])
    assert list(geo.transform(X).columns) == [f"relativegeodesic{i}" for i in range(4)]


def test_icp_is_a_transformer_on_point_sets():
    """The scikit-learn behaviour of ICP that the generic checks cannot reach (see above)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((50, 3))
    Q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    Q *= np.sign(np.linalg.det(Q))
    Y = X @ (0.3 * Q + 0.7 * np.eye(3)) + 0.5
    est = lb.ICP(max_iter=20)
    out = est.fit_transform(X, Y)                       # TransformerMixin passes Y through
    np.testing.assert_allclose(out, lb.ICP(max_iter=20).fit(X, Y).transform(X))
    assert est.n_features_in_ == 3 and est.get_feature_names_out().tolist() == \
        ["icp0", "icp1", "icp2"]
    with pytest.raises(ValueError, match="X has 2 features, but ICP is expecting 3"):
        est.transform(X[:, :2])
    with pytest.raises(ValueError, match="requires y to be passed"):
        lb.ICP().fit(X, None)
    with pytest.raises(lb.NotFittedError):
        lb.ICP().transform(X)


def test_not_fitted_error_is_sklearns():
    assert issubclass(lb.NotFittedError, SklearnNotFittedError)
    with pytest.raises(lb.NotFittedError, match="not fitted yet"):
        lb.LinearMap().predict(np.ones((2, 2)))
