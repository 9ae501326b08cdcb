"""pytorch/examples ``mnist_forward_forward/main.py`` ported to fw (imports renamed,
argparse dropped; the script's module-level ``args`` and ``device`` are kept).

Hinton's forward-forward algorithm: each Layer (an ``nn.Linear`` subclass with its own Adam)
is trained alone to give high goodness (mean squared activation) to images with the right
label overlaid on their first 10 pixels and low goodness to wrong labels. MNIST is replaced
by :class:`SyntheticMNIST` with the script's flattening transform, and the script's
``Net([784, 500, 500])`` by ``Net([784, 100, 100])`` trained 200 epochs (not 1000) per layer,
to keep the test fast.
"""

import types

import numpy as np

import framework as fw
import framework.nn as nn
from framework.optim import Adam
from framework.utils.data import DataLoader

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches
from ._mnist_like import SyntheticMNIST

args = types.SimpleNamespace(epochs=200, lr=0.03, no_accel=True, seed=1, save_model=False,
                             train_size=32, threshold=2, test_size=16, log_interval=10)
use_accel = not args.no_accel and fw.accelerator.is_available()
if use_accel:
    device = fw.accelerator.current_accelerator()
else:
    device = fw.device("cpu")


def get_y_neg(y):
    y_neg = y.clone()
    for idx, y_samp in enumerate(y):
        allowed_indices = list(range(10))
        allowed_indices.remove(y_samp.item())
        y_neg[idx] = fw.tensor(allowed_indices)[
            fw.randint(len(allowed_indices), size=(1,))
        ].item()
    return y_neg.to(device)


def overlay_y_on_x(x, y, classes=10):
    x_ = x.clone()
    x_[:, :classes] *= 0.0
    x_[range(x.shape[0]), y] = x.max()
    return x_


class Net(fw.nn.Module):
    def __init__(self, dims):

        super().__init__()
        self.layers = []
        for d in range(len(dims) - 1):
            self.layers = self.layers + [Layer(dims[d], dims[d + 1]).to(device)]

    def predict(self, x):
        goodness_per_label = []
        for label in range(10):
            h = overlay_y_on_x(x, label)
            goodness = []
            for layer in self.layers:
                h = layer(h)
                goodness = goodness + [h.pow(2).mean(1)]
            goodness_per_label += [sum(goodness).unsqueeze(1)]
        goodness_per_label = fw.cat(goodness_per_label, 1)
        return goodness_per_label.argmax(1)

    def train(self, x_pos, x_neg):
        h_pos, h_neg = x_pos, x_neg
        for i, layer in enumerate(self.layers):
            print("training layer: ", i)
            h_pos, h_neg = layer.train(h_pos, h_neg)


class Layer(nn.Linear):
    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.relu = fw.nn.ReLU()
        self.opt = Adam(self.parameters(), lr=args.lr)
        self.threshold = args.threshold
        self.num_epochs = args.epochs

    def forward(self, x):
        x_direction = x / (x.norm(2, 1, keepdim=True) + 1e-4)
        return self.relu(fw.mm(x_direction, self.weight.T) + self.bias.unsqueeze(0))

    def train(self, x_pos, x_neg):
        self.losses = []
        for i in range(self.num_epochs):
            g_pos = self.forward(x_pos).pow(2).mean(1)
            g_neg = self.forward(x_neg).pow(2).mean(1)
            loss = fw.log1p(
                fw.exp(
                    fw.cat([-g_pos + self.threshold, g_neg - self.threshold])
                )
            ).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.losses.append(loss.item())
            if i % args.log_interval == 0:
                print("Loss: ", loss.item())
        return self.forward(x_pos).detach(), self.forward(x_neg).detach()


def _data():
    fw.manual_seed(args.seed)
    train_loader = DataLoader(SyntheticMNIST(64, seed=0, flatten=True),
                              batch_size=args.train_size)
    test_loader = DataLoader(SyntheticMNIST(32, seed=1, flatten=True),
                             batch_size=args.test_size)
    return train_loader, test_loader


