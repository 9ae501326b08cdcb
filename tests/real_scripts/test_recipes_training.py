"""pytorch/tutorials ``recipes_source/recipes``: ``amp_recipe.py``,
``zeroing_out_gradients.py``, ``defining_a_neural_network.py`` and the CPU snippets of
``tuning_guide.py`` on fw (imports renamed).

The AMP recipe needs a CUDA card; here it runs its CPU branch (``device = 'cpu'``, the
recipe's own fallback), so ``.cuda()`` becomes ``.to(device)``, the ``torch.cuda`` timing
calls are left out and the sizes are tiny. CIFAR10 / MNIST are small synthetic sets of the
right shapes.
"""

import gc
import time

import numpy as np
import pytest

import framework as torch
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim
from framework.utils.data import DataLoader, TensorDataset

from ._checks import assert_compiled_matches_eager, assert_onnx_export_matches


# -- amp_recipe.py ------------------------------------------------------------------------
def make_model(in_size, out_size, num_layers, device="cpu"):
    layers = []
    for _ in range(num_layers - 1):
        layers.append(torch.nn.Linear(in_size, in_size))
        layers.append(torch.nn.ReLU())
    layers.append(torch.nn.Linear(in_size, out_size))
    return torch.nn.Sequential(*tuple(layers)).to(device)  # recipe: .cuda()


batch_size, in_size, out_size, num_layers, num_batches, epochs = 16, 32, 32, 3, 4, 3


def _amp_data():
    torch.manual_seed(0)
    w = torch.randn(in_size, out_size) / in_size ** 0.5
    data = [torch.randn(batch_size, in_size) for _ in range(num_batches)]
    targets = [d @ w for d in data]  # a learnable target (the recipe: randn)
    return data, targets


def test_amp_default_precision_then_autocast_dtypes():
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    data, targets = _amp_data()
    loss_fn = torch.nn.MSELoss().to(device)  # recipe: .cuda()
    torch.manual_seed(1)
    net = make_model(in_size, out_size, num_layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    gc.collect()
    start_time = time.time()
    losses = []
    for epoch in range(epochs):
        for input, target in zip(data, targets):
            output = net(input)
            loss = loss_fn(output, target)
            loss.backward()
            opt.step()
            opt.zero_grad()  # set_to_none=True here can modestly improve performance
            losses.append(loss.item())
    assert time.time() >= start_time
    assert losses[-1] < losses[0]

    for input, target in zip(data, targets):
        # Runs the forward pass under ``autocast``.
        with torch.autocast(device_type=device, dtype=torch.float16):
            output = net(input)
            # output is float16 because linear layers ``autocast`` to float16.
            assert output.dtype is torch.float16
            loss = loss_fn(output, target)
            # loss is float32 because ``mse_loss`` layers ``autocast`` to float32.
            assert loss.dtype is torch.float32
        loss.backward()
        assert all(p.grad.dtype is torch.float32 for p in net.parameters())
        opt.step()
        opt.zero_grad()


def _amp_loop(use_amp, clip=None, steps=None):
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    data, targets = _amp_data()
    loss_fn = torch.nn.MSELoss()
    torch.manual_seed(1)
    net = make_model(in_size, out_size, num_layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)  # recipe: lr=0.001
    scaler = torch.amp.GradScaler(device, enabled=use_amp)
    losses = []
    for epoch in range(epochs):
        for input, target in zip(data, targets):
            with torch.autocast(device_type=device, dtype=torch.float16, enabled=use_amp):
                output = net(input)
                loss = loss_fn(output, target)
            scaler.scale(loss).backward()
            if clip is not None:
                # Unscales the gradients of optimizer's assigned parameters in-place
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=clip)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad()  # set_to_none=True here can modestly improve performance
            losses.append(loss.item())
    return net, opt, scaler, losses


def test_amp_all_together_trains_and_tracks_fp32_run():
    _, _, scaler, amp_losses = _amp_loop(True)
    _, _, off, fp32_losses = _amp_loop(False)
    assert amp_losses[-1] < 0.95 * amp_losses[0]
    # float16 forward, float32 master weights: close to the float32 run
    np.testing.assert_allclose(amp_losses, fp32_losses, rtol=2e-2, atol=1e-3)
    assert scaler.get_scale() == 2.0 ** 16 and not off.is_enabled()


def test_amp_cuda_amp_spelling_is_the_same_scaler():
    # ``torch.cuda.amp.GradScaler()``: PyTorch warns and disables it without a CUDA card
    with pytest.warns(UserWarning):
        scaler = torch.cuda.amp.GradScaler()
    assert not scaler.is_enabled()


