"""pytorch/tutorials ``beginner_source/nn_tutorial.py`` ("What is torch.nn really?") on fw.

The MNIST pickle download is replaced by a small learnable synthetic set of the same
layout (flattened 28x28 float32 rows, int64 labels). Every refactoring step of the
tutorial is kept with its own code: the hand-written ``log_softmax`` / ``nll`` and
``weights -= weights.grad * lr`` loop, ``F.cross_entropy``, ``nn.Module`` +
``nn.Parameter``, ``nn.Linear``, ``optim``, ``TensorDataset`` slicing, ``DataLoader``,
validation, ``loss_batch`` / ``fit`` / ``get_data``, the CNN, ``nn.Sequential`` with a
``Lambda`` layer, ``AdaptiveAvgPool2d`` and ``WrappedDataLoader``.
"""

import math

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
from framework import nn, optim
from framework.utils.data import DataLoader, TensorDataset

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches

bs = 64  # batch size
lr = 0.5  # learning rate
epochs = 2  # how many epochs to train for


def _mnist_like(n, seed):
    """``n`` rows of 784 float32 in [0, 1), mostly zero like MNIST's, whose label is the
    argmax of a fixed linear map (learnable by logistic regression), as NumPy arrays like
    the tutorial's pickle."""
    w = np.random.default_rng(1234).normal(size=(784, 10)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = rng.random((n, 784), dtype=np.float32) * (rng.random((n, 784)) < 0.15)
    y = (x @ w).argmax(1).astype(np.int64)
    return x, y


def _data():
    (x_train, y_train), (x_valid, y_valid) = _mnist_like(256, 0), _mnist_like(128, 1)
    return map(torch.tensor, (x_train, y_train, x_valid, y_valid))


def log_softmax(x):
    return x - x.exp().sum(-1).log().unsqueeze(-1)


def nll(input, target):
    return -input[range(target.shape[0]), target].mean()


def accuracy(out, yb):
    preds = torch.argmax(out, dim=1)
    return (preds == yb).float().mean()


class Mnist_Logistic(nn.Module):  # noqa: N801  (the tutorial's name)
    def __init__(self):
        super().__init__()
        self.weights = nn.Parameter(torch.randn(784, 10) / math.sqrt(784))
        self.bias = nn.Parameter(torch.zeros(10))

    def forward(self, xb):
        return xb @ self.weights + self.bias


class Mnist_Logistic_Linear(nn.Module):  # noqa: N801  (the tutorial's second version)
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(784, 10)

    def forward(self, xb):
        return self.lin(xb)


class Mnist_CNN(nn.Module):  # noqa: N801
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1)

    def forward(self, xb):
        xb = xb.view(-1, 1, 28, 28)
        xb = F.relu(self.conv1(xb))
        xb = F.relu(self.conv2(xb))
        xb = F.relu(self.conv3(xb))
        xb = F.avg_pool2d(xb, 4)
        return xb.view(-1, xb.size(1))


class Lambda(nn.Module):
    def __init__(self, func):
        super().__init__()
        self.func = func

    def forward(self, x):
        return self.func(x)


class WrappedDataLoader:
    def __init__(self, dl, func):
        self.dl = dl
        self.func = func

    def __len__(self):
        return len(self.dl)

    def __iter__(self):
        batches = iter(self.dl)
        for b in batches:
            yield (self.func(*b))


def loss_batch(model, loss_func, xb, yb, opt=None):
    loss = loss_func(model(xb), yb)

    if opt is not None:
        loss.backward()
        opt.step()
        opt.zero_grad()

    return loss.item(), len(xb)


def fit(epochs, model, loss_func, opt, train_dl, valid_dl):
    val_losses = []
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            loss_batch(model, loss_func, xb, yb, opt)

        model.eval()
        with torch.no_grad():
            losses, nums = zip(
                *[loss_batch(model, loss_func, xb, yb) for xb, yb in valid_dl]
            )
        val_loss = np.sum(np.multiply(losses, nums)) / np.sum(nums)

        print(epoch, val_loss)
        val_losses.append(val_loss)
    return val_losses


def get_data(train_ds, valid_ds, bs):
    return (
        DataLoader(train_ds, batch_size=bs, shuffle=True),
        DataLoader(valid_ds, batch_size=bs * 2),
    )


