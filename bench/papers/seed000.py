"""Seed 000: transformations between networks by Mahalanobis diffusion maps (Bertalan et al. 2020).

Bertalan, Dietrich, Kevrekidis et al., "Transformations between deep neural networks"
(arXiv:2007.05646), experiments 4.1-4.4 on networks trained here (torch, seeded, CPU, one thread):

* 4.1: f(x) = -x^2 on [-1, 0]; a 1-1-1 network A and a 1-8-8-8-1 network B. B's measurements (its
  output alone, or its first hidden layer of 8 neurons) are mapped to A's (hidden neuron, output)
  by ``T = psi^-1 o O o phi`` with Jacobian metrics, on the training interval and extrapolated to
  [-1, 1]. Score: RMSE of A's predicted output over its standard deviation, held-out inputs.
* 4.2: different input domains. An intrinsic u in [0, 1] is seen by network A as x = u in
  D1 = [0, 1] and by network B as x' = S(u) in D2 = [2, 4], S(u) = 2 + 2u + sin(4 pi u) / (3 pi)
  (monotone); both 1-3-1 networks learn the same observation g(u) = sin(2 pi u) in their own
  coordinates. The input bursts are taken in u on both sides (the paper's intrinsic bursts), so the
  Mahalanobis embeddings agree although the domains differ; the Euclidean ones need not. A's hidden
  layer (3 = 2d + 1 neurons) is mapped to B's; B's input x' (that is, S) is extended over B's
  embedding by geometric harmonics and read through the map.
* 4.3: two 2-5-5-5-5-2 tanh networks (different seeds) trained on a 2-D vector field on the square
  [-1, 1]^2, observed through their first hidden layers (5 = 2d + 1 neurons), 100,000 inputs; B's
  field is read by passing the mapped activations through B's remaining layers. (Through the last
  hidden layers the Mahalanobis neighbour recall fell to ~0.8 and the spectrum was biased: see
  bench/notes/papers-seed000.md.)
  The paper's equation 3 (its field) was not available offline; we use
  F(x1, x2) = (sin(pi x2) + x1 / 2, -sin(pi x1) + 3 x2 / 10) and say so in every row. Scores: the
  ratios of ``-log lambda_p`` (the intrinsic eigenvalues) against the Neumann square's
  1 : 1 : 2 : 4 : 4, the agreement of the two embeddings after the orthogonal map, and the error of
  B's field predicted from A's neurons.
* 4.4: the horse silhouette (scikit-image's ``data.horse()``) rotated through 360 degrees, 32 x 32;
  two convolutional autoencoders (3-D latents, different seeds) trained here; the transformation
  between their latent spaces with metrics from bursts of small rotations (Tikhonov-regularised),
  and
  cross-decoding ``D_B(T(E_A(x)))`` on held-out angles against B's own reconstruction, decoding A's
  codes without a map, and an affine map fitted on the same pairs.

The paper reports its results as figures (maps that work or fail), so ``published`` is mostly the
qualitative claim; its one timing is 20 minutes on one core for two 100k-point maps.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from . import check_seed, check_size, require, row, torch_module, torch_threads

SIZES = {
    "full": {"steps": 2000, "steps_42": 4000, "n_fit": 600, "n_test": 300, "n_43": 100_000,
             "n_43_train": 4000, "steps_43": 1500, "angles": 360, "ae_epochs": 120},
    "smoke": {"steps": 400, "steps_42": 300, "n_fit": 150, "n_test": 60, "n_43": 1200,
              "n_43_train": 800, "steps_43": 200, "angles": 60, "ae_epochs": 15},
}


def run(size="full", seed=0, only=None):
    """The rows of experiments 4.1-4.4 (``size="smoke"``: the tiny CI version).

    Parameters
    ----------
    size : {"full", "smoke"}
    seed : int
        Base seed of the data and of the networks' initialisations.
    only : iterable of str, optional
        A subset of the experiments ("4.1", "4.2", "4.3", "4.4"); default all.

    Returns
    -------
    list of dict
        Rows ``{"experiment", "quantity", "ours", "published", "note"}``.
    """
    cfg = SIZES[check_size(size)]
    seed = check_seed(seed)
    experiments = {"4.1": _experiment_41, "4.2": _experiment_42, "4.3": _experiment_43, "4.4": _experiment_44}
    chosen = list(experiments) if only is None else list(only)
    unknown = [e for e in chosen if e not in experiments]
    if unknown or not chosen:
        raise ValueError(f"only must name some of {list(experiments)}; got {only!r}.")
    torch_module()
    if "4.4" in chosen:
        require("skimage", "experiment 4.4 (the horse silhouette)", "pip install scikit-image")
    rows = []
    with torch_threads(1):  # one thread: the tiny networks run slower with two on a loaded machine
        for experiment in (experiments[e] for e in chosen):
            t0 = time.perf_counter()
            got = experiment(cfg, seed)
            got.append(row(got[0]["experiment"], "wall time (s)", round(time.perf_counter() - t0, 1)))
            rows.extend(got)
    return rows


# ---- shared pieces -----------------------------------------------------------------------------

def _mlp(widths, seed):
    """A float64 tanh MLP ``widths[0] -> ... -> widths[-1]`` (linear output layer)."""
    torch = torch_module()
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers).double()


def _fit_full_batch(model, x, y, steps, lr=1e-2):
    """Adam on the whole (x, y) (float64 arrays (n, d_in), (n, d_out)); returns the final MSE."""
    torch = torch_module()
    X, Y = torch.as_tensor(x), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.mean((model(X) - Y) ** 2)
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())


def _evaluate(f, x):
    """``f`` applied to the float64 rows x, as numpy."""
    torch = torch_module()
    with torch.no_grad():
        return f(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def _jacobian_metric(f, x):
    """Precisions ``pinv(J J^T)`` of the measurements f at the inputs x (torch autodiff)."""
    from latentbridge.torch import jacobian_precisions

    return jacobian_precisions(f, np.asarray(x, dtype=np.float64), batch_size=512)


def _dmaps(n_components, seed, n_neighbors=20, metric="mahalanobis"):
    import latentbridge as lb

    return lb.DiffusionMaps(n_components, metric=metric, n_neighbors=n_neighbors, random_state=seed)


def _transformation(source, target, x_fit, x_test, seed, n_components=1, n_neighbors=20):
    """``NetworkTransformation`` from the measurements ``source`` to ``target`` (callables on the
    intrinsic inputs), fitted on x_fit (pairs: the same inputs), and its prediction at x_test."""
    import latentbridge as lb

    nt = lb.NetworkTransformation(_dmaps(n_components, seed, n_neighbors))
    with warnings.catch_warnings():
        # a measurement that folds the input (the point of the outputs-only maps) can trip the
        # recall check; the score says what came of it
        warnings.simplefilter("ignore", lb.diffusion.CandidateRecallWarning)
        nt.fit(_evaluate(source, x_fit), _evaluate(target, x_fit), _jacobian_metric(source, x_fit),
               _jacobian_metric(target, x_fit))
        predicted = nt.transform(_evaluate(source, x_test), _jacobian_metric(source, x_test))
    return nt, predicted


def _relative_rmse(predicted, truth):
    return float(np.sqrt(np.mean((predicted - truth) ** 2)) / np.std(truth))


def _embedding_agreement(nt):
    """Smallest |correlation| between the columns of ``phi_a @ O`` and ``phi_b`` (same inputs)."""
    A = nt.dmap_a_.embedding_ @ nt.orthogonal_
    B = nt.dmap_b_.embedding_
    return float(min(abs(np.corrcoef(A[:, p], B[:, p])[0, 1]) for p in range(A.shape[1])))


# ---- 4.1 ----------------------------------------------------------------------------------------

def _experiment_41(cfg, seed):
    import latentbridge as lb

    name = "4.1 f=-x^2: 1-8-8-8-1 (B) -> 1-1-1 (A)"
    torch = torch_module()
    x = np.linspace(-1.0, 0.0, 200)[:, None]
    net_a, net_b = _mlp([1, 1, 1], seed), _mlp([1, 8, 8, 8, 1], seed + 1)
    loss_a = _fit_full_batch(net_a, x, -x**2, cfg["steps"])
    loss_b = _fit_full_batch(net_b, x, -x**2, cfg["steps"])
    measure_a = lambda X: torch.cat([net_a[:2](X), net_a(X)], dim=1)  # noqa: E731 (hidden, output)
    sources = {"B's output only (1 measurement)": net_b,
               "B's first hidden layer (8 neurons)": lambda X: net_b[:2](X)}
    rows = [row(name, "training MSE of A / of B on [-1, 0]", f"{loss_a:.2g} / {loss_b:.2g}")]
    rng = np.random.default_rng(seed)
    for lo, hi, where in ((-1.0, 0.0, "on [-1, 0]"), (-1.0, 1.0, "extrapolated to [-1, 1]")):
        x_fit = np.linspace(lo, hi, cfg["n_fit"])[:, None]
        x_test = rng.uniform(lo, hi, (cfg["n_test"], 1))
        truth = _evaluate(net_a, x_test)[:, 0]
        for label, source in sources.items():
            _, predicted = _transformation(source, measure_a, x_fit, x_test, seed)
            check = lb.whitney_check(_evaluate(source, x_fit), dimension=1, warn=False)
            claim = "fails" if "only" in label else "works"
            rows.append(row(name, f"{label} -> A's output, {where}: RMSE / std",
                            _relative_rmse(predicted[:, 1], truth), f"{claim} (figure)",
                            f"Whitney 2d+1 = 3 {'met' if check.sufficient else 'NOT met'}; "
                            "Jacobian metrics, n_components=1"))
    return rows


# ---- 4.2 ----------------------------------------------------------------------------------------

def _s_map(u, lib=np):
    return 2.0 + 2.0 * u + lib.sin(4.0 * np.pi * u) / (3.0 * np.pi)


def _experiment_42(cfg, seed):
    import latentbridge as lb

    name = "4.2 domains D1=[0,1], D2=[2,4] (S), 1-3-1"
    torch = torch_module()
    u = np.linspace(0.0, 1.0, 200)[:, None]
    g = np.sin(2 * np.pi * u)
    net_a, net_b = _mlp([1, 3, 1], seed + 2), _mlp([1, 3, 1], seed + 3)
    loss_a = _fit_full_batch(net_a, u, g, cfg["steps_42"], lr=2e-2)           # A sees x = u in D1
    loss_b = _fit_full_batch(net_b, _s_map(u), g, cfg["steps_42"], lr=2e-2)   # B sees x' = S(u) in D2
    hidden_a = lambda U: net_a[:2](U)                                          # noqa: E731
    hidden_b = lambda U: net_b[:2](_s_map(U, torch))                           # noqa: E731
    rng = np.random.default_rng(seed + 1)
    u_fit = np.linspace(0.0, 1.0, cfg["n_fit"])[:, None]
    u_test = rng.uniform(0.0, 1.0, (cfg["n_test"], 1))
    rows = [row(name, "training MSE of A / of B", f"{loss_a:.2g} / {loss_b:.2g}")]

    nt, predicted = _transformation(hidden_a, hidden_b, u_fit, u_test, seed)
    rows.append(row(name, "|corr(phi_A, phi_B)|, Mahalanobis, intrinsic bursts", _embedding_agreement(nt),
                    "embeddings agree (figure)"))
    euclid = lb.NetworkTransformation(_dmaps(1, seed, metric="euclidean"))
    euclid.fit(_evaluate(hidden_a, u_fit), _evaluate(hidden_b, u_fit))
    rows.append(row(name, "|corr(phi_A, phi_B)|, Euclidean (no bursts)", _embedding_agreement(euclid), None,
                    "the Euclidean map of each curve has its own parametrisation"))
    truth_b = _evaluate(hidden_b, u_test)
    rows.append(row(name, "A's hidden layer -> B's hidden layer, held-out u: RMSE / std",
                    _relative_rmse(predicted, truth_b), "works (figure)"))
    out_b = lambda H: net_b[2](H)                                              # noqa: E731
    rows.append(row(name, "B's output through the map vs B's output: RMSE / std",
                    _relative_rmse(_evaluate(out_b, predicted)[:, 0], _evaluate(out_b, truth_b)[:, 0]),
                    "works (figure)"))
    # B's input x' = S(u), extended over B's embedding by geometric harmonics, read at T(A)
    gh = lb.GeometricHarmonics().fit(nt.dmap_b_.embedding_, _s_map(u_fit[:, 0]))
    phi_a = nt.dmap_a_.transform(_evaluate(hidden_a, u_test), _jacobian_metric(hidden_a, u_test))
    s_hat = gh.predict(phi_a @ nt.orthogonal_)
    rows.append(row(name, "S recovered from A's neurons: max |x'_hat - S(u)| on D2",
                    float(np.max(np.abs(s_hat - _s_map(u_test[:, 0])))), "S recovered (figure)",
                    "GeometricHarmonics over B's embedding"))
    _, predicted_out = _transformation(net_a, net_b, u_fit, u_test, seed)
    rows.append(row(name, "A's output only -> B's output: RMSE / std",
                    _relative_rmse(predicted_out[:, 0], _evaluate(net_b, _s_map(u_test))[:, 0]),
                    "fails (figure)", "g = sin(2 pi u) is not monotone: the output folds the input"))
    return rows


# ---- 4.3 ----------------------------------------------------------------------------------------

def _vector_field(x):
    """The stand-in field F(x1, x2) = (sin(pi x2) + x1 / 2, -sin(pi x1) + 3 x2 / 10)."""
    return np.c_[np.sin(np.pi * x[:, 1]) + 0.5 * x[:, 0], -np.sin(np.pi * x[:, 0]) + 0.3 * x[:, 1]]


def _experiment_43(cfg, seed):
    n = cfg["n_43"]
    name = f"4.3 vector field, 2-5-5-5-5-2, n={n}"
    note = "stand-in field (the paper's equation 3 was not available offline)"
    rng = np.random.default_rng(seed + 2)
    x_train = rng.uniform(-1, 1, (cfg["n_43_train"], 2))
    nets = [_mlp([2, 5, 5, 5, 5, 2], seed + 4 + i) for i in range(2)]
    losses = [_fit_full_batch(net, x_train, _vector_field(x_train), cfg["steps_43"]) for net in nets]
    first_hidden = [lambda X, net=net: net[:2](X) for net in nets]
    x_fit = rng.uniform(-1, 1, (n, 2))
    x_test = rng.uniform(-0.95, 0.95, (min(2000, n), 2))
    rows = [row(name, "training MSE of A / of B", f"{losses[0]:.2g} / {losses[1]:.2g}", None, note)]
    t0 = time.perf_counter()
    nt, predicted = _transformation(first_hidden[0], first_hidden[1], x_fit, x_test, seed, n_components=5,
                                    n_neighbors=32)
    wall = time.perf_counter() - t0
    ratios = np.log(nt.dmap_a_.intrinsic_eigenvalues_) / np.log(nt.dmap_a_.intrinsic_eigenvalues_[0])
    rows.append(row(name, "-log lambda_p ratios of A (Neumann square 1:1:2:4:4)",
                    " : ".join(f"{r:.2f}" for r in ratios), "1 : 1 : 2 : 4 : 4 (theory)", note))
    rows.append(row(name, "min |corr| of phi_A O and phi_B (5 coordinates)", _embedding_agreement(nt),
                    "embeddings agree (figure)", f"orthogonal blocks {[len(b) for b in nt.blocks_]}"))
    rows.append(row(name, "Mahalanobis neighbour recall of A / of B",
                    f"{nt.dmap_a_.neighbor_recall_:.3f} / {nt.dmap_b_.neighbor_recall_:.3f}"))
    field_b = _evaluate(nets[1][2:], predicted)
    rows.append(row(name, "B's field from A's neurons through T, held-out: RMSE / std",
                    _relative_rmse(field_b, _evaluate(nets[1], x_test)), "works (figure)", note))
    rows.append(row(name, "two Mahalanobis maps + T, wall (s)", round(wall, 1),
                    "20 min on one core (two 100k maps)", "2 shared cores here"))
    return rows


# ---- 4.4 ----------------------------------------------------------------------------------------

def _horse_images(angles, size=32):
    """The horse silhouette (1 on the horse) padded square, at ``size`` pixels, rotated by each angle
    (degrees); float32 rows (n, size * size)."""
    from skimage import data, transform

    horse = (~data.horse()).astype(np.float64)
    h, w = horse.shape
    side = int(max(h, w) * 1.25)
    canvas = np.zeros((side, side))
    canvas[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = horse
    small = transform.resize(canvas, (size, size), anti_aliasing=True)
    return np.stack([transform.rotate(small, a, order=1).ravel() for a in angles]).astype(np.float32)


def _experiment_44(cfg, seed):
    import latentbridge as lb

    from . import numpy_forward, train_autoencoder

    name = "4.4 rotating horse, two conv AEs (latent 3)"
    n = cfg["angles"]
    step = 360.0 / n
    angles = np.arange(n) * step
    test_angles = angles + step / 2
    X, X_test = _horse_images(angles), _horse_images(test_angles)
    aes = [train_autoencoder(X, "cnn", 3, seed + 10 + i, epochs=cfg["ae_epochs"], image_shape=(32, 32))
           for i in range(2)]

    def codes_and_metric(encoder, theta):
        # a burst of 5 rotations within +-step/4 of each angle; Tikhonov-regularised precisions
        # (a rank-1 metric in the 3-D latent space let far-apart codes look close)
        z = numpy_forward(encoder, _horse_images(theta))
        burst = np.stack([numpy_forward(encoder, _horse_images(theta + k * step / 8))
                          for k in (-2, -1, 0, 1, 2)], axis=1)
        return z, lb.precisions_from_neighborhoods(burst, ridge=0.1)

    (za, ca), (zb, cb) = codes_and_metric(aes[0][0], angles), codes_and_metric(aes[1][0], angles)
    za_test, ca_test = codes_and_metric(aes[0][0], test_angles)
    zb_test = numpy_forward(aes[1][0], X_test)
    check = lb.whitney_check(za, dimension=1, warn=False)
    dmaps = _dmaps(2, seed, n_neighbors=min(16, n - 2)).set_params(candidate_factor=8)
    nt = lb.NetworkTransformation(dmaps)
    nt.fit(za, zb, ca, cb)
    zb_hat = nt.transform(za_test, ca_test)

    def decoded_error(z):
        return float(np.mean((numpy_forward(aes[1][1], z) - X_test) ** 2))

    affine = lb.LinearMap().fit(za, zb)
    rows = [row(name, "|corr| of phi_A O and phi_B (circle: 2 coordinates)", _embedding_agreement(nt),
                "embeddings agree (figure)", f"Whitney 2d+1 = 3 {'met' if check.sufficient else 'NOT met'}")]
    for label, z, published in (("B's own reconstruction D_B(E_B(x)) (floor)", zb_test, None),
                                ("cross-decoding D_B(T(E_A(x)))", zb_hat, "works (figure)"),
                                ("affine map on the same pairs, D_B(M E_A(x))", affine.transform(za_test), None),
                                ("no map, D_B(E_A(x)) (ceiling)", za_test, None)):
        rows.append(row(name, f"{label}: MSE per pixel, held-out angles", decoded_error(z), published,
                        f"{n} training angles, test at the midpoints"))
    rows.append(row(name, "T(E_A) vs E_B codes, held-out: RMSE / std", _relative_rmse(zb_hat, zb_test)))
    return rows
