# ruff: noqa: E501, E731, UP006, UP008, UP035, UP045  (the ported script's own lines are kept as written)
"""cloneofsimo/minDiffusion ported to ``fw``: ``superminddpm.py`` (ddpm_schedules, the conv
block ``blk``, DummyEpsModel, DDPM with its Algorithm 1 loss and Algorithm 2 sampler,
train_mnist) and the package version used by ``train_cifar10.py`` (``mindiffusion/unet.py``'s
NaiveUnet and ``mindiffusion/ddpm.py``'s DDPM, whose sampler feeds the time as a tensor).

Changed beyond the ``torch`` -> ``fw`` rename: torchvision's MNIST / CIFAR10 become small
synthetic image sets and ``make_grid`` / ``save_image`` are dropped; DummyEpsModel's channel
widths (64, 128, 256, 512, 256, 128, 64) become a ``widths`` argument with that default, so
the tests run a narrow copy; the epoch loops take ``n_epoch`` / a dataset / a work dir from
the caller, and train_mnist returns its per-step losses (test bookkeeping). The package's
DDPM is named ``PkgDDPM`` here (both files call it DDPM).
"""

import os
from typing import Dict, Optional, Tuple

import numpy as np
import pytest
from tqdm import tqdm

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
from framework.utils.data import DataLoader, TensorDataset

from ._checks import assert_stats

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``


# ---- superminddpm.py --------------------------------------------------------------------------

def ddpm_schedules(beta1: float, beta2: float, T: int) -> Dict[str, torch.Tensor]:
    """
    Returns pre-computed schedules for DDPM sampling, training process.
    """
    assert beta1 < beta2 < 1.0, "beta1 and beta2 must be in (0, 1)"

    beta_t = (beta2 - beta1) * torch.arange(0, T + 1, dtype=torch.float32) / T + beta1
    sqrt_beta_t = torch.sqrt(beta_t)
    alpha_t = 1 - beta_t
    log_alpha_t = torch.log(alpha_t)
    alphabar_t = torch.cumsum(log_alpha_t, dim=0).exp()

    sqrtab = torch.sqrt(alphabar_t)
    oneover_sqrta = 1 / torch.sqrt(alpha_t)

    sqrtmab = torch.sqrt(1 - alphabar_t)
    mab_over_sqrtmab_inv = (1 - alpha_t) / sqrtmab

    return {
        "alpha_t": alpha_t,  # \alpha_t
        "oneover_sqrta": oneover_sqrta,  # 1/\sqrt{\alpha_t}
        "sqrt_beta_t": sqrt_beta_t,  # \sqrt{\beta_t}
        "alphabar_t": alphabar_t,  # \bar{\alpha_t}
        "sqrtab": sqrtab,  # \sqrt{\bar{\alpha_t}}
        "sqrtmab": sqrtmab,  # \sqrt{1-\bar{\alpha_t}}
        "mab_over_sqrtmab": mab_over_sqrtmab_inv,  # (1-\alpha_t)/\sqrt{1-\bar{\alpha_t}}
    }


blk = lambda ic, oc: nn.Sequential(
    nn.Conv2d(ic, oc, 7, padding=3),
    nn.BatchNorm2d(oc),
    nn.LeakyReLU(),
)


class DummyEpsModel(nn.Module):
    """
    This should be unet-like, but let's don't think about the model too much :P
    Basically, any universal R^n -> R^n model should work.
    """

    def __init__(self, n_channel: int, widths=(64, 128, 256, 512, 256, 128, 64)) -> None:
        super(DummyEpsModel, self).__init__()
        w = widths
        self.conv = nn.Sequential(  # with batchnorm
            blk(n_channel, w[0]),
            blk(w[0], w[1]),
            blk(w[1], w[2]),
            blk(w[2], w[3]),
            blk(w[3], w[4]),
            blk(w[4], w[5]),
            blk(w[5], w[6]),
            nn.Conv2d(w[6], n_channel, 3, padding=1),
        )

    def forward(self, x, t) -> torch.Tensor:
        # Lets think about using t later. In the paper, they used Tr-like positional embeddings.
        return self.conv(x)


