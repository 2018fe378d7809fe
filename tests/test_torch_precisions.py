"""latentbridge.torch precisions: Jacobians checked against torch.autograd.functional.jacobian,
central finite differences and a closed form; bursts against numpy covariances and inverses written
here; model state restored every time."""

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from latentbridge.torch import burst_precisions, jacobian_precisions  # noqa: E402

torch.set_num_threads(1)


def mlp(d_in=3, width=8, m=5, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d_in, width), torch.nn.Tanh(),
                               torch.nn.Linear(width, m))


class ConvNet(torch.nn.Module):
    """(b, 1, 8) signals -> (b, 2, 3) outputs (trailing dims flattened by the helpers)."""

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv1d(1, 3, 3)
        self.bn = torch.nn.BatchNorm1d(3)
        self.act = torch.nn.ELU()
        self.head = torch.nn.Linear(18, 6)
        with torch.no_grad():  # non-trivial running statistics
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        return self.head(self.act(self.bn(self.conv(x))).flatten(1)).reshape(-1, 2, 3)


def pinv_gram(J):
    """pinv(J J^T) = pinv(J)^T pinv(J), from numpy's pinv of J itself."""
    P = np.linalg.pinv(J)
    return P.T @ P


def autograd_jacobians(net, X):
    """Per-sample Jacobians (m, d) by torch.autograd.functional.jacobian on a float64 copy."""
    f64 = copy.deepcopy(net).double().eval()
    out = []
    for x in X:
        J = torch.autograd.functional.jacobian(
            lambda v: f64(v.reshape((1,) + X.shape[1:])).reshape(-1), torch.as_tensor(x))
        out.append(J.reshape(J.shape[0], -1).numpy())
    return np.stack(out)


def finite_difference_jacobians(net, X, h=1e-5):
    f64 = copy.deepcopy(net).double().eval()
    n, d = X.shape[0], int(np.prod(X.shape[1:]))
    flat = X.reshape(n, d)
    cols = []
    with torch.no_grad():
        for k in range(d):
            e = np.zeros(d)
            e[k] = h
            up = f64(torch.as_tensor((flat + e).reshape(X.shape))).reshape(n, -1).numpy()
            down = f64(torch.as_tensor((flat - e).reshape(X.shape))).reshape(n, -1).numpy()
            cols.append((up - down) / (2 * h))
    return np.stack(cols, axis=2)


# ---- Jacobians ----------------------------------------------------------------------------------

