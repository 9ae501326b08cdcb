"""pytorch/examples ``mnist_rnn/main.py`` ported to fw (imports renamed, argparse dropped).

An LSTM reads the 28 rows of each image; its last output goes through BatchNorm1d,
Dropout2d (on a 2-D input, so element-wise, with PyTorch's deprecation warning), two Linear
layers and log_softmax. MNIST is replaced by :class:`SyntheticMNIST` (same transform).
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

pytestmark = pytest.mark.filterwarnings("ignore:dropout2d:UserWarning")


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.rnn = nn.LSTM(input_size=28, hidden_size=64, batch_first=True)
        self.batchnorm = nn.BatchNorm1d(64)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, input):
        # Shape of input is (batch_size,1, 28, 28)
        # converting shape of input to (batch_size, 28, 28)
        # as required by RNN when batch_first is set True
        input = input.reshape(-1, 28, 28)
        output, hidden = self.rnn(input)

        # RNN output shape is (seq_len, batch, input_size)
        # Get last output of RNN
        output = output[:, -1, :]
        output = self.batchnorm(output)
        output = self.dropout1(output)
        output = self.fc1(output)
        output = F.relu(output)
        output = self.dropout2(output)
        output = self.fc2(output)
        output = F.log_softmax(output, dim=1)
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


def test(args, model, device, test_loader):
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
            if args.dry_run:
                break

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))
    return test_loss, correct


test.__test__ = False   # the script's name; not a pytest test


def _setup():
    """main() up to the epoch loop (lr 0.1 is the script's default; the synthetic task
    uses 1.0 so that three epochs of 4 steps visibly learn)."""
    args = types.SimpleNamespace(batch_size=8, test_batch_size=16, epochs=3, lr=1.0,
                                 gamma=0.7, accel=False, dry_run=False, seed=1,
                                 log_interval=2)
    if args.accel:
        device = fw.accelerator.current_accelerator()
    else:
        device = fw.device("cpu")
    fw.manual_seed(args.seed)
    kwargs = {'num_workers': 0, 'pin_memory': True}
    train_loader = fw.utils.data.DataLoader(
        SyntheticMNIST(32, seed=0), batch_size=args.batch_size, shuffle=True, **kwargs)
    test_loader = fw.utils.data.DataLoader(
        SyntheticMNIST(16, seed=1), batch_size=args.test_batch_size, shuffle=True, **kwargs)
    model = Net().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    return args, device, train_loader, test_loader, model, optimizer, scheduler


def test_script_trains_and_evaluates(tmp_path):
    args, device, train_loader, test_loader, model, optimizer, scheduler = _setup()
    loss0, _ = test(args, model, device, test_loader)
    epoch_losses = []
    for epoch in range(1, args.epochs + 1):
        epoch_losses.append(train(args, model, device, train_loader, optimizer, epoch))
        test(args, model, device, test_loader)
        scheduler.step()
    loss1, correct = test(args, model, device, test_loader)
    assert np.mean(epoch_losses[-1]) < np.mean(epoch_losses[0]), epoch_losses
    assert loss1 < loss0, (loss0, loss1)
    # BatchNorm1d tracked the LSTM's last outputs: 3 epochs x 4 batches
    assert int(model.batchnorm.num_batches_tracked) == 12

    fw.save(model.state_dict(), tmp_path / "mnist_rnn.pt")
    fresh = Net()
    fresh.load_state_dict(fw.load(tmp_path / "mnist_rnn.pt"))
    assert sorted(fresh.state_dict()) == sorted(model.state_dict())
    fresh.eval()
    x = next(iter(test_loader))[0]
    with fw.no_grad():
        np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_dropout2d_on_2d_input_is_elementwise_and_warns():
    """The script feeds (batch, 64) to Dropout2d: PyTorch warns and drops single
    elements (feature_dropout's noise shape is the input's own (N, C))."""
    fw.manual_seed(0)
    x = fw.ones(64, 64)
    with pytest.warns(UserWarning, match="dropout2d"):
        y = nn.Dropout2d(0.5)(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0}
    # not whole rows: row sums vary and rows mix zeros and kept values
    assert 0 < (y == 0).mean() < 1 and ((y == 0).any(1) & (y != 0).any(1)).all()


def _run_steps(compiled, steps=4):
    fw.manual_seed(1)
    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
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
    fw.manual_seed(2)
    for data, target in loader:
        losses.append(fn(data, target).item())
        scheduler.step()
        if len(losses) == steps:
            break
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, fn


def test_compiled_train_step_matches_eager():
    # call 1: eager warm-up; the states include BatchNorm running stats and num_batches_tracked
    assert_compiled_matches_eager(_run_steps, eager_reason=None, captures=1, min_cache_hits=2,
                                  num_recompiles=0)


def test_gradcheck_through_lstm_and_batchnorm():
    """float64 finite differences through the LSTM (all 28 steps) and BatchNorm1d's batch
    statistics (train mode; the dropouts off so the function is deterministic). Only the
    last image row varies, to keep the number of evaluations small."""
    fw.manual_seed(0)
    model = Net().double()
    model.train()
    model.dropout1.eval()
    model.dropout2.eval()
    fixed = fw.randn(3, 1, 27, 28, dtype=fw.float64)
    last_row = fw.randn(3, 1, 1, 28, dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradcheck(lambda r: model(fw.cat([fixed, r], dim=2)), (last_row,),
                                 eps=1e-6, atol=1e-6, rtol=1e-4)


def test_onnx_export_matches_eager(tmp_path):
    args, device, train_loader, test_loader, model, optimizer, scheduler = _setup()
    train(args, model, device, train_loader, optimizer, 1)  # non-trivial BatchNorm stats
    model.eval()
    x = next(iter(test_loader))[0][:4]
    assert_onnx_export_matches(model, x, tmp_path / "mnist_rnn.onnx", sub_batch=2,
                               input_names=["x"], output_names=["y"],
                               dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
