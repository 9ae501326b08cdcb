"""pytorch/tutorials ``intermediate_source/spatial_transformer_tutorial.py`` ported to ``fw``
with only the imports changed.

Kept: ``Net`` with its localization network, the ``fc_loc`` regressor initialised to the
identity transform (``weight.data.zero_()`` / ``bias.data.copy_(...)``, and the older
revision's ``weight.data.fill_(0)`` / ``bias.data = torch.FloatTensor(...)``), ``stn`` with
``F.affine_grid`` + ``F.grid_sample``, SGD(lr=0.01), ``train`` / ``test`` (``size_average=False``,
``pred.eq(target.view_as(pred))``) and ``convert_image_np``.

Replaced: MNIST by synthetic 28x28 patterns (tests/real_scripts/_mnist_like.py);
``torchvision.utils.make_grid`` (plotting only) is not ported.
"""
# ruff: noqa: UP008, UP031, UP032  (the original's lines are kept as written)

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim

from ._checks import assert_compiled_matches_eager
from ._mnist_like import SyntheticMNIST

torch = fw  # the tutorial's ``torch.xxx`` calls read as ``fw.xxx``
device = torch.device("cpu")


class Net(nn.Module):
    def __init__(self, legacy_init=False):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

        # Spatial transformer localization-network
        self.localization = nn.Sequential(
            nn.Conv2d(1, 8, kernel_size=7),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True),
            nn.Conv2d(8, 10, kernel_size=5),
            nn.MaxPool2d(2, stride=2),
            nn.ReLU(True)
        )

        # Regressor for the 3 * 2 affine matrix
        self.fc_loc = nn.Sequential(
            nn.Linear(10 * 3 * 3, 32),
            nn.ReLU(True),
            nn.Linear(32, 3 * 2)
        )

        # Initialize the weights/bias with identity transformation
        if legacy_init:  # the tutorial's first revision
            self.fc_loc[2].weight.data.fill_(0)
            self.fc_loc[2].bias.data = torch.FloatTensor([1, 0, 0, 0, 1, 0])
        else:
            self.fc_loc[2].weight.data.zero_()
            self.fc_loc[2].bias.data.copy_(torch.tensor([1, 0, 0, 0, 1, 0], dtype=torch.float))

    # Spatial transformer network forward function
    def stn(self, x):
        xs = self.localization(x)
        xs = xs.view(-1, 10 * 3 * 3)
        theta = self.fc_loc(xs)
        theta = theta.view(-1, 2, 3)

        grid = F.affine_grid(theta, x.size())
        x = F.grid_sample(x, grid)

        return x

    def forward(self, x):
        # transform the input
        x = self.stn(x)

        # Perform the usual forward pass
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def train(epoch, model, optimizer, train_loader):
    model.train()
    losses = []
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)

        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % 500 == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
    return losses


def test(model, test_loader):
    with torch.no_grad():
        model.eval()
        test_loss = 0
        correct = 0
        for data, target in test_loader:
            data, target = data.to(device), target.to(device)
            output = model(data)

            # sum up batch loss
            test_loss += F.nll_loss(output, target, size_average=False).item()
            # get the index of the max log-probability
            pred = output.max(1, keepdim=True)[1]
            correct += pred.eq(target.view_as(pred)).sum().item()

        test_loss /= len(test_loader.dataset)
        print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'
              .format(test_loss, correct, len(test_loader.dataset),
                      100. * correct / len(test_loader.dataset)))
    return test_loss, correct


test.__test__ = False  # the tutorial's name; not a pytest test


def convert_image_np(inp):
    """Convert a Tensor to numpy image."""
    inp = inp.numpy().transpose((1, 2, 0))
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    inp = std * inp + mean
    inp = np.clip(inp, 0, 1)
    return inp


def _loader(n, seed, shuffle=True):
    return torch.utils.data.DataLoader(SyntheticMNIST(n, seed=seed), batch_size=16,
                                       shuffle=shuffle, num_workers=0)


@pytest.mark.parametrize("legacy_init", [False, True])
def test_identity_initialised_stn_returns_its_input(legacy_init):
    torch.manual_seed(0)
    model = Net(legacy_init=legacy_init)
    assert model.fc_loc[2].bias.requires_grad and model.fc_loc[2].bias.is_leaf
    assert isinstance(model.fc_loc[2].bias, nn.Parameter)
    np.testing.assert_array_equal(model.fc_loc[2].bias.detach().numpy(), [1, 0, 0, 0, 1, 0])
    x = next(iter(_loader(8, 0)))[0]
    with torch.no_grad():
        np.testing.assert_allclose(model.stn(x).numpy(), x.numpy(), rtol=1e-5, atol=1e-5)
    # the identity bias is trained: it is among the parameters the optimizer sees
    assert any(p is model.fc_loc[2].bias for p in model.parameters())