def test_mlp_jacobian_precisions_match_autograd_and_finite_differences():
    net = mlp(d_in=3, m=5)
    X = np.random.default_rng(0).standard_normal((9, 3))
    C = jacobian_precisions(net, X, batch_size=4)
    assert C.shape == (9, 5, 5) and C.dtype == np.float64
    J = autograd_jacobians(net, X)
    ref = np.stack([pinv_gram(j) for j in J])
    np.testing.assert_allclose(C, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    fd = np.stack([pinv_gram(j) for j in finite_difference_jacobians(net, X)])
    np.testing.assert_allclose(C, fd, rtol=1e-5, atol=1e-6 * np.abs(ref).max())


def test_conv_net_in_train_mode_uses_eval_statistics_and_restores_state():
    net = ConvNet()
    net.train()
    net.conv.weight.requires_grad_(False)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    X = np.random.default_rng(1).standard_normal((5, 1, 8))
    C = jacobian_precisions(net, X, batch_size=2)
    assert C.shape == (5, 6, 6)
    ref = np.stack([pinv_gram(j) for j in autograd_jacobians(net, X)])  # eval-mode oracle
    np.testing.assert_allclose(C, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())
    assert net.training and all(m.training for m in net.modules())
    assert not net.conv.weight.requires_grad and net.head.weight.requires_grad
    for k, v in net.state_dict().items():  # running statistics untouched
        assert torch.equal(v, before[k]), k


def test_float32_inputs_give_float64_precisions_close_to_the_float64_ones():
    net = mlp(d_in=4, m=3, seed=2)
    X = np.random.default_rng(2).standard_normal((6, 4))
    C32 = jacobian_precisions(net, X.astype(np.float32))
    ref = np.stack([pinv_gram(j) for j in autograd_jacobians(net, X.astype(np.float32)
                                                             .astype(np.float64))])
    assert C32.dtype == np.float64
    np.testing.assert_allclose(C32, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())
    assert next(net.parameters()).dtype == torch.float32  # the module was not cast


def test_linear_callable_gives_the_closed_form():
    A = np.random.default_rng(3).standard_normal((4, 2))  # m = 4 outputs, d = 2 inputs: rank 2
    At = torch.as_tensor(A)
    X = torch.as_tensor(np.random.default_rng(4).standard_normal((3, 2)))
    C = jacobian_precisions(lambda x: x @ At.T, X, device="cpu")
    ref = np.linalg.pinv(A).T @ np.linalg.pinv(A)
    for c in C:
        np.testing.assert_allclose(c, ref, rtol=1e-10, atol=1e-12)
    assert np.linalg.matrix_rank(C[0], tol=1e-8 * np.abs(C[0]).max()) == 2


class Exploding(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)

    def forward(self, x):
        raise RuntimeError("boom inside forward")


def test_f_that_raises_restores_the_state():
    net = Exploding()
    net.train()
    with pytest.raises(RuntimeError, match="boom"):
        jacobian_precisions(net, np.zeros((2, 2)))
    assert net.training and net.lin.weight.requires_grad
    with pytest.raises(RuntimeError, match="boom"):
        burst_precisions(net, np.zeros((2, 2)), lambda x, rng: x)
    assert net.training and net.lin.training


def test_jacobian_bad_input():
    net = mlp()
    with pytest.raises(TypeError, match="f must be"):
        jacobian_precisions("net", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="X must have shape"):
        jacobian_precisions(net, np.zeros(3))
    with pytest.raises(ValueError, match="X contains NaN"):
        jacobian_precisions(net, np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match="X contains NaN"):
        jacobian_precisions(net, torch.tensor([[0.0, np.inf, 1.0]]))
    with pytest.raises(ValueError, match="X is empty"):
        jacobian_precisions(net, np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"returned shape \(\)"):
        jacobian_precisions(lambda x: x.sum(), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="batch_size"):
        jacobian_precisions(net, np.zeros((2, 3)), batch_size=0)


def test_nan_outputs_name_the_batch():
    X = np.ones((6, 2))
    X[4] = -1.0  # log of a negative number: NaN in batch 2 (samples 4 to 5)
    with pytest.raises(ValueError, match=r"batch 2 \(samples 4 to 5\)"):
        jacobian_precisions(torch.log, X, batch_size=2)
    with pytest.raises(ValueError, match=r"f's outputs contain NaN or infinity in batch 2"):
        burst_precisions(torch.log, X, lambda x, rng: x, n_burst=2, batch_size=2)


# ---- bursts -------------------------------------------------------------------------------------

def gaussian_burst(sigma):
    return lambda x, rng: x + sigma * rng.standard_normal(x.shape)


def reference_bursts(net, X, perturb, q, seed, batch_size):
    """The documented layout written out: per batch, row i*q + j is burst j of sample i."""
    rng = np.random.default_rng(seed)
    f64 = copy.deepcopy(net).double().eval()
    out = []
    with torch.no_grad():
        for lo in range(0, X.shape[0], batch_size):
            moved = perturb(np.repeat(X[lo:lo + batch_size], q, axis=0), rng)
            Y = f64(torch.as_tensor(moved)).reshape(moved.shape[0], -1).numpy()
            out.append(Y.reshape(-1, q, Y.shape[1]))
    return np.concatenate(out)


@pytest.mark.parametrize("ridge", [0.0, 0.1])
def test_bursts_match_numpy_covariance_inverse(ridge):
    net = mlp(d_in=4, m=3, seed=5)
    X = np.random.default_rng(5).standard_normal((7, 4))
    perturb = gaussian_burst(0.05)
    C = burst_precisions(net, X, perturb, n_burst=8, seed=11, ridge=ridge, batch_size=3)
    Y = reference_bursts(net, X, perturb, 8, 11, 3)
    for c, y in zip(C, Y):
        cov = np.cov(y, rowvar=False)  # ddof = 1
        ref = np.linalg.inv(cov + ridge * np.trace(cov) * np.eye(3))
        np.testing.assert_allclose(c, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())


def test_bursts_rank_deficient_use_the_pseudo_inverse():
    net = mlp(d_in=4, m=6, seed=6)
    X = np.random.default_rng(6).standard_normal((4, 4))
    perturb = gaussian_burst(0.01)
    C = burst_precisions(net, X, perturb, n_burst=4, seed=3, batch_size=4)  # rank <= q - 1 = 3
    Y = reference_bursts(net, X, perturb, 4, 3, 4)
    for c, y in zip(C, Y):
        ref = np.linalg.pinv(np.cov(y, rowvar=False), rcond=1e-10, hermitian=True)
        np.testing.assert_allclose(c, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())


def test_bursts_are_deterministic_and_seeded():
    net = mlp(seed=7)
    X = np.random.default_rng(7).standard_normal((5, 3))
    a = burst_precisions(net, X, gaussian_burst(0.1), n_burst=5, seed=1, ridge=0.1)
    b = burst_precisions(net, X, gaussian_burst(0.1), n_burst=5, seed=1, ridge=0.1)
    c = burst_precisions(net, X, gaussian_burst(0.1), n_burst=5, seed=2, ridge=0.1)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3 * np.abs(a).max()


def test_bursts_of_a_tensor_are_given_tensors():
    net = mlp(d_in=2, m=2, seed=8)
    X = torch.randn(3, 2, dtype=torch.float64)
    seen = []

    def perturb(x, rng):
        seen.append((type(x), x.dtype, tuple(x.shape)))
        return x + torch.as_tensor(0.1 * rng.standard_normal(tuple(x.shape)))

    C = burst_precisions(net, X, perturb, n_burst=5, seed=0)
    assert C.shape == (3, 2, 2)
    assert seen == [(torch.Tensor, torch.float64, (15, 2))]
    Y = reference_bursts(net, X.numpy(), lambda x, rng: x + 0.1 * rng.standard_normal(x.shape),
                         5, 0, 16)
    for c, y in zip(C, Y):
        np.testing.assert_allclose(c, np.linalg.inv(np.cov(y, rowvar=False)), rtol=1e-8)


def test_burst_bad_input():
    net = mlp()
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match="n_burst must be >= 2"):
        burst_precisions(net, X, gaussian_burst(0.1), n_burst=1)
    with pytest.raises(TypeError, match="perturb must be"):
        burst_precisions(net, X, None)
    with pytest.raises(ValueError, match="perturb returned shape"):
        burst_precisions(net, X, lambda x, rng: x[:, :2])
    with pytest.raises(ValueError, match="perturb's outputs contain NaN"):
        burst_precisions(net, X, lambda x, rng: x * np.nan)
    with pytest.raises(ValueError, match="ridge"):
        burst_precisions(net, X, gaussian_burst(0.1), ridge=-1.0)