def test_script_trains_and_predicts(tmp_path):
    train_loader, test_loader = _data()
    net = Net([784, 100, 100])
    x, y = next(iter(train_loader))
    x, y = x.to(device), y.to(device)
    assert x.shape == (args.train_size, 784)
    err0 = 1.0 - net.predict(x).eq(y).float().mean().item()
    x_pos = overlay_y_on_x(x, y)
    y_neg = get_y_neg(y)
    x_neg = overlay_y_on_x(x, y_neg)
    net.train(x_pos, x_neg)
    train_err = 1.0 - net.predict(x).eq(y).float().mean().item()
    print("train error:", train_err)
    x_te, y_te = next(iter(test_loader))
    x_te, y_te = x_te.to(device), y_te.to(device)
    test_err = 1.0 - net.predict(x_te).eq(y_te).float().mean().item()
    print("test error:", test_err)
    for layer in net.layers:
        assert layer.losses[-1] < 0.9 * layer.losses[0], layer.losses
    assert train_err < err0 and train_err <= 0.25, (err0, train_err)
    assert test_err <= 0.5, test_err
    # The layers live in a plain list, so (as in PyTorch) they are not submodules:
    # the script's torch.save(net.state_dict(), ...) saves an empty dict.
    assert list(net.state_dict()) == [] and list(net.parameters()) == []
    fw.save(net.state_dict(), tmp_path / "mnist_ff.pt")
    assert fw.load(tmp_path / "mnist_ff.pt") == {}
    assert sorted(net.layers[0].state_dict()) == ["bias", "weight"]


def test_overlay_and_negative_labels():
    x = fw.randn(5, 784)
    y = fw.tensor([0, 3, 9, 1, 3])
    out = overlay_y_on_x(x, y).numpy()
    want = x.numpy().copy()
    want[:, :10] = 0.0
    want[np.arange(5), y.numpy()] = x.numpy().max()
    np.testing.assert_array_equal(out, want)
    out = overlay_y_on_x(x, 7).numpy()          # predict(): one int label for all rows
    want[:, :10] = 0.0
    want[:, 7] = x.numpy().max()
    np.testing.assert_array_equal(out, want)
    assert x.numpy()[:, :10].any()               # x itself untouched (clone)
    fw.manual_seed(0)
    y = fw.randint(0, 10, (200,))
    y_neg = get_y_neg(y)
    assert y_neg.dtype == y.dtype and not (y_neg == y).any().item()
    assert len(np.unique(y_neg.numpy())) == 10


def _layer_losses(compiled, steps=5):
    fw.manual_seed(0)
    layer = Layer(784, 64)
    x = fw.randn(16, 784)
    y = fw.randint(0, 10, (16,))
    x_pos, x_neg = overlay_y_on_x(x, y), overlay_y_on_x(x, (y + 1) % 10)

    def step(x_pos, x_neg):   # the body of Layer.train's loop
        g_pos = layer.forward(x_pos).pow(2).mean(1)
        g_neg = layer.forward(x_neg).pow(2).mean(1)
        loss = fw.log1p(
            fw.exp(fw.cat([-g_pos + layer.threshold, g_neg - layer.threshold]))
        ).mean()
        layer.opt.zero_grad()
        loss.backward()
        layer.opt.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    losses = [fn(x_pos, x_neg).item() for _ in range(steps)]
    return losses, {k: v.detach().numpy().copy() for k, v in layer.state_dict().items()}, fn


def test_compiled_layer_step_matches_eager():
    assert_compiled_matches_eager(_layer_losses, eager_reason=None, captures=1,
                                  min_cache_hits=3, num_recompiles=0)


