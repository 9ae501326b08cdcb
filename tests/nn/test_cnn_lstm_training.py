"""End to end: a small CNN learns a synthetic image task and an LSTM language model's loss
falls on a fixed text, each trained by a hand-written SGD-with-momentum loop (no optim)."""

import numpy as np

import framework as fw
import framework.nn.functional as F
from framework import nn


def _sgd_step(params, velocity, lr, momentum=0.9):
    with fw.no_grad():
        for p, v in zip(params, velocity):
            v.mul_(momentum).add_(p.grad)
            p.sub_(lr * v)
            p.grad = None


def _bars(rng, n):
    """8x8 images of one line (row, column, diagonal, anti-diagonal) in noise: 4 classes."""
    y = rng.integers(0, 4, n)
    x = rng.normal(0, 0.3, (n, 1, 8, 8))
    ar = np.arange(8)
    for i, c in enumerate(y):
        r = rng.integers(1, 7)
        if c == 0:
            x[i, 0, r, :] += 1
        elif c == 1:
            x[i, 0, :, r] += 1
        elif c == 2:
            x[i, 0, ar, ar] += 1
        else:
            x[i, 0, ar, 7 - ar] += 1
    return fw.tensor(x, dtype=fw.float32), fw.tensor(y)


def test_small_cnn_learns_line_orientation():
    fw.manual_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = _bars(rng, 256)
    x_test, y_test = _bars(rng, 128)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding="same"), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 4))
    params = list(model.parameters())
    velocity = [fw.zeros_like(p) for p in params]
    with fw.no_grad():
        initial = F.cross_entropy(model(x_test), y_test).item()
    for _ in range(150):
        idx = fw.tensor(rng.integers(0, 256, 32))
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        loss.backward()
        _sgd_step(params, velocity, lr=0.05)
    with fw.no_grad():
        logits = model(x_test)
        final = F.cross_entropy(logits, y_test).item()
        accuracy = (logits.argmax(1) == y_test).float().mean().item()
    assert final < 0.3 * initial, (initial, final)
    assert accuracy > 0.85, accuracy  # chance is 0.25


class _CharLM(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True)
        self.head = nn.Linear(32, vocab)

    def forward(self, x):
        return self.head(self.lstm(self.emb(x))[0])


def test_lstm_language_model_loss_falls():
    fw.manual_seed(0)
    rng = np.random.default_rng(0)
    text = "the quick brown fox jumps over the lazy dog. " * 6
    chars = sorted(set(text))
    ids = np.array([chars.index(c) for c in text])
    vocab, steps = len(chars), 20
    model = _CharLM(vocab)
    params = list(model.parameters())
    velocity = [fw.zeros_like(p) for p in params]
    losses = []
    for _ in range(45):
        starts = rng.integers(0, len(ids) - steps - 1, 16)
        x = fw.tensor(np.stack([ids[s:s + steps] for s in starts]))
        y = fw.tensor(np.stack([ids[s + 1:s + steps + 1] for s in starts]))
        loss = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        _sgd_step(params, velocity, lr=0.5)
        losses.append(loss.item())
    assert losses[0] > 0.9 * np.log(vocab)  # starts near uniform
    assert np.mean(losses[-5:]) < 0.25 * losses[0], losses
