"""Device resolution, the lazy CUDA probe, configuration output and the base estimator."""

import subprocess
import sys

import numpy as np
import pytest

import latentbridge as lb
from latentbridge import _backend
from latentbridge._base import BaseEstimator, NotFittedError, check_is_fitted


def test_import_does_not_probe_cuda():
    code = ("import latentbridge, sys; from latentbridge import _backend; "
            "print(_backend.cuda_status.cache_info().currsize, 'latentbridge._cuda' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"]


def test_disable_env_forces_cpu():
    code = ("import latentbridge as lb; from latentbridge import _backend; "
            "print(lb.cuda_available(), _backend.resolve_device('auto'), _backend.cuda_status()[1])")
    env = {"LATENTBRIDGE_DISABLE_CUDA": "1", "PATH": ""}
    import os
    env = {**os.environ, **env}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.startswith("False cpu disabled by the environment variable LATENTBRIDGE_DISABLE_CUDA")


def test_resolve_device():
    assert _backend.resolve_device("cpu") == "cpu"
    assert _backend.resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(ValueError, match="device must be one of"):
        _backend.resolve_device("gpu")
    with pytest.raises(ValueError, match="device must be one of"):
        _backend.resolve_device(None)
    if not lb.cuda_available():
        with pytest.raises(RuntimeError, match="CUDA is unavailable: .+ Use device='cpu'"):
            _backend.resolve_device("cuda")
        with pytest.raises(RuntimeError, match="CUDA is unavailable"):
            lb.pairwise_distances(np.ones((2, 2)), device="cuda")


def test_diffusion_maps_device_choice(monkeypatch):
    Y = np.random.default_rng(0).standard_normal((60, 3))
    monkeypatch.setattr(_backend, "cuda_status", lambda: (False, "no device in this test"))
    with pytest.raises(RuntimeError, match="no device in this test"):
        lb.DiffusionMaps(2, n_neighbors=12, device="cuda").fit(Y)
    with pytest.raises(ValueError, match="device must be one of"):
        lb.DiffusionMaps(2, n_neighbors=12, device="gpu").fit(Y)
    # "auto" falls back to the CPU; the default is the CPU whatever the probe says
    assert lb.DiffusionMaps(2, n_neighbors=12, device="auto").fit(Y).device_ == "cpu"
    monkeypatch.setattr(_backend, "cuda_status", lambda: (True, "pretend"))
    assert lb.DiffusionMaps(2, n_neighbors=12).fit(Y).device_ == "cpu"
    assert lb.NetworkTransformation(lb.DiffusionMaps()).get_params()["diffusion_maps__device"] == "cpu"


def test_show_config(capsys):
    lb.show_config()
    out = capsys.readouterr().out
    for key in ("latentbridge", "cpu_simd", "cpu_threads", "cuda_available", "cuda_status"):
        assert key in out
    cfg = _backend.config()
    assert cfg["cpu_threads"] >= 1 and isinstance(cfg["cuda_available"], bool)


class Toy(BaseEstimator):
    def __init__(self, a=1, *, b="x", inner=None):
        self.a = a
        self.b = b
        self.inner = inner

    def fit(self, X):
        self.mean_ = np.mean(X)
        return self


def test_base_estimator_params():
    t = Toy(a=3, inner=Toy(b="y"))
    assert t.get_params(deep=False) == {"a": 3, "b": "x", "inner": t.inner}
    assert t.get_params()["inner__b"] == "y"
    assert t.set_params(a=5, inner__a=7) is t and t.a == 5 and t.inner.a == 7
    with pytest.raises(ValueError, match="Invalid parameter 'c' for estimator Toy"):
        t.set_params(c=1)
    assert repr(Toy(a=2)) == "Toy(a=2)"
    with pytest.raises(NotFittedError, match="not fitted yet"):
        check_is_fitted(Toy())
    check_is_fitted(Toy().fit([1.0, 2.0]))
    sklearn_base = pytest.importorskip("sklearn.base")
    c = sklearn_base.clone(Toy(a=4))
    assert c.a == 4 and not hasattr(c, "mean_")
