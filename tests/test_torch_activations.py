"""latentbridge.torch.activations against hooks and pooling written here, on an MLP, a conv net and a
transformer-like model fed dict batches with attention masks; bad input and state restoration."""

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
lbt = pytest.importorskip("latentbridge.torch")
nn = torch.nn


def mlp(seed=0, width=16):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, width), nn.ReLU(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 3))


class ConvNet(nn.Module):
    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.conv1 = nn.Conv2d(2, 5, 3, padding=1)
        self.bn = nn.BatchNorm2d(5)
        self.drop = nn.Dropout(0.5)
        self.conv2 = nn.Conv2d(5, 4, 3)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = self.drop(self.bn(torch.relu(self.conv1(x))))
        h = torch.relu(self.conv2(h))
        return self.head(h.mean(dim=(2, 3)))


class Output(dict):
    """Stands in for a Hugging Face ModelOutput (a dict whose first value is the hidden states)."""


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.lin = nn.Linear(d, d)

    def forward(self, h, mask):
        out = torch.tanh(self.lin(h)) * mask[..., None]
        return out, out.sum(dim=-1)  # a tuple, like attention layers that return weights too


class TinyEncoder(nn.Module):
    def __init__(self, seed=0, vocab=20, d=8):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab, d)
        self.block1, self.block2 = Block(d), Block(d)

    def forward(self, input_ids, attention_mask):
        h = self.embed(input_ids)
        h, _ = self.block1(h, attention_mask)
        h, _ = self.block2(h, attention_mask)
        return Output(last_hidden_state=h, pooler=h[:, 0])


def token_batches(n=23, T=7, batch=5, seed=0):
    rng = np.random.default_rng(seed)
    batches = []
    for r0 in range(0, n, batch):
        b = min(batch, n - r0)
        ids = torch.as_tensor(rng.integers(1, 20, size=(b, T)))
        lengths = rng.integers(1, T + 1, size=b)
        mask = torch.as_tensor((np.arange(T)[None, :] < lengths[:, None]).astype(np.int64))
        batches.append({"input_ids": ids * mask, "attention_mask": mask})
    return batches


def hooked_outputs(model, calls, names):
    """Independent oracle: our own hooks, eval mode, one call per batch; raw outputs per layer."""
    modules = dict(model.named_modules())
    got = {n: [] for n in names}
    handles = [modules[n].register_forward_hook(lambda m, a, o, n=n: got[n].append(o)) for n in names]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for args, kwargs in calls:
                model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    return got


def test_mlp_layers_equal_our_hooks_and_numpy_forward():
    net = mlp()
    X = np.random.default_rng(1).normal(size=(50, 6)).astype(np.float32)
    acts = lbt.activations(net, X, ["0", "2", "4"], batch_size=16)
    W0, b0 = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    np.testing.assert_allclose(acts["0"], X @ W0.T + b0, rtol=1e-5, atol=1e-6)
    ref = hooked_outputs(net, [((torch.from_numpy(X),), {})], ["2", "4"])
    for k in ("2", "4"):
        np.testing.assert_allclose(acts[k], ref[k][0].numpy(), rtol=1e-6, atol=1e-7)
    assert list(acts) == ["0", "2", "4"] and acts["4"].dtype == np.float32


