"""pytorch/examples dcgan/main.py ported to ``fw`` with only the imports changed.

The architecture is the original's (five (transposed) convolutions, so the image size is
fixed at 64x64 by the layer stack); only the widths are tiny (nz=8, ngf=ndf=4) and the
dataset is a few synthetic 3x64x64 images in [-1, 1]. weights_init, BCELoss, the two Adam
optimizers with betas, ``.detach()``, ``label.fill_`` and the alternating D/G updates are
the original's code.
"""

import numpy as np
import pytest

import framework as fw
import framework.backends.cudnn as cudnn  # noqa: F401  (the script sets cudnn.benchmark)
import framework.nn as nn
import framework.nn.parallel  # noqa: F401
import framework.optim as optim
import framework.utils.data

torch = fw  # the script's ``torch.xxx`` calls read as ``fw.xxx``

nz, ngf, ndf, nc = 8, 4, 4, 3
ngpu = 1
lr, beta1 = 0.0002, 0.5


# custom weights initialization called on netG and netD
def weights_init(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        torch.nn.init.normal_(m.weight, 0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        torch.nn.init.normal_(m.weight, 1.0, 0.02)
        torch.nn.init.zeros_(m.bias)


# the same, as older versions of the example (and many user scripts) write it
def weights_init_data(m):
    classname = m.__class__.__name__
    if classname.find('Conv') != -1:
        m.weight.data.normal_(0.0, 0.02)
    elif classname.find('BatchNorm') != -1:
        m.weight.data.normal_(1.0, 0.02)
        m.bias.data.fill_(0)


class Generator(nn.Module):
    def __init__(self, ngpu):
        super(Generator, self).__init__()  # noqa: UP008  (verbatim)
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is Z, going into a convolution
            nn.ConvTranspose2d(     nz, ngf * 8, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            # state size. (ngf*8) x 4 x 4
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            # state size. (ngf*4) x 8 x 8
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            # state size. (ngf*2) x 16 x 16
            nn.ConvTranspose2d(ngf * 2,     ngf, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            # state size. (ngf) x 32 x 32
            nn.ConvTranspose2d(    ngf,      nc, 4, 2, 1, bias=False),
            nn.Tanh()
            # state size. (nc) x 64 x 64
        )

    def forward(self, input):

        if (input.is_cuda or input.is_xpu) and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)
        return output


class Discriminator(nn.Module):
    def __init__(self, ngpu):
        super(Discriminator, self).__init__()  # noqa: UP008  (verbatim)
        self.ngpu = ngpu
        self.main = nn.Sequential(
            # input is (nc) x 64 x 64
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf) x 32 x 32
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 2),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*2) x 16 x 16
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 4),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*4) x 8 x 8
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2, inplace=True),
            # state size. (ndf*8) x 4 x 4
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
            nn.Sigmoid()
        )

    def forward(self, input):
        if (input.is_cuda or input.is_xpu) and self.ngpu > 1:
            output = nn.parallel.data_parallel(self.main, input, range(self.ngpu))
        else:
            output = self.main(input)

        return output.view(-1, 1).squeeze(1)