class DDPM(nn.Module):
    def __init__(
        self,
        eps_model: nn.Module,
        betas: Tuple[float, float],
        n_T: int,
        criterion: nn.Module = nn.MSELoss(),
    ) -> None:
        super(DDPM, self).__init__()
        self.eps_model = eps_model

        # register_buffer allows us to freely access these tensors by name. It helps device placement.
        for k, v in ddpm_schedules(betas[0], betas[1], n_T).items():
            self.register_buffer(k, v)

        self.n_T = n_T
        self.criterion = criterion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Makes forward diffusion x_t, and tries to guess epsilon value from x_t using eps_model.
        This implements Algorithm 1 in the paper.
        """

        _ts = torch.randint(1, self.n_T, (x.shape[0],)).to(
            x.device
        )  # t ~ Uniform(0, n_T)
        eps = torch.randn_like(x)  # eps ~ N(0, 1)

        x_t = (
            self.sqrtab[_ts, None, None, None] * x
            + self.sqrtmab[_ts, None, None, None] * eps
        )  # This is the x_t, which is sqrt(alphabar) x_0 + sqrt(1-alphabar) * eps
        # We should predict the "error term" from this x_t. Loss is what we return.

        return self.criterion(eps, self.eps_model(x_t, _ts / self.n_T))

    def sample(self, n_sample: int, size, device) -> torch.Tensor:

        x_i = torch.randn(n_sample, *size).to(device)  # x_T ~ N(0, 1)

        # This samples accordingly to Algorithm 2. It is exactly the same logic.
        for i in range(self.n_T, 0, -1):
            z = torch.randn(n_sample, *size).to(device) if i > 1 else 0
            eps = self.eps_model(x_i, i / self.n_T)
            x_i = (
                self.oneover_sqrta[i] * (x_i - eps * self.mab_over_sqrtmab[i])
                + self.sqrt_beta_t[i] * z
            )

        return x_i


def train_mnist(n_epoch: int = 100, device="cuda:0", dataset=None, work_dir=".",
                eps_model=None, n_T=1000, compile=False) -> None:

    ddpm = DDPM(eps_model=eps_model or DummyEpsModel(1), betas=(1e-4, 0.02), n_T=n_T)
    ddpm.to(device)

    # (torchvision's MNIST with ToTensor + Normalize((0.5,), (1.0)): the caller's dataset)
    dataloader = DataLoader(dataset, batch_size=128, shuffle=True, num_workers=0)  # num_workers=20
    optim = torch.optim.Adam(ddpm.parameters(), lr=2e-4)

    def train_step(x):  # (the loop body from zero_grad to step, so a test can compile it)
        optim.zero_grad()
        loss = ddpm(x)
        loss.backward()
        optim.step()
        return loss

    step = fw.compile(train_step, mode="always") if compile else train_step
    losses = []
    for i in range(n_epoch):
        ddpm.train()

        pbar = tqdm(dataloader)
        loss_ema = None
        for x, _ in pbar:
            x = x.to(device)
            loss = step(x)
            if loss_ema is None:
                loss_ema = loss.item()
            else:
                loss_ema = 0.9 * loss_ema + 0.1 * loss.item()
            pbar.set_description(f"loss: {loss_ema:.4f}")
            losses.append(loss.item())

        ddpm.eval()
        with torch.no_grad():
            xh = ddpm.sample(16, tuple(x.shape[1:]), device)  # (1, 28, 28)
            assert xh.shape == (16, *x.shape[1:])  # make_grid / save_image dropped

            # save model
            torch.save(ddpm.state_dict(), os.path.join(work_dir, "ddpm_mnist.pth"))
    train_mnist.step, train_mnist.loss_ema = step, loss_ema  # (test bookkeeping)
    return ddpm, losses


# ---- mindiffusion/unet.py ---------------------------------------------------------------------

class Conv3(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, is_res: bool = False
    ) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.GroupNorm(8, out_channels),
            nn.ReLU(),
        )
        self.conv = nn.Sequential(
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.GroupNorm(8, out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1),
            nn.GroupNorm(8, out_channels),
            nn.ReLU(),
        )

        self.is_res = is_res

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.main(x)
        if self.is_res:
            x = x + self.conv(x)
            return x / 1.414
        else:
            return self.conv(x)


class UnetDown(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super(UnetDown, self).__init__()
        layers = [Conv3(in_channels, out_channels), nn.MaxPool2d(2)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:

        return self.model(x)


class UnetUp(nn.Module):
    def __init__(self, in_channels: int, out_channels: int) -> None:
        super(UnetUp, self).__init__()
        layers = [
            nn.ConvTranspose2d(in_channels, out_channels, 2, 2),
            Conv3(out_channels, out_channels),
            Conv3(out_channels, out_channels),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat((x, skip), 1)
        x = self.model(x)

        return x


class TimeSiren(nn.Module):
    def __init__(self, emb_dim: int) -> None:
        super(TimeSiren, self).__init__()

        self.lin1 = nn.Linear(1, emb_dim, bias=False)
        self.lin2 = nn.Linear(emb_dim, emb_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.view(-1, 1)
        x = torch.sin(self.lin1(x))
        x = self.lin2(x)
        return x


class NaiveUnet(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, n_feat: int = 256) -> None:
        super(NaiveUnet, self).__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels

        self.n_feat = n_feat

        self.init_conv = Conv3(in_channels, n_feat, is_res=True)

        self.down1 = UnetDown(n_feat, n_feat)
        self.down2 = UnetDown(n_feat, 2 * n_feat)
        self.down3 = UnetDown(2 * n_feat, 2 * n_feat)

        self.to_vec = nn.Sequential(nn.AvgPool2d(4), nn.ReLU())

        self.timeembed = TimeSiren(2 * n_feat)

        self.up0 = nn.Sequential(
            nn.ConvTranspose2d(2 * n_feat, 2 * n_feat, 4, 4),
            nn.GroupNorm(8, 2 * n_feat),
            nn.ReLU(),
        )

        self.up1 = UnetUp(4 * n_feat, 2 * n_feat)
        self.up2 = UnetUp(4 * n_feat, n_feat)
        self.up3 = UnetUp(2 * n_feat, n_feat)
        self.out = nn.Conv2d(2 * n_feat, self.out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:

        x = self.init_conv(x)

        down1 = self.down1(x)
        down2 = self.down2(down1)
        down3 = self.down3(down2)

        thro = self.to_vec(down3)
        temb = self.timeembed(t).view(-1, self.n_feat * 2, 1, 1)

        thro = self.up0(thro + temb)

        up1 = self.up1(thro, down3) + temb
        up2 = self.up2(up1, down2)
        up3 = self.up3(up2, down1)

        out = self.out(torch.cat((up3, x), 1))

        return out


# ---- mindiffusion/ddpm.py (its DDPM; ddpm_schedules is the same as above) ---------------------

class PkgDDPM(nn.Module):
    def __init__(
        self,
        eps_model: nn.Module,
        betas: Tuple[float, float],
        n_T: int,
        criterion: nn.Module = nn.MSELoss(),
    ) -> None:
        super(PkgDDPM, self).__init__()
        self.eps_model = eps_model

        # register_buffer allows us to freely access these tensors by name. It helps device placement.
        for k, v in ddpm_schedules(betas[0], betas[1], n_T).items():
            self.register_buffer(k, v)

        self.n_T = n_T
        self.criterion = criterion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        Makes forward diffusion x_t, and tries to guess epsilon value from x_t using eps_model.
        This implements Algorithm 1 in the paper.
        """

        _ts = torch.randint(1, self.n_T + 1, (x.shape[0],)).to(x.device)
        # t ~ Uniform(0, n_T)
        eps = torch.randn_like(x)  # eps ~ N(0, 1)

        x_t = (
            self.sqrtab[_ts, None, None, None] * x
            + self.sqrtmab[_ts, None, None, None] * eps
        )  # This is the x_t, which is sqrt(alphabar) x_0 + sqrt(1-alphabar) * eps
        # We should predict the "error term" from this x_t. Loss is what we return.

        return self.criterion(eps, self.eps_model(x_t, _ts / self.n_T))

    def sample(self, n_sample: int, size, device) -> torch.Tensor:

        x_i = torch.randn(n_sample, *size).to(device)  # x_T ~ N(0, 1)

        # This samples accordingly to Algorithm 2. It is exactly the same logic.
        for i in range(self.n_T, 0, -1):
            z = torch.randn(n_sample, *size).to(device) if i > 1 else 0
            eps = self.eps_model(
                x_i, torch.tensor(i / self.n_T).to(device).repeat(n_sample, 1)
            )
            x_i = (
                self.oneover_sqrta[i] * (x_i - eps * self.mab_over_sqrtmab[i])
                + self.sqrt_beta_t[i] * z
            )

        return x_i


