"""pytorch/tutorials ``intermediate_source/custom_function_conv_bn_tutorial.py`` (a fused
Conv2d + BatchNorm ``autograd.Function`` that recomputes the convolution in backward) on fw.

Changes beyond ``torch`` -> ``fw``: MNIST becomes 32 (+32 test) synthetic 28x28 digits (two classes of
blob positions, so the net's ``fc1`` keeps its 9216 inputs), batch 8 instead of 2048, and
the peak-memory comparison (``torch.cuda.max_memory_allocated``) is dropped. Added checks:
the custom backward against autograd through the same forward written with fw ops, the
forward against a NumPy formula, and the training step under ``fw.compile``.
"""

import math

import numpy as np
import pytest

import framework as torch
import framework.nn.functional as F
import framework.optim as optim
from framework.autograd.function import once_differentiable
from framework.optim.lr_scheduler import StepLR

from ._checks import assert_onnx_export_matches


def convolution_backward(grad_out, X, weight):
    grad_input = F.conv2d(X.transpose(0, 1), grad_out.transpose(0, 1)).transpose(0, 1)
    grad_X = F.conv_transpose2d(grad_out, weight)
    return grad_X, grad_input


class Conv2D(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, weight):
        ctx.save_for_backward(X, weight)
        return F.conv2d(X, weight)

    # Use @once_differentiable by default unless we intend to double backward
    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        X, weight = ctx.saved_tensors
        return convolution_backward(grad_out, X, weight)


def unsqueeze_all(t):
    # Helper function to unsqueeze all the dimensions that we reduce over
    return t[None, :, None, None]


def batch_norm_backward(grad_out, X, sum, sqrt_var, N, eps):
    # out = (X - mean(X)) / (sqrt(var(X)) + eps), differentiated by the chain rule
    tmp = -((X - unsqueeze_all(sum) / N) * grad_out).sum(dim=(0, 2, 3))
    d_denom = tmp / (sqrt_var + eps)**2  # d_denom = -num / denom**2
    d_var = d_denom / (2 * sqrt_var)  # denom = torch.sqrt(var) + eps
    # Compute d_mean_dx before allocating the final NCHW-sized grad_input buffer
    d_mean_dx = grad_out / unsqueeze_all(sqrt_var + eps)
    d_mean_dx = unsqueeze_all(-d_mean_dx.sum(dim=(0, 2, 3)) / N)

    # (1) unbiased_var(x) = ((X - unsqueeze_all(mean))**2).sum(dim=(0, 2, 3)) / (N - 1)
    grad_input = X * unsqueeze_all(d_var * N)
    grad_input += unsqueeze_all(-d_var * sum)
    grad_input *= 2 / ((N - 1) * N)
    # (2) mean (see above)
    grad_input += d_mean_dx
    # (3) Add 'grad_out / <factor>' without allocating an extra buffer
    grad_input *= unsqueeze_all(sqrt_var + eps)
    grad_input += grad_out
    grad_input /= unsqueeze_all(sqrt_var + eps)  # sqrt_var + eps > 0!
    return grad_input


class BatchNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, eps=1e-3):
        # Don't save keepdim'd values for backward
        sum = X.sum(dim=(0, 2, 3))
        var = X.var(unbiased=True, dim=(0, 2, 3))
        N = X.numel() / X.size(1)
        sqrt_var = torch.sqrt(var)
        ctx.save_for_backward(X)
        ctx.eps = eps
        ctx.sum = sum
        ctx.N = N
        ctx.sqrt_var = sqrt_var
        mean = sum / N
        denom = sqrt_var + eps
        return (X - unsqueeze_all(mean)) / unsqueeze_all(denom)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        X, = ctx.saved_tensors
        return batch_norm_backward(grad_out, X, ctx.sum, ctx.sqrt_var, ctx.N, ctx.eps)


