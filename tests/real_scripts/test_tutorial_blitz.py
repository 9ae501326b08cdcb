"""pytorch/tutorials ``beginner_source/blitz``: ``tensor_tutorial.py``,
``autograd_tutorial.py`` and ``neural_networks_tutorial.py`` on fw (imports renamed).

Each operation the tutorials show is run and checked against PyTorch's documented result:
dtype, shape, values and, where the tutorial prints, the printed text.
"""

import copy

import numpy as np
import pytest

import framework as torch
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim
from framework.autograd import Variable

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches


# -- tensor_tutorial.py ("What is PyTorch?") ------------------------------------------
def test_construction_and_dtypes():
    x = torch.empty(5, 3)
    assert x.shape == (5, 3) and x.dtype == torch.float32
    x = torch.rand(5, 3)
    assert ((x >= 0) & (x < 1)).all().item()
    x = torch.zeros(5, 3, dtype=torch.long)
    assert x.dtype == torch.int64
    assert repr(x) == ("tensor([[0, 0, 0],\n        [0, 0, 0],\n        [0, 0, 0],\n"
                       "        [0, 0, 0],\n        [0, 0, 0]])")
    x = torch.tensor([5.5, 3])
    assert repr(x) == "tensor([5.5000, 3.0000])"
    x = x.new_ones(5, 3, dtype=torch.double)      # new_* methods take in sizes
    assert x.dtype == torch.float64 and repr(x).endswith("dtype=framework.float64)")
    x = torch.randn_like(x, dtype=torch.float)    # override dtype!
    assert x.dtype == torch.float32 and x.size() == (5, 3)
    assert repr(x.size()) == "framework.Size([5, 3])" and x.size().numel() == 15


def test_addition_syntaxes_and_out():
    x, y = torch.rand(5, 3), torch.rand(5, 3)
    want = x.numpy() + y.numpy()
    np.testing.assert_array_equal((x + y).numpy(), want)
    np.testing.assert_array_equal(torch.add(x, y).numpy(), want)
    # Addition: providing an output tensor as argument
    result = torch.empty(5, 3)
    ret = torch.add(x, y, out=result)
    assert ret is result
    np.testing.assert_array_equal(result.numpy(), want)
    # Addition: in-place
    y.add_(x)
    np.testing.assert_array_equal(y.numpy(), want)
    np.testing.assert_array_equal(x[:, 1].numpy(), x.numpy()[:, 1])


def test_view_item_and_numpy_bridge():
    x = torch.randn(4, 4)
    y = x.view(16)
    z = x.view(-1, 8)  # the size -1 is inferred from other dimensions
    assert (x.size(), y.size(), z.size()) == ((4, 4), (16,), (2, 8))
    assert str((x.size(), y.size(), z.size())) == \
        "(framework.Size([4, 4]), framework.Size([16]), framework.Size([2, 8]))"
    x = torch.randn(1)
    assert isinstance(x.item(), float) and x.item() == float(x.numpy()[0])

    a = torch.ones(5)
    assert repr(a) == "tensor([1., 1., 1., 1., 1.])"
    b = a.numpy()
    assert str(b) == "[1. 1. 1. 1. 1.]"
    a.add_(1)
    assert repr(a) == "tensor([2., 2., 2., 2., 2.])" and str(b) == "[2. 2. 2. 2. 2.]"

    a = np.ones(5)
    b = torch.from_numpy(a)
    np.add(a, 1, out=a)
    assert repr(b) == "tensor([2., 2., 2., 2., 2.], dtype=framework.float64)"

    if torch.cuda.is_available():
        device = torch.device("cuda")
        y = torch.ones_like(x, device=device)
        x = x.to(device)
        z = x + y
        assert z.to("cpu", torch.double).dtype == torch.float64


# -- autograd_tutorial.py (both the Variable-era and the current text) -----------------
@pytest.mark.parametrize("make", [lambda: torch.ones(2, 2, requires_grad=True),
                                  lambda: Variable(torch.ones(2, 2), requires_grad=True)],
                         ids=["tensor", "Variable"])
