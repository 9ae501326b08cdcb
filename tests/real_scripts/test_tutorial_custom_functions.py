"""pytorch/tutorials ``intermediate_source/custom_function_double_backward_tutorial.py`` and
``custom_function_conv_bn_tutorial.py`` ported to fw.

Double backward: custom Functions saving an input (Square), an output (Exp), intermediates
returned as extra outputs (Sinh), and a backward that is itself a custom Function (Cube),
each checked with ``gradcheck`` and ``gradgradcheck``; plus the tutorial's warning case
(an intermediate stored on ``ctx``) whose second derivative is wrong, which gradgradcheck
must catch. (torchviz drawings are left out.)

Conv+BN: Conv2D and BatchNorm Functions with ``once_differentiable`` backward, the fused
FusedConvBN2DFunction recomputing the conv in backward, the FusedConvBN module in the
tutorial's Net (MNIST replaced by small synthetic 28x28 images), trained with Adadelta and
StepLR fused and unfused; the CUDA memory comparison needs a device and is left out.
"""

import math

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim
from framework.autograd.function import once_differentiable
from framework.optim.lr_scheduler import StepLR

from ._checks import assert_params_close, assert_stats


# ---- double backward ---------------------------------------------------------------------
class Square(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**2

    @staticmethod
    def backward(ctx, grad_out):
        x, = ctx.saved_tensors
        return grad_out * 2 * x


class Exp(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        result = fw.exp(x)
        ctx.save_for_backward(result)
        return result

    @staticmethod
    def backward(ctx, grad_out):
        result, = ctx.saved_tensors
        return result * grad_out


class Sinh(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        expx = fw.exp(x)
        expnegx = fw.exp(-x)
        ctx.save_for_backward(expx, expnegx)
        return (expx - expnegx) / 2, expx, expnegx

    @staticmethod
    def backward(ctx, grad_out, _grad_out_exp, _grad_out_negexp):
        expx, expnegx = ctx.saved_tensors
        grad_input = grad_out * (expx + expnegx) / 2
        grad_input += _grad_out_exp * expx
        grad_input -= _grad_out_negexp * expnegx
        return grad_input


def sinh(x):
    return Sinh.apply(x)[0]


class SinhBad(fw.autograd.Function):
    # This is an example of what NOT to do!
    @staticmethod
    def forward(ctx, x):
        expx = fw.exp(x)
        expnegx = fw.exp(-x)
        ctx.expx = expx
        ctx.expnegx = expnegx
        return (expx - expnegx) / 2

    @staticmethod
    def backward(ctx, grad_out):
        expx = ctx.expx
        expnegx = ctx.expnegx
        grad_input = grad_out * (expx + expnegx) / 2
        return grad_input


def cube_forward(x):
    return x**3


def cube_backward(grad_out, x):
    return grad_out * 3 * x**2


def cube_backward_backward(grad_out, sav_grad_out, x):
    return grad_out * sav_grad_out * 6 * x


def cube_backward_backward_grad_out(grad_out, x):
    return grad_out * 3 * x**2


class Cube(fw.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return cube_forward(x)

    @staticmethod
    def backward(ctx, grad_out):
        x, = ctx.saved_tensors
        return CubeBackward.apply(grad_out, x)


class CubeBackward(fw.autograd.Function):
    @staticmethod
    def forward(ctx, grad_out, x):
        ctx.save_for_backward(x, grad_out)
        return cube_backward(grad_out, x)

    @staticmethod
    def backward(ctx, grad_out):
        x, sav_grad_out = ctx.saved_tensors
        dx = cube_backward_backward(grad_out, sav_grad_out, x)
        dgrad_out = cube_backward_backward_grad_out(grad_out, x)
        return dgrad_out, dx


@pytest.mark.parametrize("fn", [Square.apply, Exp.apply, sinh, Cube.apply],
                         ids=["square", "exp", "sinh", "cube"])
def test_gradcheck_and_gradgradcheck(fn):
    fw.manual_seed(0)
    x = fw.rand(3, 3, requires_grad=True, dtype=fw.double)
    assert fw.autograd.gradcheck(fn, x)
    assert fw.autograd.gradgradcheck(fn, x)


def test_second_derivatives_closed_form():
    x = fw.tensor([0.3, -1.2, 2.0], requires_grad=True, dtype=fw.double)
    xs = x.detach().numpy()
    for fn, d2 in ((Square.apply, 2 + 0 * xs), (Exp.apply, np.exp(xs)), (sinh, np.sinh(xs)),
                   (Cube.apply, 6 * xs)):
        out = fn(x)
        grad_x, = fw.autograd.grad(out.sum(), x, create_graph=True)
        gg, = fw.autograd.grad(grad_x.sum(), x)
        np.testing.assert_allclose(gg.numpy(), d2, rtol=1e-10)
    x = fw.tensor(1., requires_grad=True).clone()
    out = Square.apply(x)
    grad_x, = fw.autograd.grad(out, x, create_graph=True)
    assert grad_x.grad_fn is not None and grad_x.item() == 2.0


def test_intermediate_on_ctx_gives_wrong_double_backward():
    x = fw.rand(3, 3, requires_grad=True, dtype=fw.double)
    assert fw.autograd.gradcheck(SinhBad.apply, x)
    with pytest.raises(RuntimeError):
        fw.autograd.gradgradcheck(SinhBad.apply, x)


# ---- fused conv + batch norm -------------------------------------------------------------
def convolution_backward(grad_out, X, weight):
    grad_input = F.conv2d(X.transpose(0, 1), grad_out.transpose(0, 1)).transpose(0, 1)
    grad_X = F.conv_transpose2d(grad_out, weight)
    return grad_X, grad_input


class Conv2D(fw.autograd.Function):
    @staticmethod
    def forward(ctx, X, weight):
        ctx.save_for_backward(X, weight)
        return F.conv2d(X, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        X, weight = ctx.saved_tensors
        return convolution_backward(grad_out, X, weight)


def unsqueeze_all(t):
    return t[None, :, None, None]


def batch_norm_backward(grad_out, X, sum, sqrt_var, N, eps):
    tmp = ((X - unsqueeze_all(sum) / N) * grad_out).sum(dim=(0, 2, 3))
    tmp *= -1
    d_denom = tmp / (sqrt_var + eps)**2
    d_var = d_denom / (2 * sqrt_var)
    d_mean_dx = grad_out / unsqueeze_all(sqrt_var + eps)
    d_mean_dx = unsqueeze_all(-d_mean_dx.sum(dim=(0, 2, 3)) / N)
    grad_input = X * unsqueeze_all(d_var * N)
    grad_input += unsqueeze_all(-d_var * sum)
    grad_input *= 2 / ((N - 1) * N)
    grad_input += d_mean_dx
    grad_input *= unsqueeze_all(sqrt_var + eps)
    grad_input += grad_out
    grad_input /= unsqueeze_all(sqrt_var + eps)
    return grad_input


class BatchNorm(fw.autograd.Function):
    @staticmethod
    def forward(ctx, X, eps=1e-3):
        sum = X.sum(dim=(0, 2, 3))
        var = X.var(unbiased=True, dim=(0, 2, 3))
        N = X.numel() / X.size(1)
        sqrt_var = fw.sqrt(var)
        ctx.save_for_backward(X)
        ctx.eps = eps
        ctx.sum = sum
        ctx.N = N
        ctx.sqrt_var = sqrt_var
        mean = sum / N
        denom = sqrt_var + eps
        out = X - unsqueeze_all(mean)
        out /= unsqueeze_all(denom)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        X, = ctx.saved_tensors
        return batch_norm_backward(grad_out, X, ctx.sum, ctx.sqrt_var, ctx.N, ctx.eps)


class FusedConvBN2DFunction(fw.autograd.Function):
    @staticmethod
    def forward(ctx, X, conv_weight, eps=1e-3):
        assert X.ndim == 4  # N, C, H, W
        ctx.save_for_backward(X, conv_weight)
        X = F.conv2d(X, conv_weight)
        sum = X.sum(dim=(0, 2, 3))
        var = X.var(unbiased=True, dim=(0, 2, 3))
        N = X.numel() / X.size(1)
        sqrt_var = fw.sqrt(var)
        ctx.eps = eps
        ctx.sum = sum
        ctx.N = N
        ctx.sqrt_var = sqrt_var
        mean = sum / N
        denom = sqrt_var + eps
        out = X - unsqueeze_all(mean)
        out /= unsqueeze_all(denom)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        X, conv_weight, = ctx.saved_tensors
        X_conv_out = F.conv2d(X, conv_weight)
        grad_out = batch_norm_backward(grad_out, X_conv_out, ctx.sum, ctx.sqrt_var,
                                       ctx.N, ctx.eps)
        grad_X, grad_input = convolution_backward(grad_out, X, conv_weight)
        return grad_X, grad_input, None, None, None, None, None


class FusedConvBN(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, exp_avg_factor=0.1,
                 eps=1e-3, device=None, dtype=None):
        super(FusedConvBN, self).__init__()
        factory_kwargs = {'device': device, 'dtype': dtype}
        weight_shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.conv_weight = nn.Parameter(fw.empty(*weight_shape, **factory_kwargs))
        num_features = out_channels
        self.num_features = num_features
        self.eps = eps
        self.reset_parameters()

    def forward(self, X):
        return FusedConvBN2DFunction.apply(X, self.conv_weight, self.eps)

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.conv_weight, a=math.sqrt(5))


def test_conv_bn_functions_gradcheck():
    fw.manual_seed(0)
    weight = fw.rand(5, 3, 3, 3, requires_grad=True, dtype=fw.double)
    X = fw.rand(3, 3, 5, 5, requires_grad=True, dtype=fw.double)
    assert fw.autograd.gradcheck(Conv2D.apply, (X, weight))
    a = fw.rand(1, 2, 3, 4, requires_grad=True, dtype=fw.double)
    assert fw.autograd.gradcheck(BatchNorm.apply, (a,), fast_mode=False)
    X = fw.rand(2, 3, 4, 4, requires_grad=True, dtype=fw.double)
    assert fw.autograd.gradcheck(FusedConvBN2DFunction.apply, (X, weight))
    out = Conv2D.apply(X, weight)
    g, = fw.autograd.grad(out.sum(), X, create_graph=True)
    with pytest.raises(RuntimeError):   # once_differentiable: no double backward
        g.sum().backward()


def test_fused_matches_unfused_layers():
    fw.manual_seed(0)
    X = fw.randn(4, 3, 6, 6, dtype=fw.double, requires_grad=True)
    layer = FusedConvBN(3, 5, 3, dtype=fw.double)
    y = layer(X)
    conv_out = F.conv2d(X, layer.conv_weight)
    m = conv_out.mean(dim=(0, 2, 3), keepdim=True)
    s = conv_out.var(dim=(0, 2, 3), keepdim=True).sqrt()
    ref = (conv_out - m) / (s + 1e-3)
    np.testing.assert_allclose(y.detach().numpy(), ref.detach().numpy(), rtol=1e-10)
    g = fw.randn(*y.shape, dtype=fw.double)
    gx, gw = fw.autograd.grad(y, (X, layer.conv_weight), g)
    rx, rw = fw.autograd.grad(ref, (X, layer.conv_weight), g)
    np.testing.assert_allclose(gx.numpy(), rx.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(gw.numpy(), rw.numpy(), rtol=1e-8, atol=1e-10)


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
        F.relu_(x)
        if self.fused:
            x = self.convbn2(x)
        else:
            x = self.conv2(x)
            x = self.bn2(x)
        F.relu_(x)
        x = F.max_pool2d(x, 2)
        F.relu_(x)
        x = x.flatten(1)
        x = self.fc1(x)
        x = self.dropout(x)
        F.relu_(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def _data(n=16):
    g = np.random.default_rng(0)
    target = g.integers(0, 10, n)
    data = g.normal(0, 0.3, (n, 1, 28, 28)).astype(np.float32)
    for i, t in enumerate(target):      # a learnable class pattern: a bright row per class
        data[i, 0, 2 + 2 * t, :] += 2.0
    return fw.tensor(data), fw.tensor(target)


def _train(fused, steps=7):
    fw.manual_seed(123456)
    model = Net(fused=fused)
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    data, target = _data()
    model.train()
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    scheduler.step()
    model.eval()
    with fw.inference_mode():
        output = model(data)
        test_loss = F.nll_loss(output, target, reduction='sum').item()
        pred = output.argmax(dim=1, keepdim=True)
        correct = pred.eq(target.view_as(pred)).sum().item()
    return model, losses, test_loss, correct, optimizer


@pytest.mark.slow   # the tutorial's full-width Net (fc1 9216 -> 128), twice: 4-20 s here
def test_fused_net_trains_like_unfused():
    m_f, fused, test_loss, correct, opt = _train(True)
    assert fused[-1] < fused[0]
    assert opt.param_groups[0]["lr"] == pytest.approx(0.7)
    assert 0 <= correct <= 16 and np.isfinite(test_loss)
    m_u, unfused, *_ = _train(False)
    assert unfused[-1] < unfused[0]
    # same initial weights (kaiming_uniform_ with a=sqrt(5), as Conv2d's) and dropout; the
    # tutorial's batch norm (unbiased var, eps outside the sqrt) differs slightly from
    # BatchNorm2d's, so only the first loss agrees closely
    np.testing.assert_allclose(fused[0], unfused[0], rtol=1e-3)


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.convbn1 = FusedConvBN(1, 4, 3)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        x = self.convbn1(x)
        F.relu_(x)
        return F.log_softmax(self.fc(x.flatten(1)), dim=1)


def _small_train(compiled, steps=4):
    fw.manual_seed(0)
    model = SmallNet()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    g = np.random.default_rng(1)
    data = fw.tensor(g.normal(size=(8, 1, 8, 8)).astype(np.float32))
    target = fw.tensor(g.integers(0, 3, 8))

    def step(data, target):
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        return loss

    fn = fw.compile(step) if compiled else step
    return model, [fn(data, target).item() for _ in range(steps)], fn


def test_fused_conv_bn_training_step_compiled_matches_eager():
    m_e, eager, _ = _small_train(False)
    assert eager[-1] < eager[0]
    m_c, comp, fn = _small_train(True)
    np.testing.assert_allclose(comp, eager, rtol=1e-4, atol=1e-5)
    assert_params_close(m_c, m_e)
    assert_stats(fn, num_recompiles=0)