def test_gradcheck_layer_loss():
    """float64 finite differences of the layer loss (norm-normalised input, relu, mm with
    weight.T, softplus of the goodness margins) w.r.t. the input, weight and bias."""
    fw.manual_seed(0)
    layer = Layer(12, 5).double()
    x_pos = fw.randn(4, 12, dtype=fw.float64, requires_grad=True)
    x_neg = fw.randn(4, 12, dtype=fw.float64)
    weight = layer.weight.detach().clone().requires_grad_(True)
    bias = layer.bias.detach().clone().requires_grad_(True)

    def loss_fn(x_pos, weight, bias):
        params = {"weight": weight, "bias": bias}
        g_pos = fw.func.functional_call(layer, params, (x_pos,)).pow(2).mean(1)
        g_neg = fw.func.functional_call(layer, params, (x_neg,)).pow(2).mean(1)
        return fw.log1p(fw.exp(fw.cat([-g_pos + layer.threshold,
                                       g_neg - layer.threshold]))).mean()

    assert fw.autograd.gradcheck(loss_fn, (x_pos, weight, bias))


def _numpy_layer_train(w, b, x_pos, x_neg, epochs, lr, thr):
    """Layer.train in float64 NumPy: hand-written gradients and Adam (PyTorch defaults)."""
    w, b = w.astype(np.float64), b.astype(np.float64)
    params = {"w": w, "b": b}
    m = {k: np.zeros_like(p) for k, p in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    losses = []
    for it in range(1, epochs + 1):
        def fwd(x):
            xd = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-4)
            z = xd @ params["w"].T + params["b"]
            return xd, z, np.maximum(z, 0)
        (dp, zp, hp), (dn, zn, hn) = fwd(x_pos), fwd(x_neg)
        s = np.concatenate([-(hp ** 2).mean(1) + thr, (hn ** 2).mean(1) - thr])
        losses.append(np.log1p(np.exp(s)).mean())
        ds = 1 / (1 + np.exp(-s)) / len(s)
        n_out = w.shape[0]
        gzp = -ds[:len(hp), None] * 2 * hp / n_out * (zp > 0)
        gzn = ds[len(hp):, None] * 2 * hn / n_out * (zn > 0)
        grads = {"w": gzp.T @ dp + gzn.T @ dn, "b": gzp.sum(0) + gzn.sum(0)}
        for k, p in params.items():
            m[k] = 0.9 * m[k] + 0.1 * grads[k]
            v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
            p -= lr * (m[k] / (1 - 0.9 ** it)) / (np.sqrt(v[k] / (1 - 0.999 ** it)) + 1e-8)
    return losses, params["w"]


def test_layer_train_matches_numpy_forward_forward(monkeypatch):
    """Layer.train (eager) against a NumPy forward-forward: losses and final weights."""
    monkeypatch.setattr(args, "epochs", 30)
    fw.manual_seed(0)
    layer = Layer(20, 8)
    x_pos, x_neg = fw.randn(6, 20), fw.randn(6, 20)
    w0, b0 = layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()
    layer.train(x_pos, x_neg)
    ref, w = _numpy_layer_train(w0, b0, x_pos.numpy(), x_neg.numpy(), 30, args.lr,
                                args.threshold)
    np.testing.assert_allclose(layer.losses, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(layer.weight.detach().numpy(), w, rtol=1e-3, atol=1e-4)


def test_onnx_export_layer_matches_eager(tmp_path):
    fw.manual_seed(0)
    layer = Layer(784, 32)
    x = fw.randn(6, 784)
    # Layer.train(x_pos, x_neg) overrides Module.train, so the default training=EVAL
    # (which calls layer.train(False), as torch.onnx.export does) raises a TypeError in
    # PyTorch too; PRESERVE leaves the mode alone (the Layer has no train-only behaviour).
    assert_onnx_export_matches(layer, x, tmp_path / "ff_layer.onnx",
                               input_names=["x"], output_names=["h"],
                               dynamic_axes={"x": {0: "batch"}, "h": {0: "batch"}},
                               training=fw.onnx.TrainingMode.PRESERVE)