def test_amp_unscale_then_clip_grad_norm():
    data, targets = _amp_data()
    torch.manual_seed(1)
    net = make_model(in_size, out_size, num_layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    with torch.autocast(device_type="cpu", dtype=torch.float16):
        loss = torch.nn.MSELoss()(net(data[0]), targets[0])
    scaler.scale(loss).backward()
    scaled = [p.grad.numpy().copy() for p in net.parameters()]
    scaler.unscale_(opt)
    for p, g in zip(net.parameters(), scaled):
        np.testing.assert_allclose(p.grad.numpy(), g / 1024.0, rtol=1e-6)
    total = torch.nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.1)
    want = np.sqrt(sum((g / 1024.0).astype(np.float64).__pow__(2).sum() for g in scaled))
    np.testing.assert_allclose(total.item(), want, rtol=1e-5)
    norm = np.sqrt(sum((p.grad.numpy().astype(np.float64) ** 2).sum()
                       for p in net.parameters()))
    np.testing.assert_allclose(norm, 0.1, rtol=1e-4)
    before = [p.detach().numpy().copy() for p in net.parameters()]
    scaler.step(opt)
    scaler.update()
    for p, b in zip(net.parameters(), before):
        np.testing.assert_allclose(p.detach().numpy(), b - 0.05 * p.grad.numpy(), rtol=1e-5,
                                   atol=1e-7)
    # the whole clipping loop trains too
    _, _, _, losses = _amp_loop(True, clip=1.0)
    assert losses[-1] < losses[0]


def test_amp_saving_resuming_is_bitwise(tmp_path):
    net, opt, scaler, _ = _amp_loop(True)
    scaler.update(4096.0)  # a non-default scale, so that loading it is visible
    checkpoint = {"model": net.state_dict(),
                  "optimizer": opt.state_dict(),
                  "scaler": scaler.state_dict()}
    torch.save(checkpoint, tmp_path / "filename")
    checkpoint = torch.load(tmp_path / "filename")
    torch.manual_seed(5)
    net2 = make_model(in_size, out_size, num_layers)
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.05)
    scaler2 = torch.amp.GradScaler("cpu")
    net2.load_state_dict(checkpoint["model"])
    opt2.load_state_dict(checkpoint["optimizer"])
    scaler2.load_state_dict(checkpoint["scaler"])
    assert scaler2.get_scale() == 4096.0
    assert scaler2.state_dict() == scaler.state_dict()
    data, targets = _amp_data()
    for n, o, s in ((net, opt, scaler), (net2, opt2, scaler2)):
        with torch.autocast(device_type="cpu", dtype=torch.float16):
            loss = torch.nn.MSELoss()(n(data[0]), targets[0])
        s.scale(loss).backward()
        s.step(o)
        s.update()
    for a, b in zip(net.parameters(), net2.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


# -- zeroing_out_gradients.py -------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        x = self.fc3(x)
        return x


def _cifar_like(n=16):
    g = np.random.default_rng(0)
    labels = g.integers(0, 10, n)
    images = g.uniform(0, 1, (n, 3, 32, 32)).astype(np.float32)
    images[np.arange(n), labels % 3, :, :] += 0.5 * (labels[:, None, None] / 10.0)
    images = (images - 0.5) / 0.5  # transforms.Normalize((0.5,) * 3, (0.5,) * 3)
    return TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))


def test_zeroing_out_gradients_training_loop():
    torch.manual_seed(0)
    trainloader = DataLoader(_cifar_like(), batch_size=4, shuffle=True, num_workers=0)
    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)  # recipe: lr=0.001
    epoch_losses = []
    for epoch in range(4):  # loop over the dataset multiple times
        running_loss = 0.0
        for i, data in enumerate(trainloader, 0):
            # get the inputs; data is a list of [inputs, labels]
            inputs, labels = data
            # zero the parameter gradients
            optimizer.zero_grad()
            # forward + backward + optimize
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            # print statistics
            running_loss += loss.item()
        epoch_losses.append(running_loss)
    assert epoch_losses[-1] < epoch_losses[0]


def test_zero_grad_versus_accumulation():
    torch.manual_seed(0)
    net = Net()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    x, y = _cifar_like(4).tensors
    nn.CrossEntropyLoss()(net(x), y).backward()
    once = [p.grad.numpy().copy() for p in net.parameters()]
    nn.CrossEntropyLoss()(net(x), y).backward()  # gradients accumulate
    for p, g in zip(net.parameters(), once):
        np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-5, atol=1e-7)
    optimizer.zero_grad()  # set_to_none=True by default, as PyTorch >= 2.0
    assert all(p.grad is None for p in net.parameters())
    nn.CrossEntropyLoss()(net(x), y).backward()
    net.zero_grad(set_to_none=False)  # "You can also use model.zero_grad()"
    assert all(p.grad is not None and not p.grad.numpy().any() for p in net.parameters())