class FusedConvBN2DFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, conv_weight, eps=1e-3):
        assert X.ndim == 4  # N, C, H, W
        # (1) Only need to save this single buffer for backward!
        ctx.save_for_backward(X, conv_weight)

        # (2) Exact same Conv2D forward from example above
        X = F.conv2d(X, conv_weight)
        # (3) Exact same BatchNorm2D forward from example above
        sum = X.sum(dim=(0, 2, 3))
        var = X.var(unbiased=True, dim=(0, 2, 3))
        N = X.numel() / X.size(1)
        sqrt_var = torch.sqrt(var)
        ctx.eps = eps
        ctx.sum = sum
        ctx.N = N
        ctx.sqrt_var = sqrt_var
        mean = sum / N
        denom = sqrt_var + eps
        # Instead of `out = (X - a) / b`, doing `out = X - a; out /= b`
        out = X - unsqueeze_all(mean)
        out /= unsqueeze_all(denom)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        X, conv_weight, = ctx.saved_tensors
        # (4) Batch norm backward
        # (5) We need to recompute conv
        X_conv_out = F.conv2d(X, conv_weight)
        grad_out = batch_norm_backward(grad_out, X_conv_out, ctx.sum, ctx.sqrt_var,
                                       ctx.N, ctx.eps)
        # (6) Conv2d backward
        grad_X, grad_input = convolution_backward(grad_out, X, conv_weight)
        return grad_X, grad_input, None, None, None, None, None


import framework.nn as nn  # noqa: E402 (imported here in the tutorial)


class FusedConvBN(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, exp_avg_factor=0.1,
                 eps=1e-3, device=None, dtype=None):
        super(FusedConvBN, self).__init__()
        factory_kwargs = {'device': device, 'dtype': dtype}
        # Conv parameters
        weight_shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.conv_weight = nn.Parameter(torch.empty(*weight_shape, **factory_kwargs))
        # Batch norm parameters
        num_features = out_channels
        self.num_features = num_features
        self.eps = eps
        # Initialize
        self.reset_parameters()

    def forward(self, X):
        return FusedConvBN2DFunction.apply(X, self.conv_weight, self.eps)

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.conv_weight, a=math.sqrt(5))


class Net(nn.Module):
    def __init__(self, fused=True):
        super(Net, self).__init__()
        self.fused = fused
        if fused:
            self.convbn1 = FusedConvBN(1, 32, 3)
            self.convbn2 = FusedConvBN(32, 64, 3)
        else:
            self.conv1 = nn.Conv2d(1, 32, 3, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(32, affine=False, track_running_stats=False)
            self.conv2 = nn.Conv2d(32, 64, 3, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(64, affine=False, track_running_stats=False)
        self.fc1 = nn.Linear(9216, 128)
        self.dropout = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        if self.fused:
            x = self.convbn1(x)
        else:
            x = self.conv1(x)
            x = self.bn1(x)
        x = F.relu(x)
        if self.fused:
            x = self.convbn2(x)
        else:
            x = self.conv2(x)
            x = self.bn2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = F.relu(x)
        x = x.flatten(1)
        x = self.fc1(x)
        x = self.dropout(x)
        x = F.relu(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def train(model, device, train_loader, optimizer, epoch, step=None, losses=None):
    """The tutorial's ``train``; ``step`` (optional) replaces the body of its batch loop
    (the compiled test passes the same body under ``fw.compile``)."""
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        if step is not None:
            loss = step(data, target)
        else:
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
        if losses is not None:
            losses.append(loss.item())
        if batch_idx % 2 == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0
    # Use inference mode instead of no_grad, for free improved test-time performance
    with torch.inference_mode():
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)
            # sum up batch loss
            test_loss += F.nll_loss(output, target, reduction='sum').item()
            # get the index of the max log-probability
            pred = output.argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))
    return test_loss, correct


test.__test__ = False  # the tutorial's name; not a pytest test
device = torch.device("cpu")  # the tutorial: "cuda" if use_cuda (a CPU test: see conftest)