def test_data_setup_matches_the_tutorial_prints():
    x_train, y_train, x_valid, y_valid = _data()
    n, c = x_train.shape
    assert (n, c) == (256, 784) and x_train.dtype == torch.float32
    assert y_train.dtype == torch.int64 and y_train.min().item() >= 0
    assert y_train.max().item() <= 9
    assert repr(y_train.min()).startswith("tensor(") and x_train.shape == torch.Size([256, 784])


def test_from_scratch_loop_matches_numpy_and_trains():
    torch.manual_seed(0)
    x_train, y_train, _, _ = _data()
    n, c = x_train.shape
    weights = torch.randn(784, 10) / math.sqrt(784)
    weights.requires_grad_()
    bias = torch.zeros(10, requires_grad=True)

    def model(xb):
        return log_softmax(xb @ weights + bias)

    xb, yb = x_train[0:bs], y_train[0:bs]
    preds = model(xb)
    assert preds.shape == (bs, 10) and preds.grad_fn is not None
    # the hand-written log_softmax / nll against NumPy
    z = xb.numpy() @ weights.detach().numpy()
    want_lsm = z - np.log(np.exp(z).sum(-1, keepdims=True))
    np.testing.assert_allclose(preds.detach().numpy(), want_lsm, rtol=1e-5, atol=1e-5)
    loss_func = nll
    loss0 = loss_func(preds, yb)
    np.testing.assert_allclose(loss0.item(), -want_lsm[np.arange(bs), yb.numpy()].mean(),
                               rtol=1e-5)
    assert accuracy(preds, yb).item() == pytest.approx(
        (want_lsm.argmax(1) == yb.numpy()).mean())
    # the gradient of the first step against the softmax-regression formula
    loss0.backward()
    p = np.exp(want_lsm)
    p[np.arange(bs), yb.numpy()] -= 1
    np.testing.assert_allclose(weights.grad.numpy(), xb.numpy().T @ p / bs, rtol=1e-4,
                               atol=1e-6)
    weights.grad.zero_()
    bias.grad.zero_()

    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb = x_train[start_i:end_i]
            yb = y_train[start_i:end_i]
            pred = model(xb)
            loss = loss_func(pred, yb)

            loss.backward()
            with torch.no_grad():
                weights -= weights.grad * lr
                bias -= bias.grad * lr
                weights.grad.zero_()
                bias.grad.zero_()
    assert weights.is_leaf and weights.requires_grad   # -= under no_grad kept the leaf
    assert loss_func(model(xb), yb).item() < loss0.item()

    # Using torch.nn.functional: the same loss and accuracy as the hand-written pair
    def model2(xb):
        return xb @ weights + bias
    np.testing.assert_allclose(F.cross_entropy(model2(xb), yb).item(),
                               loss_func(model(xb), yb).item(), rtol=1e-5)
    assert accuracy(model2(xb), yb).item() == accuracy(model(xb), yb).item()