def _bilinear_ref(img, theta, out_hw):
    """affine_grid + grid_sample (bilinear, zeros, align_corners=False) in NumPy."""
    h, w = img.shape
    ho, wo = out_hw
    ys = (2 * np.arange(ho) + 1) / ho - 1
    xs = (2 * np.arange(wo) + 1) / wo - 1
    out = np.zeros((ho, wo))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            gx, gy = theta @ np.array([x, y, 1.0])
            px, py = ((gx + 1) * w - 1) / 2, ((gy + 1) * h - 1) / 2
            x0, y0 = int(np.floor(px)), int(np.floor(py))
            for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
                for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        out[i, j] += wy * wx * img[yy, xx]
    return out


def test_affine_grid_and_grid_sample_match_numpy():
    rng = np.random.default_rng(0)
    img = rng.standard_normal((1, 1, 6, 7))
    a = 0.4
    theta = np.array([[[0.9 * np.cos(a), -np.sin(a), 0.1], [np.sin(a), 1.1 * np.cos(a), -0.2]]])
    t = torch.tensor(theta, dtype=torch.float32)
    grid = F.affine_grid(t, torch.Size((1, 1, 5, 4)))
    assert grid.shape == (1, 5, 4, 2)
    out = F.grid_sample(torch.tensor(img, dtype=torch.float32), grid)
    np.testing.assert_allclose(out.numpy()[0, 0], _bilinear_ref(img[0, 0], theta[0], (5, 4)),
                               rtol=1e-5, atol=1e-5)


def test_training_lowers_loss_and_moves_theta():
    torch.manual_seed(1)
    model = Net().to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    train_loader, test_loader = _loader(64, 0), _loader(32, 1)
    loss0, _ = test(model, test_loader)
    losses = []
    for epoch in range(1, 20 + 1):
        losses += train(epoch, model, optimizer, train_loader)
    loss1, correct = test(model, test_loader)
    assert loss1 < 0.8 * loss0, (loss0, loss1)
    assert np.mean(losses[-4:]) < np.mean(losses[:4]), losses
    bias = model.fc_loc[2].bias.detach().numpy()
    assert not np.array_equal(bias, [1, 0, 0, 0, 1, 0])  # the transform learns too
    with torch.no_grad():
        data = next(iter(test_loader))[0].to(device)
        input_tensor = data.cpu()
        transformed_input_tensor = model.stn(data).cpu()
    assert transformed_input_tensor.shape == input_tensor.shape
    img = convert_image_np(transformed_input_tensor[0].expand(3, 28, 28))
    assert img.shape == (28, 28, 3) and 0 <= img.min() and img.max() <= 1


def _steps(compiled, n=4):
    torch.manual_seed(1)
    model = Net()
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    model.train()

    def step(data, target):
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    batches = list(_loader(16 * n, 0, shuffle=False))
    torch.manual_seed(2)  # the dropout masks: one stream for eager and compiled
    losses = [fn(d, t).item() for d, t in batches]
    return losses, [p.detach().numpy().copy() for p in model.parameters()], fn


def test_compiled_train_step_matches_eager_and_compiles_once():
    assert_compiled_matches_eager(_steps, eager_reason=None, captures=1, num_recompiles=0,
                                  min_cache_hits=2)


def test_stn_gradcheck_float64():
    """grid_sample's gradient w.r.t. the image and the grid, and affine_grid's w.r.t.
    theta, against finite differences."""
    torch.manual_seed(0)
    x = torch.randn(2, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    # a random (not a round) transform: no sample lands exactly on a pixel, where the
    # bilinear sampler has a kink that central differences straddle
    eye = torch.tensor([[1., 0., 0.], [0., 1., 0.]], dtype=torch.float64)
    theta = (eye + 0.2 * torch.randn(2, 2, 3, dtype=torch.float64)).requires_grad_()

    def f(x, theta):
        grid = F.affine_grid(theta, x.size())
        return F.grid_sample(x, grid)

    assert fw.autograd.gradcheck(f, (x, theta), eps=1e-6, atol=1e-5)


def test_onnx_export_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = Net().eval()
    with torch.no_grad():  # a non-identity transform, so the sampler really interpolates
        model.fc_loc[2].weight.normal_(0, 0.01)
    x = next(iter(_loader(4, 2)))[0]
    path = str(tmp_path / "stn.onnx")
    fw.onnx.export(model, x, path, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    with torch.no_grad():
        want = model(x).numpy()
    (got,) = ort.InferenceSession(path).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    (got,) = ort.InferenceSession(path).run(None, {"x": x.numpy()[:3]})
    np.testing.assert_allclose(got, want[:3], rtol=1e-4, atol=1e-5)
