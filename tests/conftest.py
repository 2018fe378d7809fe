"""Shared fixtures: GPU tests skip with the probe's reason, one tolerance helper, dtype fixture."""

import numpy as np
import pytest

from latentbridge import _backend


def pytest_collection_modifyitems(config, items):
    if not any("gpu" in item.keywords for item in items):
        return
    ok, reason = _backend.cuda_status()
    if not ok:
        skip = pytest.mark.skip(reason=f"CUDA unavailable: {reason}")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param


def tolerance(dtype):
    """assert_allclose keyword arguments for results computed in ``dtype``."""
    if np.dtype(dtype) == np.float32:
        return {"rtol": 2e-4, "atol": 1e-5}
    return {"rtol": 1e-10, "atol": 1e-12}


@pytest.fixture
def tol():
    return tolerance


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def readonly(a):
    a = np.array(a)
    a.setflags(write=False)
    return a
