"""pytorch/examples super_resolution (model.py, main.py, super_resolve.py) ported to ``fw``
with only the imports changed, plus the ONNX export of PyTorch's super-resolution ONNX
tutorial (export_params, opset, do_constant_folding, names, dynamic batch axis, checked in
onnxruntime).

BSD300 is replaced by a few synthetic 24x24 "Y channel" images (smooth random fields); the
network input is the image downscaled by 3 (3x3 box average), as the example's
CenterCrop + Resize(crop // upscale_factor) pipeline makes it.
"""

from math import log10

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.init as init
import framework.optim as optim
from framework.utils.data import DataLoader, TensorDataset

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``


# ---- model.py ---------------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self, upscale_factor):
        super(Net, self).__init__()  # noqa: UP008  (verbatim)

        self.relu = nn.ReLU()
        self.conv1 = nn.Conv2d(1, 64, (5, 5), (1, 1), (2, 2))
        self.conv2 = nn.Conv2d(64, 64, (3, 3), (1, 1), (1, 1))
        self.conv3 = nn.Conv2d(64, 32, (3, 3), (1, 1), (1, 1))
        self.conv4 = nn.Conv2d(32, upscale_factor ** 2, (3, 3), (1, 1), (1, 1))
        self.pixel_shuffle = nn.PixelShuffle(upscale_factor)

        self._initialize_weights()

    def forward(self, x):
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        x = self.relu(self.conv3(x))
        x = self.pixel_shuffle(self.conv4(x))
        return x

    def _initialize_weights(self):
        init.orthogonal_(self.conv1.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv2.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv3.weight, init.calculate_gain('relu'))
        init.orthogonal_(self.conv4.weight)


UPSCALE = 3


# ---- data.py / dataset.py, synthetic ------------------------------------------------------
def _dataset(n, seed, size=24):
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, size=(n, 1, 4, 4))
    # smooth images: bilinear upsampling of a coarse random grid, kept in [0, 1]
    t = np.linspace(0, 3, size)
    i0 = np.minimum(t.astype(int), 2)
    f = t - i0
    rows = coarse[:, :, i0] * (1 - f)[:, None] + coarse[:, :, i0 + 1] * f[:, None]
    target = rows[..., i0] * (1 - f) + rows[..., i0 + 1] * f
    low = target.reshape(n, 1, size // UPSCALE, UPSCALE, size // UPSCALE, UPSCALE)
    low = low.mean(axis=(3, 5))
    return TensorDataset(fw.tensor(low.astype(np.float32)), fw.tensor(target.astype(np.float32)))


def _setup(seed=123, lr=0.01):
    torch.manual_seed(seed)
    device = torch.device("cpu")
    model = Net(upscale_factor=UPSCALE).to(device)
    criterion = nn.MSELoss()
    optimizer = optim.Adam(model.parameters(), lr=lr)
    return device, model, criterion, optimizer


# ---- main.py ----------------------------------------------------------------------------
def train(training_data_loader, device, model, criterion, optimizer):
    epoch_loss = 0
    for iteration, batch in enumerate(training_data_loader, 1):
        input, target = batch[0].to(device), batch[1].to(device)

        optimizer.zero_grad()
        loss = criterion(model(input), target)
        epoch_loss += loss.item()
        loss.backward()
        optimizer.step()
    return epoch_loss / len(training_data_loader)


def evaluate(testing_data_loader, device, model, criterion):
    """The original's ``test()`` (renamed so pytest does not collect it)."""
    avg_psnr = 0
    with torch.no_grad():
        for batch in testing_data_loader:
            input, target = batch[0].to(device), batch[1].to(device)

            prediction = model(input)
            mse = criterion(prediction, target)
            psnr = 10 * log10(1 / mse.item())
            avg_psnr += psnr
    return avg_psnr / len(testing_data_loader)


def test_net_initialization_and_pixel_shuffle():
    torch.manual_seed(0)
    model = Net(UPSCALE)
    gain = np.sqrt(2.0)
    assert init.calculate_gain('relu') == pytest.approx(gain)
    for conv, g in ((model.conv1, gain), (model.conv3, gain), (model.conv4, 1.0)):
        w = conv.weight.detach().numpy().reshape(conv.weight.shape[0], -1)
        rows, cols = w.shape
        gram = w @ w.T if rows <= cols else w.T @ w
        np.testing.assert_allclose(gram, g * g * np.eye(min(rows, cols)), atol=1e-5)
    x = fw.randn(2, 9, 4, 5)
    got = nn.PixelShuffle(3)(x).numpy()
    want = x.numpy().reshape(2, 1, 3, 3, 4, 5).transpose(0, 1, 4, 2, 5, 3).reshape(2, 1, 12, 15)
    np.testing.assert_array_equal(got, want)


def test_super_resolution_trains_and_psnr_improves():
    device, model, criterion, optimizer = _setup(lr=0.003)
    training_data_loader = DataLoader(dataset=_dataset(16, 0), batch_size=4, shuffle=True)
    testing_data_loader = DataLoader(dataset=_dataset(8, 1), batch_size=4, shuffle=False)
    psnr0 = evaluate(testing_data_loader, device, model, criterion)
    losses = [train(training_data_loader, device, model, criterion, optimizer)
              for epoch in range(1, 4)]
    psnr1 = evaluate(testing_data_loader, device, model, criterion)
    assert losses[-1] < 0.5 * losses[0], losses
    assert psnr1 > psnr0 + 3, (psnr0, psnr1)


def _fixed_batches():
    loader = DataLoader(dataset=_dataset(16, 0), batch_size=4, shuffle=True)
    fw.manual_seed(5)
    return [b for _ in range(2) for b in loader]


def test_compiled_training_step_matches_eager_and_compiles_once():
    def run(compiled):
        device, model, criterion, optimizer = _setup(lr=0.003)

        def step(input, target):
            optimizer.zero_grad()
            loss = criterion(model(input), target)
            loss.backward()
            optimizer.step()
            return loss

        f = fw.compile(step, mode="always") if compiled else step
        losses = [f(b[0].to(device), b[1].to(device)).item() for b in _fixed_batches()]
        return losses, model, f

    want, ref, _ = run(False)
    got, model, f = run(True)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    for (n, a), (_, b) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg=n)
    st = f.stats()
    assert st["eager_reason"] is None and st["captures"] == 1
    assert st["num_recompiles"] == 0 and st["cache_hits"] == len(got) - 2