# ---- train_cifar10.py -------------------------------------------------------------------------

def train_cifar10(
    n_epoch: int = 100, device: str = "cuda:1", load_pth: Optional[str] = None,
    dataset=None, n_feat=128, n_T=1000, batch_size=512,
) -> None:

    ddpm = PkgDDPM(eps_model=NaiveUnet(3, 3, n_feat=n_feat), betas=(1e-4, 0.02), n_T=n_T)

    if load_pth is not None:
        ddpm.load_state_dict(torch.load(load_pth))  # "ddpm_cifar.pth"

    ddpm.to(device)

    # (torchvision's CIFAR10 with ToTensor + Normalize((0.5,)*3, (0.5,)*3): the caller's dataset)
    dataloader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0)  # 16
    optim = torch.optim.Adam(ddpm.parameters(), lr=1e-5)

    losses = []
    for i in range(n_epoch):
        print(f"Epoch {i} : ")
        ddpm.train()

        pbar = tqdm(dataloader)
        loss_ema = None
        for x, _ in pbar:
            optim.zero_grad()
            x = x.to(device)
            loss = ddpm(x)
            loss.backward()
            if loss_ema is None:
                loss_ema = loss.item()
            else:
                loss_ema = 0.9 * loss_ema + 0.1 * loss.item()
            pbar.set_description(f"loss: {loss_ema:.4f}")
            optim.step()
            losses.append(loss.item())

        ddpm.eval()
        with torch.no_grad():
            xh = ddpm.sample(8, (3, 32, 32), device)
            xset = torch.cat([xh, x[:8]], dim=0)
            assert xset.shape == (8 + min(8, x.shape[0]), 3, 32, 32)  # make_grid / save_image dropped

            # save model
            torch.save(ddpm.state_dict(), load_pth or "./ddpm_cifar.pth")
    return ddpm, losses


