"""Compiled training steps == eager: losses, parameters, .grad, BatchNorm statistics and
optimizer state after several steps, for MLP, CNN, LSTM and a small transformer."""

import numpy as np
import pytest

import framework as fw
from framework import nn, optim


def _mlp():
    return nn.Sequential(nn.Linear(12, 16), nn.GELU(), nn.Linear(16, 5))


def _cnn():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))


class _LSTMNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 6)
        self.lstm = nn.LSTM(6, 8, batch_first=True)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        h, _ = self.lstm(self.emb(x))
        return self.fc(h[:, -1])


class _TinyTransformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.enc(self.emb(x)).mean(1))


_BATCHES = {
    "mlp": lambda: (fw.randn(4, 12), fw.randint(0, 5, (4,))),
    "cnn": lambda: (fw.randn(2, 3, 8, 8), fw.randint(0, 5, (2,))),
    "lstm": lambda: (fw.randint(0, 10, (3, 5)), fw.randint(0, 5, (3,))),
    "transformer": lambda: (fw.randint(0, 10, (3, 5)), fw.randint(0, 5, (3,))),
}
_MODELS = {"mlp": _mlp, "cnn": _cnn, "lstm": _LSTMNet, "transformer": _TinyTransformer}
_OPTS = {
    "sgd": lambda m: optim.SGD(m.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3),
    "adamw": lambda m: optim.AdamW(m.parameters(), lr=0.01),
}


def _train(model_name, opt_name, compiled, steps=4, zero_first=True):
    fw.manual_seed(0)
    model = _MODELS[model_name]()
    opt = _OPTS[opt_name](model)

    def step(x, y):
        if zero_first:
            opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if not zero_first:
            opt.zero_grad()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    fw.manual_seed(1)
    losses = [float(fn(*_BATCHES[model_name]())) for _ in range(steps)]
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    grads = {k: (None if p.grad is None else p.grad.numpy().copy())
             for k, p in model.named_parameters()}
    return losses, state, grads, fn


@pytest.mark.parametrize("opt_name", ["sgd", "adamw"])
@pytest.mark.parametrize("model_name", ["mlp", "cnn", "lstm", "transformer"])
def test_compiled_training_matches_eager(model_name, opt_name):
    l1, s1, g1, _ = _train(model_name, opt_name, False)
    l2, s2, g2, fn = _train(model_name, opt_name, True)
    st = fn.stats()
    assert st["eager_reason"] is None and st["captures"] >= 1
    assert st["cache_hits"] >= 2, st          # the later steps ran compiled code
    np.testing.assert_allclose(l1, l2, rtol=1e-5, atol=1e-6)
    for k in s1:  # parameters and buffers (BatchNorm running stats, num_batches_tracked)
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-5, atol=1e-6, err_msg=k)
    for k in g1:
        assert (g1[k] is None) == (g2[k] is None), k
        if g1[k] is not None:
            np.testing.assert_allclose(g1[k], g2[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_zero_grad_at_end_and_grad_contents():
    l1, s1, g1, _ = _train("mlp", "sgd", False, zero_first=False)
    l2, s2, g2, fn = _train("mlp", "sgd", True, zero_first=False)
    np.testing.assert_allclose(l1, l2, rtol=1e-6)
    assert all(g is None for g in g2.values())
    for k in s1:
        np.testing.assert_allclose(s1[k], s2[k], rtol=1e-6, err_msg=k)


def test_grad_accumulation_without_zero_grad():
    """backward() twice without zero_grad accumulates into .grad, compiled as in eager."""
    results = []
    for compiled in (False, True):
        fw.manual_seed(0)
        w = fw.randn(3, 2, requires_grad=True)

        def step(x):
            (x @ w).square().sum().backward()
            return w.grad * 1.0

        fn = fw.compile(step, mode="always") if compiled else step
        x = fw.randn(4, 3)
        outs = [fn(x).numpy().copy() for _ in range(3)]
        results.append((outs, w.grad.numpy().copy()))
    for a, b in zip(results[0][0], results[1][0]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)


def test_batchnorm_running_stats_written_back():
    fw.manual_seed(0)
    bn1 = nn.BatchNorm1d(3)
    bn2 = nn.BatchNorm1d(3)
    f = fw.compile(lambda x: bn2(x), mode="always")
    for _ in range(3):
        x = fw.randn(5, 3)
        with fw.no_grad():
            np.testing.assert_allclose(bn1(x).numpy(), f(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn1.running_mean.numpy(), bn2.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(bn1.running_var.numpy(), bn2.running_var.numpy(), rtol=1e-6)
    assert int(bn1.num_batches_tracked.item()) == int(bn2.num_batches_tracked.item()) == 3


def test_dropout_uses_the_same_random_stream():
    outs = []
    for compiled in (False, True):
        fw.manual_seed(0)
        drop = nn.Dropout(0.5)
        f = fw.compile(lambda x: drop(x) * 2, mode="always") if compiled else \
            (lambda x: drop(x) * 2)
        fw.manual_seed(3)
        with fw.no_grad():
            outs.append([f(fw.ones(4, 6)).numpy().copy() for _ in range(3)])
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(outs[1][0], outs[1][1])  # fresh randomness per call


def test_bound_method_of_a_trainer_object():
    """Modules and optimizers reached through ``self`` attributes are found (names, lazy
    optimizer state created by an eager warm-up call)."""
    class Trainer:
        def __init__(self):
            fw.manual_seed(0)
            self.model = _mlp()
            self.opt = optim.AdamW(self.model.parameters(), lr=0.01)

        def step(self, x, y):
            self.opt.zero_grad()
            loss = nn.functional.cross_entropy(self.model(x), y)
            loss.backward()
            self.opt.step()
            return loss

    a, b = Trainer(), Trainer()
    f = fw.compile(b.step, mode="always")
    x, y = _BATCHES["mlp"]()
    for _ in range(4):
        np.testing.assert_allclose(float(a.step(x, y)), float(f(x, y)), rtol=1e-6)
    st = f.stats()
    assert st["captures"] == 1 and st["cache_hits"] >= 2 and not st["recompiles"]
    names = {v.name for v in f.graph(x, y).constants}
    assert "model.0.weight" in names and "opt.model.0.weight.exp_avg" in names


class _PositionalLM(nn.Module):
    """nanoGPT's shape of model: token + position embeddings (``arange(T)``, a constant the
    forward folds) and a cross-entropy whose backward folds ``arange(V)``, V != T."""

    def __init__(self, vocab=13, width=8):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, width), nn.Embedding(6, width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx, targets):
        pos = fw.arange(0, idx.shape[1], dtype=fw.long)
        logits = self.head(self.wte(idx) + self.wpe(pos))
        return nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]),
                                           targets.view(-1), ignore_index=-1)


def test_compiled_module_backward_reads_its_own_folded_constants():
    """Regression: the compiled backward looked constants up by name in the forward's
    table, so its folded ``arange(13)`` was read as the forward's ``arange(6)``."""
    fw.manual_seed(0)
    model = _PositionalLM()
    compiled = fw.compile(model, mode="always")
    idx, targets = fw.randint(0, 13, (2, 6)), fw.randint(0, 13, (2, 6))
    compiled(idx, targets).backward()
    got = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    model.zero_grad()
    model(idx, targets).backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(got[n], p.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=n)
