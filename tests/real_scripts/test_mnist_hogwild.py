"""pytorch/examples ``mnist_hogwild`` (main.py + train.py) ported to fw (imports renamed,
argparse dropped).

Hogwild: the parent calls ``model.share_memory()`` and starts two processes with the spawn
start method (``mp.Process(target=train, args=(rank, args, model, device, dataset1,
kwargs))``); each builds its own DataLoader and SGD optimizer over the *same* shared
parameters and trains without locks, and the parent then tests the model it never trained.
MNIST is replaced by :class:`SyntheticMNIST` (64 training and 32 test images of 4 easy
classes). Everything else (Net with Dropout2d, train/test/train_epoch/test_epoch, SGD with
momentum, the DataLoader kwargs, ``state_dict`` saving) is the scripts' own code;
``test_epoch`` also returns its loss and count for the assertions.

The spawned children import this module (so ``train`` can be found), which costs each of
them an import of the framework: about a second.
"""
# ruff: noqa: UP008, UP032  (the original's lines are kept as written)

import os
import re
import types

import numpy as np
import pytest

import framework as fw
import framework.multiprocessing as mp
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim
from framework.utils.data.sampler import Sampler  # noqa: F401  (main.py imports it)

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches
from ._mnist_like import SyntheticMNIST

torch = fw  # train.py's ``torch.manual_seed`` / ``torch.utils.data.DataLoader``


class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


# -- train.py ---------------------------------------------------------------------------------
def train(rank, args, model, device, dataset, dataloader_kwargs):
    torch.manual_seed(args.seed + rank)

    train_loader = torch.utils.data.DataLoader(dataset, **dataloader_kwargs)

    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    for epoch in range(1, args.epochs + 1):
        train_epoch(epoch, args, model, device, train_loader, optimizer)


def test(args, model, device, dataset, dataloader_kwargs):
    torch.manual_seed(args.seed)

    test_loader = torch.utils.data.DataLoader(dataset, **dataloader_kwargs)

    return test_epoch(model, device, test_loader)


def train_epoch(epoch, args, model, device, data_loader, optimizer):
    model.train()
    pid = os.getpid()
    for batch_idx, (data, target) in enumerate(data_loader):
        optimizer.zero_grad()
        output = model(data.to(device))
        loss = F.nll_loss(output, target.to(device))
        loss.backward()
        optimizer.step()
        if batch_idx % args.log_interval == 0:
            print('{}\tTrain Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                pid, epoch, batch_idx * len(data), len(data_loader.dataset),
                100. * batch_idx / len(data_loader), loss.item()))
            if args.dry_run:
                break


def test_epoch(model, device, data_loader):
    model.eval()
    test_loss = 0
    correct = 0
    with torch.no_grad():
        for data, target in data_loader:
            output = model(data.to(device))
            test_loss += F.nll_loss(output, target.to(device), reduction='sum').item() # sum up batch loss
            pred = output.max(1)[1] # get the index of the max log-probability
            correct += pred.eq(target.to(device)).sum().item()

    test_loss /= len(data_loader.dataset)
    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(data_loader.dataset),
        100. * correct / len(data_loader.dataset)))
    return test_loss, correct


train.__test__ = test.__test__ = test_epoch.__test__ = False  # the scripts' names


# -- main.py, with the CLI replaced by a namespace and MNIST by synthetic images ------------
ARGS = types.SimpleNamespace(batch_size=16, test_batch_size=32, epochs=3, lr=0.05,
                             momentum=0.5, seed=1, log_interval=1, num_processes=2,
                             cuda=False, mps=False, save_model=True, dry_run=False)


@pytest.fixture
def _restore_start_method():
    method = mp.get_start_method(allow_none=True)
    yield
    mp.set_start_method(method, force=True)   # the script sets the process-wide default


def test_hogwild_processes_train_the_shared_model(capfd, monkeypatch, tmp_path,
                                                  _restore_start_method):
    # block-buffered child output: each child's log reaches capfd in one write, so the
    # two children's lines cannot interleave
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    args = ARGS
    use_cuda = args.cuda and torch.cuda.is_available()
    device = torch.device("cuda") if use_cuda else torch.device("cpu")
    dataset1 = SyntheticMNIST(64, seed=0)
    dataset2 = SyntheticMNIST(32, seed=1)
    kwargs = {'batch_size': args.batch_size,
              'shuffle': True}

    torch.manual_seed(args.seed)
    mp.set_start_method('spawn', force=True)

    model = Net().to(device)
    model.share_memory() # gradients are allocated lazily, so they are not shared here
    assert all(p.is_shared() and p.grad is None for p in model.parameters())
    before = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    loss0, _ = test(args, model, device, dataset2, kwargs)

    processes = []
    for rank in range(args.num_processes):
        p = mp.Process(target=train, args=(rank, args, model, device,
                                           dataset1, kwargs))
        # We first train the model across `num_processes` processes
        p.start()
        processes.append(p)
    for p in processes:
        p.join()
    assert [p.exitcode for p in processes] == [0, 0]

    if args.save_model:
        torch.save(model.state_dict(), tmp_path / "MNIST_hogwild.pt")

    # Once training is complete, we can test the model
    loss1, correct = test(args, model, device, dataset2, kwargs)

    # the parent sees what the children did to the shared weights
    for name, value in model.state_dict().items():
        assert not np.array_equal(value.numpy(), before[name]), name
    assert loss1 < 0.8 * loss0 and correct >= 16, (loss0, loss1, correct)
    # both children trained: their logs, by pid, and each one's loss fell
    logs = re.findall(r"(\d+)\tTrain Epoch: (\d+) .*Loss: ([0-9.]+)", capfd.readouterr().out)
    by_pid = {}
    for pid, _, loss in logs:
        by_pid.setdefault(pid, []).append(float(loss))
    assert len(by_pid) == args.num_processes, logs
    for losses in by_pid.values():
        assert len(losses) == args.epochs * 4
        assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    state = torch.load(tmp_path / "MNIST_hogwild.pt")
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(state[name].numpy(), value.numpy(), err_msg=name)


def _run_steps(compiled, steps=4):
    """train_epoch's step, eagerly or under ``fw.compile``, on one process."""
    torch.manual_seed(1)
    model = Net()
    model.share_memory()                    # a shared model compiles like any other
    optimizer = optim.SGD(model.parameters(), lr=ARGS.lr, momentum=ARGS.momentum)
    model.train()

    def step(data, target):
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    loader = torch.utils.data.DataLoader(SyntheticMNIST(32, seed=0), batch_size=8,
                                         shuffle=True, generator=fw.Generator().manual_seed(0))
    losses = []
    torch.manual_seed(2)   # the dropout masks: the same stream for eager and compiled
    for data, target in loader:
        losses.append(fn(data, target).item())
        if len(losses) == steps:
            break
    assert all(p.is_shared() for p in model.parameters())  # updated in place, still shared
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, fn


def test_compiled_train_step_matches_eager():
    assert_compiled_matches_eager(_run_steps, eager_reason=None, captures=1, min_cache_hits=2,
                                  num_recompiles=0)


def test_onnx_export_matches_eager(tmp_path):
    torch.manual_seed(0)
    model = Net().eval()
    x = next(iter(torch.utils.data.DataLoader(SyntheticMNIST(4, seed=3), batch_size=4)))[0]
    assert_onnx_export_matches(model, x, tmp_path / "hogwild.onnx", sub_batch=1,
                               input_names=["x"], output_names=["y"],
                               dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
