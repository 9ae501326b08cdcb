"""pytorch/examples ``regression/main.py`` ported to fw (imports renamed).

Fits a degree-4 polynomial with one ``Linear(4, 1)`` on features [x, x^2, x^3, x^4],
smooth L1 loss and a hand-written SGD step ``param.data.add_(-0.1 * param.grad)``, until
the loss is below 1e-3. The script's module-level code runs inside :func:`_script`, with
the ``count(1)`` loop capped so that a broken framework fails instead of hanging.
"""
# ruff: noqa: UP032  (the original's lines are kept as written)


from itertools import count

import numpy as np
import pytest

import framework as fw
import framework.nn.functional as F

from ._checks import assert_onnx_export_matches, assert_stats

POLY_DEGREE = 4
MAX_BATCHES = 3000   # test-only cap on the script's endless count(1) loop


def _targets(seed):
    fw.manual_seed(seed)
    W_target = fw.randn(POLY_DEGREE, 1) * 5
    b_target = fw.randn(1) * 5
    return W_target, b_target


W_target, b_target = _targets(0)


def make_features(x):
    """Builds features i.e. a matrix with columns [x, x^2, x^3, x^4]."""
    x = x.unsqueeze(1)
    return fw.cat([x ** i for i in range(1, POLY_DEGREE+1)], 1)


def f(x):
    """Approximated function."""
    return x.mm(W_target) + b_target.item()


def poly_desc(W, b):
    """Creates a string description of a polynomial."""
    result = 'y = '
    for i, w in enumerate(W):
        result += '{:+.2f} x^{} '.format(w, i + 1)
    result += '{:+.2f}'.format(b[0])
    return result


def get_batch(batch_size=32):
    """Builds a batch i.e. (x, f(x)) pair."""
    random = fw.randn(batch_size)
    x = make_features(random)
    y = f(x)
    return x, y


def _script():
    """The script's training loop; returns (fc, final loss, number of batches)."""
    # Define model
    fc = fw.nn.Linear(W_target.size(0), 1)

    for batch_idx in count(1):
        # Get data
        batch_x, batch_y = get_batch()

        # Reset gradients
        fc.zero_grad()

        # Forward pass
        output = F.smooth_l1_loss(fc(batch_x), batch_y)
        loss = output.item()

        # Backward pass
        output.backward()

        # Apply gradients
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)

        # Stop criterion
        if loss < 1e-3 or batch_idx >= MAX_BATCHES:
            break

    print('Loss: {:.6f} after {} batches'.format(loss, batch_idx))
    print('==> Learned function:\t' + poly_desc(fc.weight.view(-1), fc.bias))
    print('==> Actual function:\t' + poly_desc(W_target.view(-1), b_target))
    return fc, loss, batch_idx


def test_script_converges_to_the_target_polynomial(capsys):
    fw.manual_seed(1)
    fc, loss, batches = _script()
    assert loss < 1e-3 and batches < MAX_BATCHES, (loss, batches)
    np.testing.assert_allclose(fc.weight.detach().numpy().ravel(), W_target.numpy().ravel(),
                               atol=0.15)
    np.testing.assert_allclose(fc.bias.detach().numpy(), b_target.numpy(), atol=0.15)
    out = capsys.readouterr().out
    w, b = W_target.numpy().ravel(), float(b_target.numpy()[0])
    want = 'y = ' + ''.join(f'{v:+.2f} x^{i + 1} ' for i, v in enumerate(w)) + f'{b:+.2f}'
    assert '==> Actual function:\t' + want in out


def test_features_and_target_function_match_numpy():
    x = fw.tensor([-1.5, 0.0, 0.5, 2.0])
    feats = make_features(x).numpy()
    np.testing.assert_allclose(feats, np.stack([x.numpy() ** i for i in range(1, 5)], 1),
                               rtol=1e-6)
    y = f(make_features(x)).numpy()
    want = feats @ W_target.numpy() + b_target.numpy()
    assert y.shape == (4, 1)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_smooth_l1_loss_matches_numpy_and_gradcheck():
    fw.manual_seed(0)
    a = fw.randn(7, 1, dtype=fw.float64, requires_grad=True) * 2
    a = a.detach().requires_grad_(True)
    b = fw.randn(7, 1, dtype=fw.float64)
    d = np.abs(a.detach().numpy() - b.numpy())
    want = np.where(d < 1.0, 0.5 * d ** 2, d - 0.5).mean()
    assert F.smooth_l1_loss(a, b).item() == pytest.approx(want, rel=1e-12)
    assert fw.autograd.gradcheck(lambda t: F.smooth_l1_loss(t, b), (a,))


def _manual_steps(compiled, steps=6):
    fw.manual_seed(3)
    fc = fw.nn.Linear(W_target.size(0), 1)

    def step(batch_x, batch_y):
        fc.zero_grad()
        output = F.smooth_l1_loss(fc(batch_x), batch_y)
        output.backward()
        for param in fc.parameters():
            param.data.add_(-0.1 * param.grad)
        return output

    fn = fw.compile(step, mode="always") if compiled else step
    fw.manual_seed(4)
    batches = [get_batch() for _ in range(steps)]
    losses = [fn(x, y).item() for x, y in batches]
    return losses, fc.weight.detach().numpy().copy(), fc.bias.detach().numpy().copy(), fn


def test_compiled_manual_update_matches_eager():
    """The ``param.data.add_`` update inside fw.compile: same losses and weights."""
    le, we, be, _ = _manual_steps(False)
    lc, wc, bc, fn = _manual_steps(True)
    assert_stats(fn, eager_reason=None, captures=1, min_cache_hits=len(lc) - 1,
                 num_recompiles=0)
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(wc, we, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bc, be, rtol=1e-4, atol=1e-5)
    assert le[-1] < le[0]


def test_onnx_export_features_and_fc(tmp_path):
    class Poly(fw.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = fw.nn.Linear(POLY_DEGREE, 1)

        def forward(self, x):
            return self.fc(make_features(x))

    fw.manual_seed(0)
    model = Poly()
    x = fw.randn(9)
    assert_onnx_export_matches(model, x, tmp_path / "poly.onnx", rtol=1e-5, sub_batch=3,
                               input_names=["x"], output_names=["y"],
                               dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