# ---- low-rank factors ---------------------------------------------------------------------------

def test_jacobian_factors_multiply_back_to_the_autograd_precisions():
    net = ConvNet(seed=3)  # m = 6 outputs, d = 8 inputs
    X = np.random.default_rng(8).standard_normal((5, 1, 8))
    G = jacobian_precisions(net, X, factors=True, batch_size=2)
    assert G.ndim == 3 and G.shape[0] == 5 and G.shape[2] == 6 and G.shape[1] <= 6
    ref = np.stack([pinv_gram(j) for j in autograd_jacobians(net, X)])
    np.testing.assert_allclose(np.einsum("nra,nrb->nab", G, G), ref, rtol=1e-8,
                               atol=1e-8 * np.abs(ref).max())


def test_burst_factors_multiply_back_to_the_truncated_pseudo_inverse():
    net = mlp(d_in=4, m=6, seed=9)
    X = np.random.default_rng(9).standard_normal((5, 4))
    perturb = gaussian_burst(0.02)
    G = burst_precisions(net, X, perturb, n_burst=5, seed=4, rank=2, factors=True, batch_size=2)
    assert G.shape == (5, 2, 6)
    Y = reference_bursts(net, X, perturb, 5, 4, 2)
    for g, y in zip(G, Y):
        w, V = np.linalg.eigh(np.cov(y, rowvar=False))
        ref = (V[:, -2:] / w[-2:]) @ V[:, -2:].T  # the 2 largest eigenpairs, inverted
        np.testing.assert_allclose(g.T @ g, ref, rtol=1e-6, atol=1e-7 * np.abs(ref).max())
    with pytest.raises(ValueError, match="ridge"):
        burst_precisions(net, X, perturb, ridge=0.1, factors=True)


def test_factors_of_batches_with_different_ranks_are_zero_padded():
    # f(x) = (x0, relu(x1)): J = diag(1, [x1 > 0]), so C = diag(1, [x1 > 0]) (closed form)
    X = np.array([[0.3, -1.0], [0.1, -2.0], [0.5, 1.0], [-0.2, 2.0]])
    G = jacobian_precisions(lambda x: torch.stack([x[:, 0], torch.relu(x[:, 1])], dim=1), X,
                            factors=True, batch_size=2)
    assert G.shape == (4, 2, 2)  # batch 0 has rank 1, batch 1 rank 2
    C = np.einsum("nra,nrb->nab", G, G)
    for c, x in zip(C, X):
        np.testing.assert_allclose(c, np.diag([1.0, float(x[1] > 0)]), atol=1e-12)


def test_progress_bar_is_shown_on_request(capsys):
    jacobian_precisions(mlp(), np.zeros((3, 3)), batch_size=1, progress=True)
    assert "jacobian_precisions" in capsys.readouterr().err
