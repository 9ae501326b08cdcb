"""pytorch/examples vae/main.py ported to ``fw`` with only the imports changed.

MNIST is replaced by a few dozen synthetic 28x28 images in [0, 1] (smooth blobs, so the VAE
has something to learn); everything else (the model, the BCE(sum)+KLD loss, Adam, the
train/test loops, sampling from the prior) is the original's code.
"""

import math

import numpy as np
import pytest

import framework as fw
import framework.utils.data
from framework import nn, optim
from framework.nn import functional as F

from ._checks import assert_params_close, assert_stats

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``


class VAE(nn.Module):
    def __init__(self):
        super(VAE, self).__init__()  # noqa: UP008  (verbatim)

        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5*logvar)
        eps = torch.randn_like(std)
        return mu + eps*std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


# Reconstruction + KL divergence losses summed over all elements and batch
def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')

    # see Appendix B from VAE paper:
    # Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    # https://arxiv.org/abs/1312.6114
    # 0.5 * sum(1 + log(sigma^2) - mu^2 - sigma^2)
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())

    return BCE + KLD


def _synthetic_mnist(n, seed):
    """``n`` (1, 28, 28) images in [0, 1]: one Gaussian blob each, with a dummy label."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28]
    imgs = []
    for _ in range(n):
        cy, cx = rng.uniform(8, 20, size=2)
        imgs.append(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0))
    x = np.stack(imgs)[:, None].astype(np.float32)
    return torch.utils.data.TensorDataset(fw.tensor(x), fw.zeros(n, dtype=fw.int64))


def _setup(seed=1):
    torch.manual_seed(seed)
    device = torch.device("cpu")
    model = VAE().to(device)
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    return model, optimizer, device


def train(model, optimizer, device, train_loader, step=None):
    """The original ``train(epoch)``; ``step`` (optional) replaces the loop body."""
    model.train()
    train_loss = 0
    losses = []
    for batch_idx, (data, _) in enumerate(train_loader):
        data = data.to(device)
        if step is None:
            optimizer.zero_grad()
            recon_batch, mu, logvar = model(data)
            loss = loss_function(recon_batch, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        else:
            loss = step(data)
            train_loss += loss.item()
        losses.append(loss.item() / len(data))
    return train_loss / len(train_loader.dataset), losses


def evaluate(model, device, test_loader, batch_size):
    """The original ``test(epoch)`` (renamed so pytest does not collect it), with the
    comparison image built but not saved."""
    model.eval()
    test_loss = 0
    with torch.no_grad():
        for i, (data, _) in enumerate(test_loader):
            data = data.to(device)
            recon_batch, mu, logvar = model(data)
            test_loss += loss_function(recon_batch, data, mu, logvar).item()
            if i == 0:
                n = min(data.size(0), 8)
                comparison = torch.cat([data[:n],
                                        recon_batch.view(batch_size, 1, 28, 28)[:n]])
                assert comparison.shape == (2 * n, 1, 28, 28)
    test_loss /= len(test_loader.dataset)
    return test_loss


def _loaders(batch_size=16):
    train_loader = torch.utils.data.DataLoader(_synthetic_mnist(48, 0),
                                               batch_size=batch_size, shuffle=True)
    test_loader = torch.utils.data.DataLoader(_synthetic_mnist(16, 1),
                                              batch_size=batch_size, shuffle=False)
    return train_loader, test_loader


def test_vae_trains_eagerly_and_samples():
    model, optimizer, device = _setup()
    train_loader, test_loader = _loaders()
    before = evaluate(model, device, test_loader, 16)
    epoch_losses = []
    for _ in range(3):
        avg, _ = train(model, optimizer, device, train_loader)
        epoch_losses.append(avg)
    after = evaluate(model, device, test_loader, 16)
    assert epoch_losses[-1] < 0.7 * epoch_losses[0], epoch_losses
    assert after < 0.7 * before, (before, after)
    assert not model.training
    with torch.no_grad():
        sample = torch.randn(64, 20).to(device)
        sample = model.decode(sample).cpu()
    img = sample.view(64, 1, 28, 28)
    assert img.shape == (64, 1, 28, 28) and not img.requires_grad
    s = img.numpy()
    assert np.isfinite(s).all() and s.min() >= 0 and s.max() <= 1


def test_vae_loss_matches_numpy_formula():
    fw.manual_seed(3)
    recon = fw.rand(4, 784) * 0.98 + 0.01
    x = fw.rand(4, 1, 28, 28)
    mu, logvar = fw.randn(4, 20), fw.randn(4, 20) * 0.3
    got = loss_function(recon, x, mu, logvar).item()
    r, t = recon.numpy().astype(np.float64), x.numpy().reshape(4, 784).astype(np.float64)
    bce = -(t * np.log(r) + (1 - t) * np.log(1 - r)).sum()
    m, lv = mu.numpy().astype(np.float64), logvar.numpy().astype(np.float64)
    kld = -0.5 * (1 + lv - m ** 2 - np.exp(lv)).sum()
    assert math.isclose(got, bce + kld, rel_tol=1e-5)


def _fixed_batches():
    train_loader, _ = _loaders()
    fw.manual_seed(5)  # the shuffle order, identical for both runs
    return [d for d, _ in train_loader] + [d for d, _ in train_loader]


def _run(compiled):
    model, optimizer, device = _setup()

    def train_step(data):
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        optimizer.step()
        return loss

    step = fw.compile(train_step, mode="always") if compiled else train_step
    batches = _fixed_batches()
    torch.manual_seed(7)  # the reparameterization noise
    model.train()
    losses = [step(d.to(device)).item() for d in batches]
    return losses, model, step


def test_vae_compiled_step_matches_eager_and_compiles_once():
    eager_losses, eager_model, _ = _run(False)
    comp_losses, comp_model, step = _run(True)
    np.testing.assert_allclose(comp_losses, eager_losses, rtol=1e-4, atol=1e-5)
    assert_params_close(comp_model, eager_model)
    assert_stats(step, captures=1, num_recompiles=0, eager_reason=None)


def test_vae_gradcheck_float64():
    """The whole loss (encoder, reparameterize with fixed noise, decoder, BCE+KLD) against
    finite differences, through offsets on mu, logvar and a patch of fc3's weight."""
    fw.manual_seed(0)
    model = VAE().double()
    x = fw.rand(2, 1, 28, 28, dtype=fw.float64)

    def f(dmu, dlogvar, dw3):
        fw.manual_seed(11)  # the same eps on every evaluation
        mu, logvar = model.encode(x.view(-1, 784))
        mu, logvar = mu + dmu, logvar + dlogvar
        z = model.reparameterize(mu, logvar)
        w3 = model.fc3.weight + F.pad(dw3, (0, 20 - 4, 0, 400 - 3))
        recon = torch.sigmoid(model.fc4(F.relu(F.linear(z, w3, model.fc3.bias))))
        return loss_function(recon, x, mu, logvar)

    args = (0.1 * fw.randn(20, dtype=fw.float64), 0.1 * fw.randn(20, dtype=fw.float64),
            0.01 * fw.randn(3, 4, dtype=fw.float64))
    args = tuple(a.requires_grad_() for a in args)
    assert fw.autograd.gradcheck(f, args, eps=1e-6, atol=1e-4)