def test_autograd_basics_give_4_5(make):
    x = make()
    assert repr(x) == "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)"
    assert isinstance(x, Variable) and x.is_leaf
    y = x + 2
    assert y.grad_fn is not None and x.grad_fn is None
    z = y * y * 3
    out = z.mean()
    assert out.item() == 27.0 and np.all(z.detach().numpy() == 27.0)
    out.backward()
    assert repr(x.grad) == "tensor([[4.5000, 4.5000],\n        [4.5000, 4.5000]])"


def test_requires_grad_flag_and_no_grad():
    a = torch.randn(2, 2)
    a = ((a * 3) / (a - 1))
    assert a.requires_grad is False
    a.requires_grad_(True)
    assert a.requires_grad is True
    b = (a * a).sum()
    assert b.grad_fn is not None

    x = torch.randn(3, requires_grad=True)
    y = x * 2
    n = 1
    while y.data.norm() < 1000:
        y = y * 2
        n += 1
    gradients = torch.tensor([0.1, 1.0, 0.0001], dtype=torch.float)
    y.backward(gradients)
    np.testing.assert_allclose(x.grad.numpy(), 2.0 ** n * gradients.numpy(), rtol=1e-6)
    assert x.requires_grad and (x ** 2).requires_grad
    with torch.no_grad():
        assert not (x ** 2).requires_grad
    assert not x.detach().requires_grad
    assert x.eq(x.detach()).all().item()
    assert repr(x.eq(x.detach()).all()) == "tensor(True)"
    assert repr(torch.FloatTensor([0.1, 1.0, 0.0001])) == \
        "tensor([1.0000e-01, 1.0000e+00, 1.0000e-04])"


def test_current_autograd_tutorial_q_example():
    a = torch.tensor([2., 3.], requires_grad=True)
    b = torch.tensor([6., 4.], requires_grad=True)
    Q = 3 * a**3 - b**2
    external_grad = torch.tensor([1., 1.])
    Q.backward(gradient=external_grad)
    assert repr(9 * a**2 == a.grad) == "tensor([True, True])"
    assert repr(-2 * b == b.grad) == "tensor([True, True])"

    x = torch.rand(5, 5)
    y = torch.rand(5, 5)
    z = torch.rand((5, 5), requires_grad=True)
    assert not (x + y).requires_grad and (x + z).requires_grad


# -- neural_networks_tutorial.py ----------------------------------------------------------
class Net(nn.Module):

    def __init__(self):
        super(Net, self).__init__()  # noqa: UP008  (the tutorial's line)
        # 1 input image channel, 6 output channels, 5x5 square convolution
        # kernel
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        # an affine operation: y = Wx + b
        self.fc1 = nn.Linear(16 * 5 * 5, 120)  # 5*5 from image dimension
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        # Max pooling over a (2, 2) window
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        # If the size is a square you can only specify a single number
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, self.num_flat_features(x))
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x

    def num_flat_features(self, x):
        size = x.size()[1:]  # all dimensions except the batch dimension
        num_features = 1
        for s in size:
            num_features *= s
        return num_features


class NetFlatten(Net):
    """The current tutorial's forward: ``torch.flatten(s4, 1)``."""

    def forward(self, input):
        c1 = F.relu(self.conv1(input))
        s2 = F.max_pool2d(c1, (2, 2))
        c3 = F.relu(self.conv2(s2))
        s4 = F.max_pool2d(c3, 2)
        s4 = torch.flatten(s4, 1)
        f5 = F.relu(self.fc1(s4))
        f6 = F.relu(self.fc2(f5))
        output = self.fc3(f6)
        return output