def _dataset(n=16, seed=0):
    """Images of one smooth pattern family (a shifted colour gradient), in [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    imgs = []
    for _ in range(n):
        a, b = rng.uniform(0.5, 1.5, size=2)
        imgs.append(np.stack([np.sin(a * 3 * xx), np.cos(b * 3 * yy), xx * yy * 2 - 1]))
    x = np.stack(imgs).astype(np.float32)
    return torch.utils.data.TensorDataset(fw.tensor(x), fw.zeros(n, dtype=fw.int64))


def _setup(seed=1):
    torch.manual_seed(seed)
    device = torch.device("cpu")
    netG = Generator(ngpu).to(device)
    netG.apply(weights_init)
    netD = Discriminator(ngpu).to(device)
    netD.apply(weights_init)
    criterion = nn.BCELoss()
    optimizerD = optim.Adam(netD.parameters(), lr=lr, betas=(beta1, 0.999))
    optimizerG = optim.Adam(netG.parameters(), lr=lr, betas=(beta1, 0.999))
    return device, netG, netD, criterion, optimizerD, optimizerG


real_label = 1
fake_label = 0


def train_iteration(data, device, netG, netD, criterion, optimizerD, optimizerG):
    """One iteration of the original's inner loop, verbatim."""
    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ###########################
    # train with real
    netD.zero_grad()
    real_cpu = data[0].to(device)
    batch_size = real_cpu.size(0)
    label = torch.full((batch_size,), real_label,
                       dtype=real_cpu.dtype, device=device)

    output = netD(real_cpu)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean().item()

    # train with fake
    noise = torch.randn(batch_size, nz, 1, 1, device=device)
    fake = netG(noise)
    label.fill_(fake_label)
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean().item()
    errD = errD_real + errD_fake
    optimizerD.step()

    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ###########################
    netG.zero_grad()
    label.fill_(real_label)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean().item()
    optimizerG.step()
    return errD.item(), errG.item(), D_x, D_G_z1, D_G_z2


def train_step(real_cpu, device, netG, netD, criterion, optimizerD, optimizerG):
    """``train_iteration`` as one function for ``fw.compile``: the same lines, with the
    ``.item()`` calls (host reads, which end a capture) moved to the caller."""
    netD.zero_grad()
    batch_size = real_cpu.size(0)
    label = torch.full((batch_size,), real_label,
                       dtype=real_cpu.dtype, device=device)

    output = netD(real_cpu)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean()

    noise = torch.randn(batch_size, nz, 1, 1, device=device)
    fake = netG(noise)
    label.fill_(fake_label)
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean()
    errD = errD_real + errD_fake
    optimizerD.step()

    netG.zero_grad()
    label.fill_(real_label)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean()
    optimizerG.step()
    return errD, errG, D_x, D_G_z1, D_G_z2


def step_D(real_cpu, label, noise, netG, netD, criterion, optimizerD):
    """The D update alone (part (1) of the loop), returning ``fake`` for the G update."""
    netD.zero_grad()
    output = netD(real_cpu)
    errD_real = criterion(output, label)
    errD_real.backward()
    D_x = output.mean()
    fake = netG(noise)
    label.fill_(fake_label)
    output = netD(fake.detach())
    errD_fake = criterion(output, label)
    errD_fake.backward()
    D_G_z1 = output.mean()
    errD = errD_real + errD_fake
    optimizerD.step()
    return errD, D_x, D_G_z1, fake


def step_G(fake, label, netG, netD, criterion, optimizerG):
    """The G update alone (part (2)): backward runs through ``fake`` into netG."""
    netG.zero_grad()
    label.fill_(real_label)  # fake labels are real for generator cost
    output = netD(fake)
    errG = criterion(output, label)
    errG.backward()
    D_G_z2 = output.mean()
    optimizerG.step()
    return errG, D_G_z2


def _batches():
    loader = torch.utils.data.DataLoader(_dataset(), batch_size=8, shuffle=True)
    fw.manual_seed(5)  # the shuffle order, identical for every run
    return [data for _ in range(3) for data in loader]


def _params(*nets):
    return [t.detach().numpy().copy() for net in nets for t in net.state_dict().values()]


def test_dcgan_trains_eagerly():
    device, netG, netD, criterion, optimizerD, optimizerG = state = _setup()
    dataloader = torch.utils.data.DataLoader(_dataset(), batch_size=8, shuffle=True)
    hist = []
    for epoch in range(4):
        for i, data in enumerate(dataloader, 0):
            hist.append(train_iteration(data, *state))
    errD = [h[0] for h in hist]
    D_x = [h[2] for h in hist]
    # the discriminator learns to tell the (structured) real images from the generator's
    assert np.mean(errD[-2:]) < 0.85 * np.mean(errD[:2]), errD
    assert np.mean(D_x[-2:]) > np.mean(D_x[:2]) + 0.1, D_x
    assert all(np.isfinite(h).all() for h in hist)
    # the original samples from a fixed noise each 100 iterations
    fixed_noise = torch.randn(8, nz, 1, 1, device=device)
    fake = netG(fixed_noise)
    img = fake.detach()
    assert img.shape == (8, nc, 64, 64) and not img.requires_grad
    assert img.abs().max().item() <= 1.0