def test_conv_pooling_mean_max_flatten_and_eval_mode_restored():
    net = ConvNet()
    net.train()
    net.bn.running_mean.uniform_(-1, 1)  # eval mode must use these, train mode would not
    X = torch.randn(13, 2, 6, 5)
    ref = hooked_outputs(net, [((X,), {})], ["conv1", "conv2"])
    c1, c2 = ref["conv1"][0].numpy(), ref["conv2"][0].numpy()
    for pool, fn in (("mean", lambda a: a.mean(axis=(2, 3))), ("max", lambda a: a.max(axis=(2, 3))),
                     ("flatten", lambda a: a.reshape(len(a), -1))):
        acts = lbt.activations(net, X, ["conv1", "conv2"], pool=pool, batch_size=4)
        np.testing.assert_allclose(acts["conv1"], fn(c1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(acts["conv2"], fn(c2), rtol=1e-5, atol=1e-6)
    # batch norm ran in eval mode: the output of "bn" equals the running-statistics formula
    acts = lbt.activations(net, X, ["conv1", "bn"])
    bn = net.bn
    conv = torch.relu(torch.from_numpy(c1))
    expect = ((conv - bn.running_mean[None, :, None, None]) / torch.sqrt(bn.running_var[None, :, None, None] + bn.eps)
              * bn.weight[None, :, None, None] + bn.bias[None, :, None, None]).detach().numpy().mean(axis=(2, 3))
    np.testing.assert_allclose(acts["bn"], expect, rtol=1e-5, atol=1e-5)
    assert net.training and net.bn.training and net.drop.training
    assert not net.conv1._forward_hooks and not net.bn._forward_hooks


def test_channels_last_layout_and_callable_pool():
    net = ConvNet()
    X = torch.randn(9, 2, 6, 5)
    c1 = hooked_outputs(net, [((X,), {})], ["conv1"])["conv1"][0].numpy()
    acts = lbt.activations(net, X, ["conv1"], layout="channels_last")
    np.testing.assert_allclose(acts["conv1"], c1.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)  # reads (n, ..., C)
    acts = lbt.activations(net, X, ["conv1"], pool=lambda t: t[:, :, 0, 0])
    np.testing.assert_allclose(acts["conv1"], c1[:, :, 0, 0], rtol=1e-6)


@pytest.mark.parametrize("pool", ["mean", "max", "cls", "last", "flatten"])
def test_token_pooling_with_attention_mask_on_dict_batches(pool):
    net = TinyEncoder()
    batches = token_batches()
    acts = lbt.activations(net, batches, ["block1", "block2", "embed"], pool=pool)
    ref = hooked_outputs(net, [((), b) for b in batches], ["block1", "embed"])
    rows = {"block1": [], "embed": []}
    for layer in rows:
        for b, out in zip(batches, ref[layer]):
            h = (out[0] if isinstance(out, tuple) else out).numpy()
            m = b["attention_mask"].numpy().astype(bool)
            for i in range(len(h)):
                valid = h[i][m[i]]
                rows[layer].append({"mean": valid.mean(axis=0), "max": valid.max(axis=0), "cls": h[i, 0],
                                    "last": valid[-1], "flatten": h[i].ravel()}[pool])
        np.testing.assert_allclose(acts[layer], np.array(rows[layer]), rtol=1e-5, atol=1e-6)
    assert acts["block2"].shape[0] == 23


def test_whole_model_output_dict_uses_first_tensor_and_max_samples_stops_early():
    net = TinyEncoder()
    batches = token_batches(n=23, batch=5)
    calls = []
    net.register_forward_pre_hook(lambda m, a: calls.append(1))
    acts = lbt.activations(net, batches, [""] if False else ["block2"], max_samples=7)
    assert acts["block2"].shape == (7, 8) and len(calls) == 2  # two batches of 5 cover 7 samples


def test_dataloader_tuples_and_model_device_dtype():
    from torch.utils.data import DataLoader, TensorDataset

    net = mlp().double()
    X = torch.randn(30, 6, dtype=torch.float64)
    loader = DataLoader(TensorDataset(X, torch.zeros(30)), batch_size=8)
    acts = lbt.activations(net, loader, ["4"])
    assert acts["4"].dtype == np.float64
    np.testing.assert_allclose(acts["4"], net(X).detach().numpy(), rtol=1e-12)
    acts32 = lbt.activations(net, X.numpy().astype(np.float32), ["4"])  # cast to the model's dtype
    np.testing.assert_allclose(acts32["4"], net(X.float().double()).detach().numpy(), rtol=1e-6)


def test_unknown_layer_names_the_closest():
    with pytest.raises(ValueError, match=r"no module named 'conv3'.*conv1"):
        lbt.activations(ConvNet(), torch.randn(4, 2, 6, 5), ["conv3"])
    with pytest.raises(ValueError, match="layers is empty"):
        lbt.activations(mlp(), torch.randn(4, 6), [])


def test_model_that_raises_restores_hooks_and_modes():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
            self.n = 0

        def forward(self, x):
            self.n += 1
            if self.n == 2:
                raise KeyError("boom")
            return self.lin(x)

    net = Broken()
    net.train()
    with pytest.raises(RuntimeError, match=r"model raised on batch 1: KeyError") as info:
        lbt.activations(net, torch.randn(10, 3), ["lin"], batch_size=5)
    assert isinstance(info.value.__cause__, KeyError)
    assert net.training and net.lin.training and not net.lin._forward_hooks


def test_bad_inputs_raise_clear_errors():
    net = mlp()
    with pytest.raises(ValueError, match="yielded no batches"):
        lbt.activations(net, [], ["0"])
    with pytest.raises(ValueError, match="inputs is empty"):
        lbt.activations(net, np.zeros((0, 6)), ["0"])
    with pytest.raises(ValueError, match="max_samples"):
        lbt.activations(net, torch.randn(5, 6), ["0"], max_samples=1)
    with pytest.raises(ValueError, match="pool"):
        lbt.activations(net, torch.randn(5, 6), ["0"], pool="median")
    with pytest.raises(ValueError, match=r"pool='cls' needs a token output"):
        lbt.activations(ConvNet(), torch.randn(3, 2, 6, 5), ["conv1"], pool="cls")
    with pytest.raises(TypeError, match="nn.Module"):
        lbt.activations(lambda x: x, torch.randn(5, 6), ["0"])
    X = torch.randn(10, 6)
    X[7, 0] = float("nan")
    with pytest.raises(ValueError, match=r"layer '0', batch 1: the activations contain NaN"):
        lbt.activations(net, X, ["0"], batch_size=5)
    with pytest.raises(ValueError, match="pooled to"):  # flatten over sequences of different lengths
        lbt.activations(TinyEncoder(), token_batches(n=4, T=3, batch=2) + token_batches(n=2, T=5, batch=2),
                        ["block1"], pool="flatten")
    shared = nn.Linear(6, 6)
    twice = nn.Sequential(shared, nn.ReLU(), shared)
    with pytest.raises(ValueError, match="called 2 times"):
        lbt.activations(twice, torch.randn(4, 6), ["0"])
    assert not shared._forward_hooks


def test_layers_none_takes_leaf_modules_and_warns_past_100():
    assert list(lbt.activations(mlp(), torch.randn(5, 6), None)) == ["0", "1", "2", "3", "4"]
    big = nn.Sequential(*[nn.Identity() for _ in range(101)])
    with pytest.warns(UserWarning, match="101 leaf modules"):
        lbt.activations(big, torch.randn(3, 2), None)


def test_import_latentbridge_does_not_import_torch():
    code = "import sys, latentbridge; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