def test_lenet_structure_and_backward():
    torch.manual_seed(0)
    net = Net()
    assert str(net) == """Net(
  (conv1): Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
  (conv2): Conv2d(6, 16, kernel_size=(5, 5), stride=(1, 1))
  (fc1): Linear(in_features=400, out_features=120, bias=True)
  (fc2): Linear(in_features=120, out_features=84, bias=True)
  (fc3): Linear(in_features=84, out_features=10, bias=True)
)"""
    params = list(net.parameters())
    assert len(params) == 10 and params[0].size() == (6, 1, 5, 5)
    input = torch.randn(1, 1, 32, 32)
    out = net(input)
    assert out.shape == (1, 10)
    # a 1x10 row prints 8 values a line, as PyTorch does
    assert repr(out).count("\n") == 1 and repr(out).split("\n")[0].count(",") == 8
    net.zero_grad()
    out.backward(torch.randn(1, 10))
    assert all(p.grad is not None for p in params)

    flat = NetFlatten()
    flat.load_state_dict(net.state_dict())
    with torch.no_grad():
        np.testing.assert_array_equal(flat(input).numpy(), net(input).numpy())

    output = net(input)
    target = torch.randn(10)  # a dummy target, for example
    target = target.view(1, -1)  # make it the same shape as output
    criterion = nn.MSELoss()
    loss = criterion(output, target)
    np.testing.assert_allclose(loss.item(), ((output.detach().numpy() - target.numpy()) ** 2)
                               .mean(), rtol=1e-6)
    assert loss.grad_fn is not None and loss.grad_fn.next_functions[0][0] is not None
    assert loss.grad_fn.next_functions[0][0].next_functions[0][0] is not None

    net.zero_grad()     # zeroes the gradient buffers of all parameters
    assert net.conv1.bias.grad is None
    loss.backward()
    assert net.conv1.bias.grad.shape == (6,)
    # conv1.bias.grad against central differences of the loss, on a float64 copy
    net64, in64, t64 = copy.deepcopy(net).double(), input.double(), target.double()
    eps, b = 1e-6, net64.conv1.bias
    fd = []
    for i in range(6):
        with torch.no_grad():
            b[i] += eps
            hi = criterion(net64(in64), t64).item()
            b[i] -= 2 * eps
            lo = criterion(net64(in64), t64).item()
            b[i] += eps
        fd.append((hi - lo) / (2 * eps))
    np.testing.assert_allclose(net.conv1.bias.grad.numpy(), fd, rtol=1e-3, atol=1e-6)

    # the update rule in plain Python, then with optim.SGD: the same step
    learning_rate = 0.01
    before = [p.detach().clone() for p in net.parameters()]
    for f in net.parameters():
        f.data.sub_(f.grad.data * learning_rate)
    manual = [p.detach().clone() for p in net.parameters()]
    with torch.no_grad():
        for p, b0 in zip(net.parameters(), before):
            p.copy_(b0)
    optimizer = optim.SGD(net.parameters(), lr=0.01)
    optimizer.step()
    for p, m in zip(net.parameters(), manual):
        np.testing.assert_allclose(p.detach().numpy(), m.numpy(), rtol=1e-6, atol=1e-7)

    # in your training loop: the loss goes down
    losses = []
    for _ in range(5):
        optimizer.zero_grad()   # zero the gradient buffers
        output = net(input)
        loss = criterion(output, target)
        loss.backward()
        optimizer.step()    # Does the update
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_lenet_compiled_step_matches_eager():
    def run(compiled):
        torch.manual_seed(0)
        net = Net()
        input, target = torch.randn(4, 1, 32, 32), torch.randn(4, 10)
        criterion = nn.MSELoss()
        optimizer = optim.SGD(net.parameters(), lr=0.01)

        def step(input, target):
            optimizer.zero_grad()
            output = net(input)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            return loss
        fn = torch.compile(step, mode="always") if compiled else step
        losses = [fn(input, target).item() for _ in range(4)]
        return losses, [p.detach().numpy().copy() for p in net.parameters()], fn

    assert_compiled_matches_eager(run, eager_reason=None, captures=1, num_recompiles=0)


def test_lenet_onnx_export(tmp_path):
    torch.manual_seed(0)
    net = NetFlatten().eval()
    x = torch.randn(2, 1, 32, 32)
    assert_onnx_export_matches(net, x, tmp_path / "lenet.onnx")