def test_zeroing_compiled_step_matches_eager():
    x, y = _cifar_like(8).tensors

    def run(compiled):
        torch.manual_seed(0)
        net = Net()
        criterion = nn.CrossEntropyLoss()
        optimizer = optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

        def step(inputs, labels):
            optimizer.zero_grad()
            outputs = net(inputs)
            loss = criterion(outputs, labels)
            loss.backward()
            optimizer.step()
            return loss
        fn = torch.compile(step, mode="always") if compiled else step
        losses = [fn(x, y).item() for _ in range(4)]
        return losses, [p.detach().numpy().copy() for p in net.parameters()], fn

    assert_compiled_matches_eager(run, eager_reason=None, captures=1, num_recompiles=0)


# -- defining_a_neural_network.py ---------------------------------------------------------
class MnistNet(nn.Module):
    def __init__(self):
        super(MnistNet, self).__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout2d(0.25)
        self.dropout2 = nn.Dropout2d(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    # x represents our data
    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.dropout2(x)
        x = self.fc2(x)
        output = F.log_softmax(x, dim=1)
        return output


def test_defining_a_neural_network():
    torch.manual_seed(0)
    my_nn = MnistNet()
    text = str(my_nn)
    assert "(conv1): Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1))" in text
    assert "(dropout1): Dropout2d(p=0.25, inplace=False)" in text
    assert "(fc1): Linear(in_features=9216, out_features=128, bias=True)" in text
    # Equates to one random 28x28 image
    random_data = torch.rand((1, 1, 28, 28))
    result = my_nn(random_data)
    assert result.shape == (1, 10)
    np.testing.assert_allclose(np.exp(result.detach().numpy()).sum(), 1.0, rtol=1e-5)
    my_nn.eval()
    with torch.no_grad():
        a, b = my_nn(random_data), my_nn(random_data)
    np.testing.assert_array_equal(a.numpy(), b.numpy())  # dropout off in eval mode


def test_dropout2d_zeroes_whole_channels_in_a_flattened_net():
    # Dropout2d on the (N, C, H, W) map drops whole channels, scaled by 1 / (1 - p)
    torch.manual_seed(0)
    d = nn.Dropout2d(0.5)
    x = torch.ones(2, 64, 3, 3)
    y = d(x).numpy()
    per_channel = y.reshape(2, 64, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0 < (per_channel == 0).all(-1).sum() < 128


def test_defining_a_neural_network_onnx(tmp_path):
    torch.manual_seed(0)
    my_nn = MnistNet().eval()
    x = torch.rand((2, 1, 28, 28))
    assert_onnx_export_matches(my_nn, x, tmp_path / "net.onnx")


# -- tuning_guide.py (CPU-relevant snippets) ----------------------------------------------
def test_tuning_guide_cpu_snippets():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 6 * 6, 4))
    x = torch.randn(2, 3, 8, 8)
    # "Disable gradient calculation for validation or inference"
    model.eval()
    with torch.no_grad():
        want = model(x)
    with torch.inference_mode():
        got = model(x)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    # "Disable bias for convolutions directly followed by a batch norm"
    assert model[0].bias is None
    # "Use parameter.grad = None instead of model.zero_grad() or optimizer.zero_grad()"
    model.train()
    model(x).sum().backward()
    for param in model.parameters():
        param.grad = None
    assert all(p.grad is None for p in model.parameters())
    # "Fuse operations": a pointwise function under torch.compile
    @torch.compile
    def gelu(x):
        return x * 0.5 * (1.0 + torch.erf(x / 1.41421))
    y = torch.randn(16)
    np.testing.assert_allclose(gelu(y).numpy(), F.gelu(y).numpy(), rtol=1e-4, atol=1e-5)
    # "Utilize Non-Uniform Memory Access" / threads: torch.set_num_threads
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    assert torch.get_num_threads() == 1
    torch.set_num_threads(n)
    model.eval()
    with torch.no_grad():
        want = model(x)  # the train-mode forward above moved BatchNorm's running stats
    # "Use channels_last memory format for CNN models"
    x_cl = x.to(memory_format=torch.channels_last)  # Replace x with the input tensor
    model = model.to(memory_format=torch.channels_last)
    assert x_cl.is_contiguous(memory_format=torch.channels_last)
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        np.testing.assert_allclose(model(x_cl).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    # "Use oneDNN Graph with TorchScript for inference": torch.jit.trace + freeze
    with torch.no_grad():
        traced = torch.jit.trace(model, (x,))
        # GAP: no fw.jit.freeze (the recipe's next line: traced = torch.jit.freeze(traced))
        np.testing.assert_allclose(traced(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    # "Enable cuDNN auto-tuner" is a flag that CPU code may set too
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.benchmark = False
    # "Avoid unnecessary CPU-GPU synchronization": explicit device in constructors
    t = torch.rand(2, 2, device=torch.device('cpu'))
    assert t.device.type == "cpu"