def _eager_reference():
    state = _setup()
    torch.manual_seed(9)
    out = [[float(v) for v in train_step(data[0], *state)] for data in _batches()]
    return out, _params(state[1], state[2])


def test_dcgan_compiled_iteration_matches_eager_and_compiles_once():
    want, want_params = _eager_reference()
    state = _setup()
    step = fw.compile(train_step, mode="always")
    torch.manual_seed(9)
    got = [[float(v) for v in step(data[0], *state)] for data in _batches()]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for a, b in zip(_params(state[1], state[2]), want_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    st = step.stats()
    assert st["eager_reason"] is None, st["eager_reason"]
    assert st["captures"] == 1 and st["num_recompiles"] == 0, st["recompiles"]
    # one eager warm-up call creates the Adam state; every later call is compiled code
    assert st["eager_calls"] == 1 and st["cache_hits"] == len(got) - 2


def test_dcgan_split_d_and_g_steps_fall_back_to_eager_with_reasons():
    """Compiled separately, neither step can be compiled code: the D step returns ``fake``
    (which needs grad) after a backward() inside, and the G step's backward() must flow
    through ``fake`` into netG, an autograd history recorded outside it. Both run eagerly
    (said in a warning) and give exactly the eager numbers; before, the G step compiled
    and silently left netG without gradients."""
    want, want_params = _eager_reference()
    device, netG, netD, criterion, optimizerD, optimizerG = _setup()
    cD = fw.compile(step_D, mode="always")
    cG = fw.compile(step_G, mode="always")
    torch.manual_seed(9)
    got = []
    with pytest.warns(UserWarning, match="running eagerly"):
        for data in _batches():
            real_cpu = data[0]
            label = torch.full((real_cpu.size(0),), real_label, dtype=real_cpu.dtype,
                               device=device)
            noise = torch.randn(real_cpu.size(0), nz, 1, 1, device=device)
            errD, D_x, D_G_z1, fake = cD(real_cpu, label, noise, netG, netD, criterion,
                                         optimizerD)
            errG, D_G_z2 = cG(fake, label, netG, netD, criterion, optimizerG)
            got.append([v.item() for v in (errD, errG, D_x, D_G_z1, D_G_z2)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for a, b in zip(_params(netG, netD), want_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert "outputs require grad" in cD.stats()["eager_reason"]
    assert "reaches argument 'fake'" in cG.stats()["eager_reason"]


@pytest.mark.parametrize("init", [weights_init, weights_init_data])
def test_weights_init_via_class_name(init):
    torch.manual_seed(0)
    netD = Discriminator(ngpu)
    netD.apply(init)
    convs = [m for m in netD.modules() if m.__class__.__name__ == "Conv2d"]
    bns = [m for m in netD.modules() if m.__class__.__name__ == "BatchNorm2d"]
    w = np.concatenate([m.weight.detach().numpy().ravel() for m in convs])
    assert len(convs) == 5 and len(bns) == 3
    assert abs(w.mean()) < 0.005 and 0.017 < w.std() < 0.023
    g = np.concatenate([m.weight.detach().numpy() for m in bns])
    assert abs(g.mean() - 1) < 0.02 and 0 < g.std() < 0.04
    for m in bns:
        assert not m.bias.detach().numpy().any() and m.weight.requires_grad


def _conv_transpose_ref(x, w, stride, pad):
    """ConvTranspose2d by scattering each input pixel's kernel-weighted patch."""
    n, cin, h, wd = x.shape
    cout, k = w.shape[1], w.shape[2]
    full = np.zeros((n, cout, (h - 1) * stride + k, (wd - 1) * stride + k))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride:i * stride + k, j * stride:j * stride + k] += \
                np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    return full[:, :, pad:full.shape[2] - pad, pad:full.shape[3] - pad]


def test_generator_layers_match_numpy_and_gradcheck_float64():
    torch.manual_seed(0)
    netG = Generator(ngpu)
    netG.apply(weights_init)
    netG.eval()
    noise = torch.randn(2, nz, 1, 1)
    with torch.no_grad():
        h = noise.numpy().astype(np.float64)
        for m in netG.main:
            name = m.__class__.__name__
            if name == "ConvTranspose2d":
                h = _conv_transpose_ref(h, m.weight.detach().numpy(), m.stride[0], m.padding[0])
            elif name == "BatchNorm2d":
                shape = (1, -1, 1, 1)
                h = (h - m.running_mean.numpy().reshape(shape)) / np.sqrt(
                    m.running_var.numpy().reshape(shape) + m.eps)
                h = (h * m.weight.detach().numpy().reshape(shape)
                     + m.bias.detach().numpy().reshape(shape))
            elif name == "ReLU":
                h = np.maximum(h, 0)
            else:
                h = np.tanh(h)
        np.testing.assert_allclose(netG(noise).numpy(), h, rtol=1e-4, atol=1e-5)
    # train-mode gradients of a tiny D(G(z)) slice against finite differences
    small_g = nn.Sequential(nn.ConvTranspose2d(3, 4, 4, 2, 1, bias=False),
                            nn.BatchNorm2d(4), nn.ReLU(True)).double()
    small_d = nn.Sequential(nn.Conv2d(4, 2, 4, 2, 1, bias=False), nn.BatchNorm2d(2),
                            nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(2, 1, 2, 1, 0),
                            nn.Sigmoid()).double()
    z = torch.randn(3, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda z: nn.BCELoss()(small_d(small_g(z)).view(-1), target), (z,), eps=1e-6,
        atol=1e-5)


def test_dcgan_onnx_export_and_checkpoints(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    device, netG, netD, criterion, optimizerD, optimizerG = state = _setup()
    for data in _batches()[:2]:
        train_iteration(data, *state)
    netG.eval()
    netD.eval()
    noise = torch.randn(4, nz, 1, 1)
    for net, x, name in ((netG, noise, "netG"), (netD, torch.rand(4, nc, 64, 64), "netD")):
        path = str(tmp_path / f"{name}.onnx")
        fw.onnx.export(net, (x,), path, input_names=["x"], output_names=["y"],
                       dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        x2 = fw.cat([x, x[:1] * 0.5])
        (got,) = ort.InferenceSession(path).run(None, {"x": x2.numpy()})
        with torch.no_grad():
            np.testing.assert_allclose(got, net(x2).numpy(), rtol=1e-4, atol=1e-5)
    # do checkpointing, and continue training from it as the --netG / --netD options do
    outf = str(tmp_path)
    epoch = 0
    torch.save(netG.state_dict(), '%s/netG_epoch_%d.pth' % (outf, epoch))  # noqa: UP031
    torch.save(netD.state_dict(), '%s/netD_epoch_%d.pth' % (outf, epoch))  # noqa: UP031
    netG2, netD2 = Generator(ngpu).to(device), Discriminator(ngpu).to(device)
    netG2.load_state_dict(torch.load('%s/netG_epoch_%d.pth' % (outf, epoch)))  # noqa: UP031
    netD2.load_state_dict(torch.load('%s/netD_epoch_%d.pth' % (outf, epoch)))  # noqa: UP031
    netG2.eval()
    netD2.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(netD2(netG2(noise)).numpy(), netD(netG(noise)).numpy())
    assert str(netG).startswith("Generator(") and "ConvTranspose2d(8, 32" in str(netG)
