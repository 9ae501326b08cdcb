"""pytorch/examples ``mnist/main.py`` ported to fw (imports renamed, argparse dropped).

MNIST is replaced by :class:`SyntheticMNIST` (28x28 patterns of 4 classes, same
ToTensor + Normalize transform). Everything else (the Net, ``train``, ``test``, Adadelta +
StepLR, the DataLoader kwargs, ``state_dict`` saving) is the script's own code.
"""
# ruff: noqa: UP008, UP032  (the original's lines are kept as written)


import types

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim
from framework.optim.lr_scheduler import StepLR

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches
from ._mnist_like import SyntheticMNIST


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = fw.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with fw.no_grad():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            test_loss += F.nll_loss(output, target, reduction='sum').item()  # sum up batch loss
            pred = output.argmax(dim=1, keepdim=True)  # get the index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))
    return test_loss, correct


test.__test__ = False   # the script's name; not a pytest test


def _setup(seed=1):
    """The script's main() up to the epoch loop, on the CPU with small synthetic sets."""
    # --no-accel: a session that also collects tests/gpu makes the simulated GPU
    # "available", and this training would then run in Triton's interpreter
    args = types.SimpleNamespace(batch_size=8, test_batch_size=16, epochs=2, lr=1.0,
                                 gamma=0.7, no_accel=True, dry_run=False, seed=seed,
                                 log_interval=2)
    use_accel = not args.no_accel and fw.accelerator.is_available()
    fw.manual_seed(args.seed)
    device = fw.accelerator.current_accelerator() if use_accel else fw.device("cpu")
    train_kwargs = {'batch_size': args.batch_size}
    test_kwargs = {'batch_size': args.test_batch_size}
    # The script's accelerator kwargs, with num_workers=0 (and so no persistent workers).
    accel_kwargs = {'num_workers': 0, 'pin_memory': True, 'shuffle': True}
    train_kwargs.update(accel_kwargs)
    test_kwargs.update(accel_kwargs)
    dataset1 = SyntheticMNIST(32, seed=0)
    dataset2 = SyntheticMNIST(16, seed=1)
    train_loader = fw.utils.data.DataLoader(dataset1, **train_kwargs)
    test_loader = fw.utils.data.DataLoader(dataset2, **test_kwargs)
    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    return args, device, train_loader, test_loader, model, optimizer, scheduler


def test_script_trains_and_evaluates(tmp_path):
    args, device, train_loader, test_loader, model, optimizer, scheduler = _setup()
    x, y = next(iter(train_loader))
    assert x.shape == (8, 1, 28, 28) and x.dtype == fw.float32
    assert y.shape == (8,) and y.dtype == fw.int64
    loss0, _ = test(model, device, test_loader)
    epoch_losses = []
    for epoch in range(1, args.epochs + 1):
        epoch_losses.append(train(args, model, device, train_loader, optimizer, epoch))
        test(model, device, test_loader)
        scheduler.step()
    assert optimizer.param_groups[0]['lr'] == pytest.approx(1.0 * 0.7 ** 2)
    loss1, correct = test(model, device, test_loader)
    assert np.mean(epoch_losses[-1]) < np.mean(epoch_losses[0])
    assert loss1 < loss0 and correct >= 8, (loss0, loss1, correct)

    # args.save_model: torch.save(model.state_dict(), "mnist_cnn.pt"), then reload it.
    fw.save(model.state_dict(), tmp_path / "mnist_cnn.pt")
    fresh = Net()
    fresh.load_state_dict(fw.load(tmp_path / "mnist_cnn.pt"))
    fresh.eval()
    x = next(iter(test_loader))[0]
    with fw.no_grad():
        np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_test_loop_counts_match_numpy():
    """``test()``'s summed NLL and argmax/eq/sum count against NumPy on the same outputs."""
    _, device, _, test_loader, model, _, _ = _setup()
    loss, correct = test(model, device, test_loader)
    outs, ys = [], []
    with fw.no_grad():
        for data, target in test_loader:
            outs.append(model(data).numpy())
            ys.append(target.numpy())
    out, y = np.concatenate(outs), np.concatenate(ys)
    assert correct == int((out.argmax(1) == y).sum())
    assert loss == pytest.approx(-out[np.arange(len(y)), y].sum() / len(y), rel=1e-5)


def _run_steps(compiled, steps=4):
    fw.manual_seed(1)
    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.7)
    model.train()

    def step(data, target):
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    loader = fw.utils.data.DataLoader(SyntheticMNIST(32, seed=0), batch_size=8, shuffle=True,
                                      generator=fw.Generator().manual_seed(0))
    losses = []
    fw.manual_seed(2)   # the dropout masks: same stream for eager and compiled
    for data, target in loader:
        losses.append(fn(data, target).item())
        scheduler.step()
        if len(losses) == steps:
            break
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, fn


def test_compiled_train_step_matches_eager():
    # call 1: eager warm-up
    assert_compiled_matches_eager(_run_steps, eager_reason=None, captures=1, min_cache_hits=2,
                                  num_recompiles=0)


def test_onnx_export_matches_eager(tmp_path):
    fw.manual_seed(0)
    model = Net().eval()
    x = next(iter(fw.utils.data.DataLoader(SyntheticMNIST(4, seed=3), batch_size=4)))[0]
    assert_onnx_export_matches(model, x, tmp_path / "mnist.onnx", sub_batch=1,   # dynamic batch
                               input_names=["x"], output_names=["y"],
                               dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