def test_vae_onnx_export_decoder_and_checkpoint(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, _, _ = _setup()
    model.eval()
    # the sampler half (decode) is deterministic: export it as a module
    class Decoder(nn.Module):
        def __init__(self, vae):
            super().__init__()
            self.vae = vae

        def forward(self, z):
            return self.vae.decode(z)

    z = fw.randn(3, 20)
    path = str(tmp_path / "vae_decoder.onnx")
    fw.onnx.export(Decoder(model), (z,), path, input_names=["z"], output_names=["img"],
                   dynamic_axes={"z": {0: "batch"}, "img": {0: "batch"}})
    sess = ort.InferenceSession(path)
    z2 = fw.randn(5, 20)
    (got,) = sess.run(None, {"z": z2.numpy()})
    with fw.no_grad():
        want = model.decode(z2).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # the whole VAE exports too: the noise becomes an ONNX RandomNormal, so mu and logvar
    # must match exactly and the reconstruction must be a valid image
    full = str(tmp_path / "vae.onnx")
    x = fw.rand(3, 1, 28, 28)
    fw.onnx.export(model, (x,), full, input_names=["x"])
    recon, mu, logvar = ort.InferenceSession(full).run(None, {"x": x.numpy()})
    with fw.no_grad():
        want_mu, want_logvar = model.encode(x.view(-1, 784))
    np.testing.assert_allclose(mu, want_mu.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logvar, want_logvar.numpy(), rtol=1e-4, atol=1e-5)
    assert recon.shape == (3, 784) and recon.min() >= 0 and recon.max() <= 1
    # checkpoint round trip
    ck = str(tmp_path / "vae.pth")
    fw.save(model.state_dict(), ck)
    other = VAE()
    other.load_state_dict(fw.load(ck))
    with fw.no_grad():
        np.testing.assert_array_equal(other.decode(z2).numpy(), want)