# ---- test harness ------------------------------------------------------------------------------

WIDTHS = (4, 8, 8, 8, 8, 8, 4)


def _images(n, c, hw, seed=0):
    """Bars at random offsets, ToTensor + Normalize((0.5,), (1.0,)) style: values in [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, c, hw, hw), np.float32)
    for k in range(n):
        o = rng.integers(1, hw - 1)
        if k % 2:
            x[k, :, o - 1:o + 1, :] = 1.0
        else:
            x[k, :, :, o - 1:o + 1] = 1.0
    return TensorDataset(fw.tensor(x - 0.5), fw.zeros(n, dtype=fw.long))


def test_schedules_against_numpy():
    s = ddpm_schedules(1e-4, 0.02, 50)
    beta = (0.02 - 1e-4) * np.arange(51, dtype=np.float64) / 50 + 1e-4
    alpha = 1 - beta
    ab = np.cumprod(alpha)
    want = {"alpha_t": alpha, "oneover_sqrta": 1 / np.sqrt(alpha), "sqrt_beta_t": np.sqrt(beta),
            "alphabar_t": ab, "sqrtab": np.sqrt(ab), "sqrtmab": np.sqrt(1 - ab),
            "mab_over_sqrtmab": (1 - alpha) / np.sqrt(1 - ab)}
    assert set(s) == set(want)
    for k, v in s.items():
        assert v.dtype == fw.float32 and v.shape == (51,)
        np.testing.assert_allclose(v.numpy(), want[k], rtol=2e-4, err_msg=k)
    with pytest.raises(AssertionError):
        ddpm_schedules(0.02, 1e-4, 10)


def test_ddpm_loss_is_algorithm_1():
    """Replaying the seeded draws: t ~ U{1..n_T-1}, eps ~ N(0, 1), x_t, then the MSE."""
    fw.manual_seed(0)
    ddpm = DDPM(eps_model=DummyEpsModel(1, WIDTHS), betas=(1e-4, 0.02), n_T=20)
    ddpm.eval()
    x = fw.stack([_images(6, 1, 8)[i][0] for i in range(6)])
    fw.manual_seed(3)
    loss = ddpm(x)
    fw.manual_seed(3)
    ts = fw.randint(1, 20, (6,))
    eps = fw.randn_like(x)
    assert ts.dtype == fw.int64 and 1 <= ts.min().item() and ts.max().item() <= 19
    sab, smab = ddpm.sqrtab.numpy()[ts.numpy()], ddpm.sqrtmab.numpy()[ts.numpy()]
    x_t = sab[:, None, None, None] * x.numpy() + smab[:, None, None, None] * eps.numpy()
    with fw.no_grad():
        pred = ddpm.eps_model(fw.tensor(x_t), ts / 20).numpy()
    np.testing.assert_allclose(loss.item(), ((eps.numpy() - pred) ** 2).mean(), rtol=1e-5)
    # the int64 timestep tensor divided by an int is a float32 tensor, as in torch
    assert (ts / 20).dtype == fw.float32


def test_sample_is_algorithm_2():
    """With an eps model that predicts zeros the sampler is x <- x/sqrt(a_i) + sqrt(b_i) z;
    replay its seeded noise in NumPy."""
    class Zero(nn.Module):
        def forward(self, x, t):
            self.ts = getattr(self, "ts", []) + [t]
            return torch.zeros_like(x)

    ddpm = DDPM(eps_model=Zero(), betas=(1e-4, 0.02), n_T=5)
    fw.manual_seed(1)
    with fw.no_grad():
        got = ddpm.sample(3, (1, 4, 4), "cpu")
    fw.manual_seed(1)
    x = fw.randn(3, 1, 4, 4).numpy().astype(np.float64)
    for i in range(5, 0, -1):
        z = fw.randn(3, 1, 4, 4).numpy() if i > 1 else 0
        x = ddpm.oneover_sqrta[i].item() * x + ddpm.sqrt_beta_t[i].item() * z
    np.testing.assert_allclose(got.numpy(), x, rtol=1e-5, atol=1e-6)
    assert ddpm.eps_model.ts == [1.0, 0.8, 0.6, 0.4, 0.2]


def _fixed_draw_loss(ddpm, x):
    fw.manual_seed(123)  # the same timesteps and noise before and after training
    with fw.no_grad():
        return ddpm(x).item()


def test_train_mnist_lowers_the_loss_and_saves(tmp_path):
    fw.manual_seed(0)
    data = _images(32, 1, 8)
    x = fw.stack([data[i][0] for i in range(32)])
    fw.manual_seed(0)
    init = DDPM(eps_model=DummyEpsModel(1, WIDTHS), betas=(1e-4, 0.02), n_T=50)
    before = _fixed_draw_loss(init, x)
    fw.manual_seed(0)
    ddpm, losses = train_mnist(n_epoch=8, device="cpu", dataset=data, work_dir=str(tmp_path),
                               eps_model=DummyEpsModel(1, WIDTHS), n_T=50)
    sd = fw.load(str(tmp_path / "ddpm_mnist.pth"))
    assert "sqrtab" in sd and "eps_model.conv.0.1.running_mean" in sd
    fresh = DDPM(eps_model=DummyEpsModel(1, WIDTHS), betas=(1e-4, 0.02), n_T=50)
    fresh.load_state_dict(sd)
    for k, v in ddpm.state_dict().items():
        np.testing.assert_array_equal(fresh.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    ddpm.train()  # (batch statistics, as `before` used)
    after = _fixed_draw_loss(ddpm, x)
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert after < before - 0.02, (before, after, losses)
    assert train_mnist.loss_ema == pytest.approx(losses[-1])  # one batch per epoch: the EMA restarts


def test_loss_ema_over_several_batches(tmp_path):
    fw.manual_seed(0)
    train_mnist(n_epoch=1, device="cpu", dataset=_images(300, 1, 4), work_dir=str(tmp_path),
                eps_model=DummyEpsModel(1, (2,) * 7), n_T=10)
    fw.manual_seed(0)
    _, losses = train_mnist(n_epoch=1, device="cpu", dataset=_images(300, 1, 4),
                            work_dir=str(tmp_path), eps_model=DummyEpsModel(1, (2,) * 7), n_T=10)
    assert len(losses) == 3  # 128 + 128 + 44
    ema = losses[0]
    for v in losses[1:]:
        ema = 0.9 * ema + 0.1 * v
    assert train_mnist.loss_ema == pytest.approx(ema)


def _train(compiled, steps=4):
    fw.manual_seed(0)
    data = _images(32, 1, 8)
    eps_model = DummyEpsModel(1, WIDTHS)
    ddpm = DDPM(eps_model=eps_model, betas=(1e-4, 0.02), n_T=50)
    opt = torch.optim.Adam(ddpm.parameters(), lr=2e-3)

    def train_step(x):
        opt.zero_grad()
        loss = ddpm(x)
        loss.backward()
        opt.step()
        return loss

    step = fw.compile(train_step, mode="always") if compiled else train_step
    xs = [fw.stack([data[(8 * k + i) % 32][0] for i in range(8)]) for k in range(steps)]
    fw.manual_seed(5)  # the timesteps and noise
    ddpm.train()
    return [step(x).item() for x in xs], ddpm, step


def test_compiled_step_matches_eager():
    """randint / randn_like inside the compiled step draw what eager draws; BatchNorm's
    running statistics are written back."""
    e_losses, e_model, _ = _train(False)
    c_losses, c_model, step = _train(True)
    np.testing.assert_allclose(c_losses, e_losses, rtol=1e-4, atol=1e-5)
    ce, cc = e_model.state_dict(), c_model.state_dict()
    for k in ce:
        np.testing.assert_allclose(cc[k].numpy(), ce[k].numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
    assert ce["eps_model.conv.0.1.num_batches_tracked"].item() == 4
    assert_stats(step, captures=1, num_recompiles=0, eager_reason=None)


def test_blk_gradcheck_float64_train_mode():
    """Conv 7x7 + BatchNorm2d with batch statistics + LeakyReLU, against finite differences."""
    fw.manual_seed(0)
    m = nn.Sequential(blk(2, 3), nn.Conv2d(3, 1, 3, padding=1)).double().train()
    x = fw.randn(2, 2, 4, 4, dtype=fw.float64, requires_grad=True)
    w = m[0][0].weight

    def f(x, dw, dg):
        y = F.conv2d(x, w + F.pad(dw, (0, 5, 0, 5)), m[0][0].bias, padding=3)
        bn = m[0][1]
        y = F.batch_norm(y, None, None, bn.weight + dg, bn.bias, training=True)
        return m[1](F.leaky_relu(y))

    dw = fw.zeros(3, 2, 2, 2, dtype=fw.float64, requires_grad=True)
    dg = fw.zeros(3, dtype=fw.float64, requires_grad=True)
    assert fw.autograd.gradcheck(f, (x, dw, dg), eps=1e-6, atol=1e-5)


def test_onnx_export_of_the_eps_models(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    fw.manual_seed(0)
    dummy = DummyEpsModel(1, WIDTHS)
    _train_bn_stats(dummy, fw.randn(8, 1, 8, 8))
    dummy.eval()
    x, t = fw.randn(2, 1, 8, 8), fw.rand(2)
    path = str(tmp_path / "dummy.onnx")
    fw.onnx.export(dummy, (x, t), path, input_names=["x", "t"], output_names=["eps"],
                   dynamic_axes={"x": {0: "batch"}, "t": {0: "batch"}, "eps": {0: "batch"}})
    x2 = fw.randn(3, 1, 8, 8)
    sess = ort.InferenceSession(path)
    feeds = {i.name: v for i, v in zip(sess.get_inputs(), [x2.numpy(), fw.rand(3).numpy()])}
    (got,) = sess.run(["eps"], feeds)
    with fw.no_grad():
        np.testing.assert_allclose(got, dummy(x2, None).numpy(), rtol=1e-4, atol=1e-5)

    unet = NaiveUnet(3, 3, n_feat=8).eval()
    x, t = fw.randn(2, 3, 32, 32), fw.rand(2, 1)
    path = str(tmp_path / "unet.onnx")
    fw.onnx.export(unet, (x, t), path, input_names=["x", "t"], output_names=["eps"])
    (got,) = ort.InferenceSession(path).run(["eps"], {"x": x.numpy(), "t": t.numpy()})
    with fw.no_grad():
        np.testing.assert_allclose(got, unet(x, t).numpy(), rtol=1e-4, atol=1e-4)


def _train_bn_stats(model, x):
    model.train()
    with fw.no_grad():
        model(x, None)


def test_naive_unet_gradcheck_float64():
    """GroupNorm, MaxPool2d, AvgPool2d, ConvTranspose2d and the sine time embedding, through
    offsets on a patch of the input, on the time and on a patch of up0's weight."""
    fw.manual_seed(0)
    unet = NaiveUnet(1, 1, n_feat=8).double()
    x = fw.randn(1, 1, 32, 32, dtype=fw.float64)
    t = fw.tensor([[0.3]], dtype=fw.float64)
    w = unet.up0[0].weight

    def f(dx, dt, dw):
        return fw.func.functional_call(unet, {"up0.0.weight": w + F.pad(dw, (0, 2, 0, 2, 0, 15, 0, 15))},
                                       (x + F.pad(dx, (0, 30, 0, 30)), t + dt))

    args = (0.1 * fw.randn(1, 1, 2, 2, dtype=fw.float64), fw.zeros(1, 1, dtype=fw.float64),
            0.01 * fw.randn(1, 1, 2, 2, dtype=fw.float64))
    args = tuple(a.requires_grad_() for a in args)
    assert fw.autograd.gradcheck(f, args, eps=1e-6, atol=1e-4)


def test_train_cifar10_trains_saves_and_resumes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the script saves ./ddpm_cifar.pth
    fw.manual_seed(0)
    data = _images(8, 3, 32)
    pth = str(tmp_path / "ddpm_cifar.pth")
    ddpm, losses = train_cifar10(n_epoch=1, device="cpu", dataset=data, n_feat=8, n_T=3,
                                 batch_size=4)
    assert len(losses) == 2 and all(np.isfinite(losses))
    assert os.path.exists("ddpm_cifar.pth")
    fw.save(ddpm.state_dict(), pth)
    again, _ = train_cifar10(n_epoch=0, device="cpu", load_pth=pth, dataset=data, n_feat=8, n_T=3)
    for k, v in ddpm.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[k].numpy(), v.numpy(), err_msg=k)
    # the package DDPM's t is U{1..n_T} and reaches the eps model as a float tensor
    seen = []
    again.eps_model.register_forward_hook(lambda m, inp, out: seen.append(inp[1]))
    fw.manual_seed(2)
    again(fw.stack([data[i][0] for i in range(8)]))
    assert seen[0].dtype == fw.float32 and seen[0].shape == (8,)
    assert set(np.round(seen[0].numpy() * 3).astype(int)) <= {1, 2, 3}