def synthetic_mnist(n, seed):
    """28x28 digits 0 / 1: a bright blob top-left or bottom-right, plus noise, normalized
    with MNIST's (0.1307,), (0.3081,) as the tutorial's transform does."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.3
    for i, label in enumerate(y.tolist()):
        r = 4 if label == 0 else 16
        x[i, 0, r:r + 8, r:r + 8] += 0.7
    return torch.utils.data.TensorDataset((x - 0.1307) / 0.3081, y)


def loaders():
    train_kwargs = {'batch_size': 8}
    test_kwargs = {'batch_size': 16}
    train_loader = torch.utils.data.DataLoader(synthetic_mnist(32, 0), **train_kwargs)
    test_loader = torch.utils.data.DataLoader(synthetic_mnist(32, 1), **test_kwargs)
    return train_loader, test_loader


# ================================================================ tests ====================
def test_gradcheck_the_three_functions():
    weight = torch.rand(5, 3, 3, 3, requires_grad=True, dtype=torch.double)
    X = torch.rand(10, 3, 7, 7, requires_grad=True, dtype=torch.double)
    assert torch.autograd.gradcheck(Conv2D.apply, (X, weight))

    a = torch.rand(1, 2, 3, 4, requires_grad=True, dtype=torch.double)
    assert torch.autograd.gradcheck(BatchNorm.apply, (a,), fast_mode=False)

    weight = torch.rand(5, 3, 3, 3, requires_grad=True, dtype=torch.double)
    X = torch.rand(2, 3, 4, 4, requires_grad=True, dtype=torch.double)
    assert torch.autograd.gradcheck(FusedConvBN2DFunction.apply, (X, weight))


def test_gradcheck_fails_for_a_wrong_backward():
    class BadBatchNorm(BatchNorm):
        @staticmethod
        @once_differentiable
        def backward(ctx, grad_out):
            return BatchNorm.backward(ctx, grad_out) * 1.01

    a = torch.rand(1, 2, 3, 4, requires_grad=True, dtype=torch.double)
    with pytest.raises(Exception, match="(?i)jacobian|mismatch|gradient"):
        torch.autograd.gradcheck(BadBatchNorm.apply, (a,), fast_mode=False)


def test_fused_forward_matches_numpy_and_its_backward_matches_autograd():
    torch.manual_seed(0)
    X = torch.randn(3, 2, 6, 6, dtype=torch.double, requires_grad=True)
    w = torch.randn(4, 2, 3, 3, dtype=torch.double, requires_grad=True)
    out = FusedConvBN2DFunction.apply(X, w, 1e-3)
    conv = np.einsum("nchwkl,ockl->nohw", np.lib.stride_tricks.sliding_window_view(
        X.detach().numpy(), (3, 3), axis=(2, 3)), w.detach().numpy())
    want = (conv - conv.mean((0, 2, 3), keepdims=True)) / \
        (conv.std((0, 2, 3), ddof=1, keepdims=True) + 1e-3)
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-10, atol=1e-12)
    g = torch.randn(*out.shape, dtype=torch.double)
    gx, gw = torch.autograd.grad(out, (X, w), g)
    # the same forward with fw ops, differentiated by autograd
    y = F.conv2d(X, w)
    ref = (y - y.mean((0, 2, 3), keepdim=True)) / (y.std((0, 2, 3), keepdim=True) + 1e-3)
    rx, rw = torch.autograd.grad(ref, (X, w), g)
    np.testing.assert_allclose(gx.numpy(), rx.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(gw.numpy(), rw.numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("fused", [True, False])
def test_train_and_test_both_nets(fused, capsys):
    train_loader, test_loader = loaders()
    torch.manual_seed(123456)
    model = Net(fused=fused).to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    before, _ = test(model, device, test_loader)
    losses = []
    for epoch in range(2):
        train(model, device, train_loader, optimizer, epoch, losses=losses)
        test_loss, correct = test(model, device, test_loader)
        scheduler.step()
    assert optimizer.param_groups[0]['lr'] == pytest.approx(0.49)
    assert test_loss < 0.5 * before and correct >= 30, (before, test_loss, correct)
    assert "Test set: Average loss" in capsys.readouterr().out


def test_compiled_training_step_matches_eager():
    train_loader, _ = loaders()
    runs = []
    for compiled in (False, True):
        torch.manual_seed(7)
        model = Net(fused=True)
        optimizer = optim.Adadelta(model.parameters(), lr=1.0)

        def step(data, target):
            optimizer.zero_grad()
            output = model(data)
            loss = F.nll_loss(output, target)
            loss.backward()
            optimizer.step()
            return loss

        fn = torch.compile(step, mode="always") if compiled else step
        losses = []
        train(model, device, train_loader, optimizer, 1, step=fn, losses=losses)
        runs.append((losses, model, fn))
    (l_e, m_e, _), (l_c, m_c, fn) = runs
    np.testing.assert_allclose(l_c, l_e, rtol=1e-4, atol=1e-5)
    for (n, p), q in zip(m_e.named_parameters(), m_c.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=n)
    st = fn.stats()
    # Adadelta creates its state on the first step, which runs eagerly (once)
    assert not st["graph_breaks"] and st["eager_calls"] == 1 and st["captures"] == 1, st


def test_onnx_export_of_the_fused_net(tmp_path):
    torch.manual_seed(0)
    model = Net(fused=True).eval()
    x = synthetic_mnist(4, 2).tensors[0]
    assert_onnx_export_matches(model, x, tmp_path / "fused.onnx", rtol=1e-4, atol=1e-5)