def _fit_manual(model, x_train, y_train, loss_func):
    n = x_train.shape[0]
    for epoch in range(epochs):
        for i in range((n - 1) // bs + 1):
            start_i = i * bs
            end_i = start_i + bs
            xb = x_train[start_i:end_i]
            yb = y_train[start_i:end_i]
            pred = model(xb)
            loss = loss_func(pred, yb)

            loss.backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= p.grad * lr
                model.zero_grad()


@pytest.mark.parametrize("cls", [Mnist_Logistic, Mnist_Logistic_Linear])
def test_module_refactors_train(cls):
    torch.manual_seed(0)
    x_train, y_train, _, _ = _data()
    loss_func = F.cross_entropy
    model = cls()
    xb, yb = x_train[:bs], y_train[:bs]
    before = loss_func(model(xb), yb).item()
    _fit_manual(model, x_train, y_train, loss_func)
    assert loss_func(model(xb), yb).item() < before
    assert all(p.grad is None for p in model.parameters())   # zero_grad sets None


def test_optim_dataset_and_dataloader_refactors_agree():
    """The optim loop over slices, over ``train_ds[i*bs : i*bs+bs]`` and over an unshuffled
    DataLoader visit the same batches: same seed, same final parameters."""
    x_train, y_train, _, _ = _data()
    n = x_train.shape[0]
    loss_func = F.cross_entropy
    train_ds = TensorDataset(x_train, y_train)
    xb, yb = train_ds[0:bs]
    assert xb.shape == (bs, 784) and yb.shape == (bs,)

    def get_model():
        model = Mnist_Logistic_Linear()
        return model, optim.SGD(model.parameters(), lr=lr)

    def by_slices():
        for i in range((n - 1) // bs + 1):
            yield x_train[i * bs:i * bs + bs], y_train[i * bs:i * bs + bs]

    def by_dataset():
        for i in range((n - 1) // bs + 1):
            yield train_ds[i * bs: i * bs + bs]

    finals = []
    for batches in (by_slices, by_dataset, lambda: DataLoader(train_ds, batch_size=bs)):
        torch.manual_seed(0)
        model, opt = get_model()
        for epoch in range(epochs):
            for xb, yb in batches():
                pred = model(xb)
                loss = loss_func(pred, yb)

                loss.backward()
                opt.step()
                opt.zero_grad()
        finals.append(model.lin.weight.detach().numpy().copy())
    np.testing.assert_array_equal(finals[0], finals[1])
    np.testing.assert_array_equal(finals[0], finals[2])


def test_validation_loop_sums_tensor_losses():
    torch.manual_seed(0)
    x_train, y_train, x_valid, y_valid = _data()
    loss_func = F.cross_entropy
    train_dl = DataLoader(TensorDataset(x_train, y_train), batch_size=bs, shuffle=True)
    valid_dl = DataLoader(TensorDataset(x_valid, y_valid), batch_size=bs * 2)
    model = Mnist_Logistic_Linear()
    opt = optim.SGD(model.parameters(), lr=lr)
    valid = []
    for epoch in range(epochs):
        model.train()
        for xb, yb in train_dl:
            pred = model(xb)
            loss = loss_func(pred, yb)

            loss.backward()
            opt.step()
            opt.zero_grad()

        model.eval()
        with torch.no_grad():
            valid_loss = sum(loss_func(model(xb), yb) for xb, yb in valid_dl)

        print(epoch, valid_loss / len(valid_dl))
        valid.append(valid_loss / len(valid_dl))
    assert isinstance(valid[0], torch.Tensor) and not valid[0].requires_grad
    assert valid[1].item() < valid[0].item() and len(valid_dl) == 1


def _cnn_sequential():
    def preprocess(x):
        return x.view(-1, 1, 28, 28)

    return nn.Sequential(
        Lambda(preprocess),
        nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(4),
        Lambda(lambda x: x.view(x.size(0), -1)),
    )


def _cnn_adaptive():
    return nn.Sequential(
        nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 10, kernel_size=3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        Lambda(lambda x: x.view(x.size(0), -1)),
    )


def test_fit_get_data_and_the_cnns():
    x_train, y_train, x_valid, y_valid = _data()
    train_ds, valid_ds = TensorDataset(x_train, y_train), TensorDataset(x_valid, y_valid)
    loss_func = F.cross_entropy
    torch.manual_seed(0)
    train_dl, valid_dl = get_data(train_ds, valid_ds, bs)
    model = Mnist_Logistic_Linear()
    opt = optim.SGD(model.parameters(), lr=lr)
    v = fit(epochs, model, loss_func, opt, train_dl, valid_dl)
    assert v[1] < v[0] < math.log(10) + 0.5

    # The three CNN forms compute the same function from the same weights.
    torch.manual_seed(0)
    cnn, seq, ada = Mnist_CNN(), _cnn_sequential(), _cnn_adaptive()
    seq.load_state_dict({k.replace("conv1", "1").replace("conv2", "3").replace("conv3", "5"): t
                         for k, t in cnn.state_dict().items()})
    ada.load_state_dict({k.replace("conv1", "0").replace("conv2", "2").replace("conv3", "4"): t
                         for k, t in cnn.state_dict().items()})
    xb = x_valid[:8]
    with torch.no_grad():
        a, b, c = cnn(xb), seq(xb), ada(xb.view(-1, 1, 28, 28))
    assert a.shape == (8, 10)
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(c.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)
    # AdaptiveAvgPool2d(1) works for any input size (the point of the last refactor)
    with torch.no_grad():
        assert ada(torch.rand(2, 1, 20, 36)).shape == (2, 10)

    # WrappedDataLoader + the device-moving preprocess, then fit with momentum
    dev = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")

    def preprocess(x, y):
        return x.view(-1, 1, 28, 28).to(dev), y.to(dev)

    train_dl, valid_dl = get_data(train_ds, valid_ds, bs)
    train_dl = WrappedDataLoader(train_dl, preprocess)
    valid_dl = WrappedDataLoader(valid_dl, preprocess)
    assert len(train_dl) == 4 and next(iter(train_dl))[0].shape == (bs, 1, 28, 28)
    ada.to(dev)
    opt = optim.SGD(ada.parameters(), lr=0.1, momentum=0.9)
    v = fit(3, ada, loss_func, opt, train_dl, valid_dl)
    assert v[-1] < v[0]


def _manual_steps(compiled, steps=4):
    """The from-scratch step (hand-written log_softmax/nll, ``-=`` under no_grad, grad
    zero_) eagerly or under fw.compile."""
    torch.manual_seed(0)
    x_train, y_train, _, _ = _data()
    weights = torch.randn(784, 10) / math.sqrt(784)
    weights.requires_grad_()
    bias = torch.zeros(10, requires_grad=True)

    def step(xb, yb):
        nonlocal weights, bias   # module globals in the tutorial
        pred = log_softmax(xb @ weights + bias)
        loss = nll(pred, yb)
        loss.backward()
        with torch.no_grad():
            weights -= weights.grad * lr
            bias -= bias.grad * lr
            weights.grad.zero_()
            bias.grad.zero_()
        return loss

    # the first backward creates .grad; the compiled function then sees a stable signature
    fn = torch.compile(step, mode="always") if compiled else step
    losses = [fn(x_train[i * bs:(i + 1) * bs], y_train[i * bs:(i + 1) * bs]).item()
              for i in range(steps)]
    return losses, weights.detach().numpy().copy(), bias.detach().numpy().copy(), fn


def test_compiled_from_scratch_step_matches_eager():
    l_e, w_e, b_e, _ = _manual_steps(False)
    l_c, w_c, b_c, fn = _manual_steps(True)
    st = fn.stats()
    # one recompile: on the first call the .grad were None (backward creates them)
    assert st["eager_reason"] is None and st["num_recompiles"] <= 1, st
    assert st["captures"] <= 2 and st["cache_hits"] >= 2, st
    np.testing.assert_allclose(l_c, l_e, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w_c, w_e, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b_c, b_e, rtol=1e-4, atol=1e-5)
    assert l_e[-1] < l_e[0]


def _cnn_steps(compiled, steps=4):
    torch.manual_seed(0)
    x_train, y_train, _, _ = _data()
    model = _cnn_sequential()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_func = F.cross_entropy

    def step(xb, yb):
        return loss_batch(model, loss_func, xb, yb, opt)[0]

    def step_tensor(xb, yb):   # loss_batch returns loss.item(): a graph break, so the
        loss = loss_func(model(xb), yb)   # compiled step returns the tensor
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    fn = torch.compile(step_tensor, mode="always") if compiled else step
    out = [fn(x_train[i * bs:(i + 1) * bs], y_train[i * bs:(i + 1) * bs]) for i in
           range(steps)]
    losses = [float(v) for v in out]
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, fn


def test_compiled_cnn_step_matches_eager():
    assert_compiled_matches_eager(_cnn_steps, eager_reason=None, num_recompiles=0, captures=1,
                                  min_cache_hits=2)


def test_cnn_gradcheck_float64():
    torch.manual_seed(0)
    model = _cnn_adaptive().double()
    x = torch.rand(2, 1, 12, 12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: model(inp), (x,), eps=1e-6, atol=1e-5)


def test_onnx_export_of_the_adaptive_cnn(tmp_path):
    torch.manual_seed(0)
    model = _cnn_adaptive().eval()
    x = torch.rand(3, 1, 28, 28)
    assert_onnx_export_matches(model, x, tmp_path / "cnn.onnx", input_names=["x"],
                               output_names=["y"])