def test_gradcheck_float64_small_net():
    """Conv + ReLU + PixelShuffle + MSE against finite differences: the input image and a
    patch of conv4's weight (padded to the full weight) as the checked variables."""
    torch.manual_seed(0)
    model = Net(2).double()
    x = torch.rand(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    dw4 = (0.01 * torch.randn(1, 2, 3, 3, dtype=torch.float64)).requires_grad_()

    def f(x, dw4):
        h = model.relu(model.conv3(model.relu(model.conv2(model.relu(model.conv1(x))))))
        w4 = model.conv4.weight + nn.functional.pad(dw4, (0, 0, 0, 0, 0, 30, 0, 3))
        out = model.pixel_shuffle(nn.functional.conv2d(h, w4, model.conv4.bias, 1, 1))
        return nn.MSELoss()(out, target)

    assert torch.autograd.gradcheck(f, (x, dw4), eps=1e-6, atol=1e-5)


def test_super_resolve_checkpoint_and_onnx_export(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    device, model, criterion, optimizer = _setup()
    # main.py's checkpoint(epoch)
    epoch = 1
    model_out_path = str(tmp_path / "model_epoch_{}.pth".format(epoch))  # noqa: UP032
    # GAP: the original saves the whole module, torch.save(model, path), and
    # super_resolve.py loads it with torch.load inside torch.serialization.safe_globals([...]);
    # fw.save never pickles (checkpoints are safetensors), so only the state dict is saved.
    torch.save(model.state_dict(), model_out_path)

    # super_resolve.py: load the model, upscale the Y channel of an image
    loaded = Net(upscale_factor=UPSCALE)
    loaded.load_state_dict(torch.load(model_out_path))
    y = np.random.default_rng(3).uniform(0, 255, size=(10, 7)).astype(np.uint8)  # PIL "L"
    img_to_tensor = lambda a: fw.tensor(a[None].astype(np.float32) / 255.0)  # ToTensor()
    input = img_to_tensor(y).view(1, -1, y.shape[0], y.shape[1])
    out = loaded(input)
    out = out.cpu()
    out_img_y = out[0].detach().numpy()
    out_img_y *= 255.0
    out_img_y = out_img_y.clip(0, 255)
    out_img_y = np.uint8(out_img_y[0])
    assert out_img_y.shape == (30, 21)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded(input).numpy(), model(input).numpy())

    # the ONNX tutorial: export in eval mode with a dynamic batch axis, check, run in ORT
    torch_model = loaded
    torch_model.eval()
    batch_size = 1
    x = torch.randn(batch_size, 1, 8, 8, requires_grad=True)
    torch_out = torch_model(x)
    path = str(tmp_path / "super_resolution.onnx")
    # GAP: the tutorial asks for opset_version=10; the exporter lowers to opsets >= 17 only
    # (onnx's version converter has no down-adapters for e.g. Relu 14 -> 13), so 17 here.
    torch.onnx.export(torch_model, x, path, export_params=True, opset_version=17,
                      do_constant_folding=True, input_names=['input'],
                      output_names=['output'],
                      dynamic_axes={'input': {0: 'batch_size'}, 'output': {0: 'batch_size'}})
    onnx_model = onnx.load(path)
    onnx.checker.check_model(onnx_model)
    ort_session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])

    def to_numpy(tensor):
        return tensor.detach().cpu().numpy() if tensor.requires_grad else tensor.cpu().numpy()

    ort_inputs = {ort_session.get_inputs()[0].name: to_numpy(x)}
    ort_outs = ort_session.run(None, ort_inputs)
    np.testing.assert_allclose(to_numpy(torch_out), ort_outs[0], rtol=1e-03, atol=1e-05)
    x3 = torch.randn(3, 1, 8, 8)
    (out3,) = ort_session.run(None, {"input": x3.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(out3, torch_model(x3).numpy(), rtol=1e-4, atol=1e-5)
