"""pytorch/examples time_sequence_prediction (generate_sine_wave.py, train.py) ported to
``fw`` with only the imports renamed: two LSTMCells and a Linear in float64, unrolled over
the sequence and then fed their own predictions (``future``), trained with LBFGS and a
closure. The sine-wave set is smaller (12 waves of 30 points; the original has 100 of 1000)
and matplotlib plotting is left out."""

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.optim as optim

from ._checks import grad_leaves


class Sequence(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm1 = nn.LSTMCell(1, 51)
        self.lstm2 = nn.LSTMCell(51, 51)
        self.linear = nn.Linear(51, 1)

    def forward(self, input, future = 0):
        outputs = []
        h_t = fw.zeros(input.size(0), 51, dtype=fw.double)
        c_t = fw.zeros(input.size(0), 51, dtype=fw.double)
        h_t2 = fw.zeros(input.size(0), 51, dtype=fw.double)
        c_t2 = fw.zeros(input.size(0), 51, dtype=fw.double)

        for input_t in input.split(1, dim=1):
            h_t, c_t = self.lstm1(input_t, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        for i in range(future):# if we should predict the future
            h_t, c_t = self.lstm1(output, (h_t, c_t))
            h_t2, c_t2 = self.lstm2(h_t, (h_t2, c_t2))
            output = self.linear(h_t2)
            outputs += [output]
        outputs = fw.cat(outputs, dim=1)
        return outputs


def generate_sine_wave(T=20, L=30, N=12):
    """generate_sine_wave.py (its L=1000, N=100), returning the array it would save."""
    np.random.seed(2)
    x = np.empty((N, L), 'int64')
    x[:] = np.array(range(L)) + np.random.randint(-4 * T, 4 * T, N).reshape(N, 1)
    return np.sin(x / 1.0 / T).astype('float64')


def setup():
    """train.py up to the optimizer."""
    # set random seed to 0
    np.random.seed(0)
    fw.manual_seed(0)
    # load data and make training set
    data = generate_sine_wave()              # torch.load('traindata.pt')
    input = fw.from_numpy(data[3:, :-1])
    target = fw.from_numpy(data[3:, 1:])
    test_input = fw.from_numpy(data[:3, :-1])
    test_target = fw.from_numpy(data[:3, 1:])
    # build the model
    seq = Sequence()
    seq.double()
    criterion = nn.MSELoss()
    # use LBFGS as optimizer since we can load the whole data to train
    optimizer = optim.LBFGS(seq.parameters(), lr=0.8)
    return seq, criterion, optimizer, input, target, test_input, test_target


def train(steps, future=20, compiled=False):
    """train.py's loop; returns (closure losses, test losses, last prediction, model,
    the compiled closure body or None)."""
    seq, criterion, optimizer, input, target, test_input, test_target = setup()
    losses, test_losses = [], []

    def closure():
        optimizer.zero_grad()
        out = seq(input)
        loss = criterion(out, target)
        losses.append(loss.item())                # print('loss:', loss.item())
        loss.backward()
        return loss

    body = None
    if compiled:
        def body(input, target):
            optimizer.zero_grad()
            out = seq(input)
            loss = criterion(out, target)
            loss.backward()
            return loss
        body = fw.compile(body, mode="always")

        def closure():  # noqa: F811
            loss = body(input, target)
            # GAP: loss.item() inside the compiled body would run all of it eagerly (no
            # graph break and resume), so the print moved after backward
            losses.append(loss.item())
            return loss

    #begin to train
    for i in range(steps):
        optimizer.step(closure)
        # begin to predict, no need to track gradient here
        with fw.no_grad():
            pred = seq(test_input, future=future)
            loss = criterion(pred[:, :-future], test_target)
            test_losses.append(loss.item())
            y = pred.detach().numpy()
    return losses, test_losses, y, seq, body


@pytest.fixture(scope="module")
def eager_run():
    return train(steps=2)


def test_lbfgs_training_lowers_the_loss_and_predicts_the_future(eager_run):
    losses, test_losses, y, seq, _ = eager_run
    assert len(losses) > 20                        # LBFGS evaluated the closure many times
    assert losses[-1] < 0.1 * losses[0], losses
    assert test_losses[-1] < 0.1 * losses[0] and test_losses[1] < test_losses[0]
    assert y.shape == (3, 29 + 20) and y.dtype == np.float64
    assert all(p.dtype == fw.float64 for p in seq.parameters())
    assert np.isfinite(y).all() and np.abs(y[:, 29:]).max() < 2.0   # a bounded wave


def test_compiled_closure_matches_eager(eager_run):
    losses, test_losses, y, seq, _ = eager_run
    c_losses, c_test, c_y, c_seq, body = train(steps=2, compiled=True)
    np.testing.assert_allclose(c_losses, losses, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(c_test, test_losses, rtol=1e-7, atol=1e-10)
    for (name, p), q in zip(seq.named_parameters(), c_seq.parameters()):
        np.testing.assert_allclose(q.detach().numpy(), p.detach().numpy(), rtol=1e-6,
                                   atol=1e-9, err_msg=name)
    st = body.stats()
    # one recompile: LBFGS creates its state on the first step (the body reaches the
    # optimizer through the closure); every other closure call hits the cache
    assert st["eager_calls"] == 0 and st["captures"] <= 2, st
    assert st["cache_hits"] == len(losses) - st["captures"]


def _np_sequence(seq, x, future):
    """Sequence.forward in NumPy, from PyTorch's LSTMCell equations (gates i, f, g, o)."""
    w = {n: p.detach().numpy() for n, p in seq.named_parameters()}
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731

    def cell(name, x, h, c):
        z = x @ w[name + '.weight_ih'].T + w[name + '.bias_ih'] + \
            h @ w[name + '.weight_hh'].T + w[name + '.bias_hh']
        i, f, g, o = np.split(z, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        return sig(o) * np.tanh(c), c

    h = c = h2 = c2 = np.zeros((x.shape[0], 51))
    outs = []
    for t in range(x.shape[1] + future):
        inp = x[:, t:t + 1] if t < x.shape[1] else outs[-1]
        h, c = cell('lstm1', inp, h, c)
        h2, c2 = cell('lstm2', h, h2, c2)
        outs.append(h2 @ w['linear.weight'].T + w['linear.bias'])
    return np.concatenate(outs, axis=1)


def test_forward_with_future_matches_numpy_reference():
    seq, _, _, _, _, test_input, _ = setup()
    with fw.no_grad():
        got = seq(test_input, future=4)
    assert got.dtype == fw.float64 and got.shape == (3, 33)
    np.testing.assert_allclose(got.numpy(), _np_sequence(seq, test_input.numpy(), 4),
                               rtol=1e-12, atol=1e-14)


def test_gradients_through_the_future_loop_match_finite_differences():
    fw.manual_seed(0)
    seq = Sequence().double()
    x = fw.randn(2, 3, dtype=fw.double, requires_grad=True)
    names = ['linear.weight', 'linear.bias']   # the LSTMCells' through x and the outputs
    params = dict(seq.named_parameters())
    ps = grad_leaves(*(params[n] for n in names))

    def fn(x, *ws):
        return fw.func.functional_call(seq, dict(zip(names, ws)), (x,), {"future": 2})

    assert fn(x, *ps).shape == (2, 5)
    assert fw.autograd.gradcheck(fn, (x,) + ps)


def test_onnx_export_with_future_steps_matches_eager(eager_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    seq = eager_run[3]
    seq.eval()
    test_input = fw.from_numpy(generate_sine_wave()[:3, :-1])
    path = str(tmp_path / "sequence.onnx")
    fw.onnx.export(seq, (test_input, 5), path)
    sess = ort.InferenceSession(path)
    got = sess.run(None, {sess.get_inputs()[0].name: test_input.numpy()})[0]
    with fw.no_grad():
        want = seq(test_input, future=5).numpy()
    assert got.shape == (3, 34) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
