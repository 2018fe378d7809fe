"""The registry's promises, checked on every registered measure so that the metadata cannot drift.

For each entry of ``latentbridge.measures.registry()``: every declared invariance holds (hypothesis
draws the transformations: ``LATENTBRIDGE_FUZZ_EXAMPLES`` examples, as in tests/_fuzz.py), one
transformation it is NOT declared invariant to changes the value, the identical-input value, the
symmetry flag, the kind (a representation is closest to itself) and, for metrics, the triangle
inequality.
"""

import numpy as np
import pytest
from _fuzz import FUZZ
from hypothesis import given
from hypothesis import strategies as st

from latentbridge.measures import INVARIANCES, registry

REGISTRY = registry()
NAMES = sorted(REGISTRY)
N_ROWS, DIM = 28, 5

# small, fast settings for the measures whose defaults are sized for real data
OPTIONS = {
    "rtd": {"batch": N_ROWS, "trials": 1, "seed": 0},
    "minibatch_cka": {"batch_size": N_ROWS, "random_state": 0},
    "mutual_knn": {"k": 4},
    "jaccard_knn": {"k": 4},
    "rank_similarity": {"k": 4},
    "second_order_cosine": {"k": 4},
    "cknna": {"k": 4},
    "imd": {"k": 3, "n_probes": 20, "lanczos_steps": 8},
    "regression_predictivity": {"cv": 3},
}


def call(name, X, Y):
    return float(REGISTRY[name].func(X, Y, **OPTIONS.get(name, {})))


def pair(seed):
    """X and a noisy linear image Y of it (related, not identical: no measure is at its bound)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N_ROWS, DIM))
    Y = X @ rng.standard_normal((DIM, DIM)) + 0.5 * rng.standard_normal((N_ROWS, DIM))
    return X, Y


def transform(kind, rng, d):
    """A random map of the given kind, returned as a function of a representation."""
    if kind == "orthogonal":
        Q, R = np.linalg.qr(rng.standard_normal((d, d)))
        Q = Q * np.sign(np.diag(R))
        return lambda A: A @ Q
    if kind == "isotropic_scaling":
        c = float(np.exp(rng.uniform(np.log(0.1), np.log(10.0))))
        return lambda A: c * A
    if kind == "translation":
        b = 3.0 * rng.standard_normal(d)
        return lambda A: A + b
    if kind == "invertible_linear":
        Q1, _ = np.linalg.qr(rng.standard_normal((d, d)))
        Q2, _ = np.linalg.qr(rng.standard_normal((d, d)))
        M = (Q1 * rng.uniform(0.3, 3.0, d)) @ Q2
        return lambda A: A @ M
    if kind == "permutation":
        perm = rng.permutation(d)
        return lambda A: A[:, perm]
    if kind == "nonlinear":  # outside the vocabulary: for measures invariant to all five
        return lambda A: np.tanh(2.0 * A) + 0.5 * A ** 2
    raise AssertionError(kind)


def close(a, b):
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def test_registry_covers_the_existing_and_the_new_measures():
    expected = {"cka", "minibatch_cka", "svcca", "pwcca", "mutual_knn", "rtd",
                "procrustes_distance", "shape_distance", "cca", "rsa", "jaccard_knn",
                "rank_similarity", "second_order_cosine", "cknna", "bures_distance",
                "bures_similarity", "ensd", "gulp", "regression_predictivity", "imd",
                "disagreement"}
    assert expected <= set(REGISTRY)
    for name, info in REGISTRY.items():
        assert info.name == name and callable(info.func)
        assert info.kind in ("similarity", "distance")
        assert info.invariances <= set(INVARIANCES)
        assert not info.metric or (info.symmetric and info.kind == "distance"
                                   and info.identical_value == 0.0)


def test_registry_returns_a_fresh_table():
    table = registry()
    table.pop("cka")
    assert "cka" in registry()


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, 2**32 - 1))
def test_declared_invariances_hold(name, seed, which):
    X, Y = pair(seed)
    base = call(name, X, Y)
    rng = np.random.default_rng(which)
    for kind in sorted(REGISTRY[name].invariances):
        tx, ty = transform(kind, rng, DIM), transform(kind, rng, DIM)
        got = call(name, tx(X), ty(Y))
        assert close(got, base), f"{name} is declared invariant to {kind}: {base} -> {got}"


@pytest.mark.parametrize("name", NAMES)
def test_one_undeclared_transformation_changes_the_value(name):
    missing = [k for k in INVARIANCES if k not in REGISTRY[name].invariances] or ["nonlinear"]
    X, Y = pair(1)
    rng = np.random.default_rng(2)
    tx, ty = transform(missing[0], rng, DIM), transform(missing[0], rng, DIM)
    base, got = call(name, X, Y), call(name, tx(X), ty(Y))
    assert not close(got, base), f"{name} did not change under {missing[0]} ({base})"


@pytest.mark.parametrize("name", NAMES)
def test_identical_value_symmetry_and_kind(name):
    info = REGISTRY[name]
    X, Y = pair(3)
    same, xy, yx = call(name, X, X), call(name, X, Y), call(name, Y, X)
    if info.identical_value is not None:
        assert abs(same - info.identical_value) <= 1e-6
    assert close(xy, yx) == info.symmetric, (name, xy, yx)
    if info.kind == "similarity":
        assert same > xy
    else:
        assert same < xy


@pytest.mark.parametrize("name", [n for n in NAMES if REGISTRY[n].metric])
def test_metrics_satisfy_the_triangle_inequality(name):
    rng = np.random.default_rng(4)
    for _ in range(5):
        A, B, C = (rng.standard_normal((N_ROWS, DIM)) @ rng.standard_normal((DIM, DIM))
                   for _ in range(3))
        assert call(name, A, C) <= call(name, A, B) + call(name, B, C) + 1e-9


def test_registry_entries_are_built_from_the_table_on_each_call():
    """A fresh registry() (not the module-level snapshot): every field from its table row."""
    import latentbridge as lb

    table = registry()
    assert table["procrustes_distance"] == REGISTRY["procrustes_distance"]
    info = table["bures_distance"]
    assert (info.name, info.func, info.kind, info.identical_value, info.symmetric, info.metric,
            info.invariances) == ("bures_distance", lb.bures_distance, "distance", 0.0, True, True,
                                  frozenset({"orthogonal", "translation", "permutation"}))
    info = table["cknna"]
    assert (info.name, info.kind, info.symmetric, info.metric) == ("cknna", "similarity", False, False)
    for name, info in table.items():
        assert info.name == name and isinstance(info.invariances, frozenset)
        assert isinstance(info.symmetric, bool) and isinstance(info.metric, bool)
