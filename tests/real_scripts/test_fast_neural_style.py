"""pytorch/examples fast_neural_style (neural_style/transformer_net.py, utils.py and the
training / stylize code of neural_style.py) ported to ``fw`` with only the imports changed.

Replaced: the VGG16 loss network (torchvision weights) by :class:`TinyLossNet`, two small
frozen conv slices returning the same kind of namedtuple; the image folder and PIL
loading by random images in [0, 255]. ``TransformerNet`` takes its channel widths and
number of residual blocks as arguments (the defaults are the original's) so the training
tests run on a narrow copy; the full-size net is exported to ONNX and stylizes once.
"""
# ruff: noqa: UP008  (the original's lines are kept as written)

import re
from collections import namedtuple

import numpy as np
import pytest

import framework as fw
from framework.optim import Adam

from ._checks import assert_params_close, assert_stats

torch = fw  # the scripts' ``torch.xxx`` calls read as ``fw.xxx``


# -- transformer_net.py ----------------------------------------------------------------
class TransformerNet(torch.nn.Module):
    def __init__(self, ch=(32, 64, 128), n_res=5):
        super(TransformerNet, self).__init__()
        c1, c2, c3 = ch
        # Initial convolution layers
        self.conv1 = ConvLayer(3, c1, kernel_size=9, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(c1, affine=True)
        self.conv2 = ConvLayer(c1, c2, kernel_size=3, stride=2)
        self.in2 = torch.nn.InstanceNorm2d(c2, affine=True)
        self.conv3 = ConvLayer(c2, c3, kernel_size=3, stride=2)
        self.in3 = torch.nn.InstanceNorm2d(c3, affine=True)
        # Residual layers
        self.n_res = n_res
        for i in range(n_res):  # res1 ... res5
            setattr(self, f"res{i + 1}", ResidualBlock(c3))
        # Upsampling Layers
        self.deconv1 = UpsampleConvLayer(c3, c2, kernel_size=3, stride=1, upsample=2)
        self.in4 = torch.nn.InstanceNorm2d(c2, affine=True)
        self.deconv2 = UpsampleConvLayer(c2, c1, kernel_size=3, stride=1, upsample=2)
        self.in5 = torch.nn.InstanceNorm2d(c1, affine=True)
        self.deconv3 = ConvLayer(c1, 3, kernel_size=9, stride=1)
        # Non-linearities
        self.relu = torch.nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for i in range(self.n_res):  # y = self.res1(y) ... y = self.res5(y)
            y = getattr(self, f"res{i + 1}")(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        y = self.deconv3(y)
        return y


class ConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super(ConvLayer, self).__init__()
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        out = self.reflection_pad(x)
        out = self.conv2d(out)
        return out


class ResidualBlock(torch.nn.Module):
    def __init__(self, channels):
        super(ResidualBlock, self).__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        out = out + residual
        return out


class UpsampleConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super(UpsampleConvLayer, self).__init__()
        self.upsample = upsample
        reflection_padding = kernel_size // 2
        self.reflection_pad = torch.nn.ReflectionPad2d(reflection_padding)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        x_in = x
        if self.upsample:
            x_in = torch.nn.functional.interpolate(x_in, mode='nearest', scale_factor=self.upsample)
        out = self.reflection_pad(x_in)
        out = self.conv2d(out)
        return out


# -- utils.py ------------------------------------------------------------------------------
def gram_matrix(y):
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    gram = features.bmm(features_t) / (ch * h * w)
    return gram


def normalize_batch(batch):
    # normalize using imagenet mean and std
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


def save_image_array(data):
    """utils.save_image up to the PIL call: the uint8 HWC array it would write."""
    img = data.clone().clamp(0, 255).numpy()
    img = img.transpose(1, 2, 0).astype("uint8")
    return img


# -- the loss network (stands in for vgg.Vgg16) -------------------------------------------
class TinyLossNet(torch.nn.Module):
    """Two frozen slices (conv-relu, pool-conv-relu) returning a namedtuple, as Vgg16."""

    def __init__(self, requires_grad=False):
        super().__init__()
        self.slice1 = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
        self.slice2 = torch.nn.Sequential(torch.nn.MaxPool2d(2, 2),
                                          torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.ReLU())
        if not requires_grad:
            for param in self.parameters():
                param.requires_grad = False

    def forward(self, X):
        h = self.slice1(X)
        h_relu1_2 = h
        h = self.slice2(h)
        h_relu2_2 = h
        vgg_outputs = namedtuple("VggOutputs", ['relu1_2', 'relu2_2'])
        return vgg_outputs(h_relu1_2, h_relu2_2)


# -- neural_style.py train(), one batch per step --------------------------------------------
args = namedtuple("Args", "content_weight style_weight lr batch_size")(1e5, 1e10, 1e-2, 2)


def _setup(seed=42):
    np.random.seed(seed)
    torch.manual_seed(seed)
    transformer = TransformerNet(ch=(4, 8, 8), n_res=2)
    optimizer = Adam(transformer.parameters(), args.lr)
    mse_loss = torch.nn.MSELoss()
    vgg = TinyLossNet(requires_grad=False)
    style = torch.rand(1, 3, 16, 16).mul(255)
    style = style.repeat(args.batch_size, 1, 1, 1)
    features_style = vgg(normalize_batch(style))
    gram_style = [gram_matrix(y) for y in features_style]

    def train_step(x):
        n_batch = len(x)
        optimizer.zero_grad()

        y = transformer(x)

        y = normalize_batch(y)
        x = normalize_batch(x)

        features_y = vgg(y)
        features_x = vgg(x)

        content_loss = args.content_weight * mse_loss(features_y.relu2_2, features_x.relu2_2)

        style_loss = 0.
        for ft_y, gm_s in zip(features_y, gram_style):
            gm_y = gram_matrix(ft_y)
            style_loss += mse_loss(gm_y, gm_s[:n_batch, :, :])
        style_loss *= args.style_weight

        total_loss = content_loss + style_loss
        total_loss.backward()
        optimizer.step()
        return content_loss, style_loss, total_loss

    return transformer, train_step


def _batches(n=4):
    rng = np.random.RandomState(0)
    return [torch.from_numpy(rng.uniform(0, 255, (2, 3, 16, 16)).astype(np.float32))
            for _ in range(n)]


def test_gram_matrix_and_normalize_batch_match_numpy():
    torch.manual_seed(0)
    y = torch.randn(2, 3, 4, 5)
    g = y.numpy().reshape(2, 3, 20).astype(np.float64)
    want = g @ g.transpose(0, 2, 1) / (3 * 4 * 5)
    np.testing.assert_allclose(gram_matrix(y).numpy(), want, rtol=1e-5, atol=1e-6)
    batch = torch.rand(2, 3, 4, 4) * 255
    raw = batch.numpy().copy()
    out = normalize_batch(batch)
    mean = np.array([0.485, 0.456, 0.406]).reshape(-1, 1, 1)
    std = np.array([0.229, 0.224, 0.225]).reshape(-1, 1, 1)
    np.testing.assert_allclose(out.numpy(), (raw / 255 - mean) / std, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batch.numpy(), raw / 255, rtol=1e-6)  # div_ is in place


def test_instance_norm_upsample_and_reflection_pad_match_numpy():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 3, 4)
    norm = torch.nn.InstanceNorm2d(3, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, 1.5, -1.0]))
        norm.bias.copy_(torch.tensor([0.1, 0.0, 2.0]))
    a = x.numpy().astype(np.float64)
    mu, var = a.mean((2, 3), keepdims=True), a.var((2, 3), keepdims=True)
    want = (a - mu) / np.sqrt(var + 1e-5) * np.array([0.5, 1.5, -1.0])[:, None, None] \
        + np.array([0.1, 0.0, 2.0])[:, None, None]
    for mode in ("train", "eval"):  # no running stats: eval normalizes per instance too
        getattr(norm, mode)()
        np.testing.assert_allclose(norm(x).detach().numpy(), want, rtol=1e-4, atol=1e-5)
    assert not any("running" in k for k in norm.state_dict())
    up = torch.nn.functional.interpolate(x, mode='nearest', scale_factor=2)
    np.testing.assert_array_equal(up.numpy(), a.repeat(2, 2).repeat(2, 3).astype(np.float32))
    pad = torch.nn.ReflectionPad2d(2)(x)
    np.testing.assert_array_equal(pad.numpy(), np.pad(x.numpy(), ((0, 0),) * 2 + ((2, 2),) * 2,
                                                      mode="reflect"))


def test_style_training_lowers_the_loss():
    transformer, train_step = _setup()
    transformer.train()
    totals = []
    for x in _batches(6):
        content, style, total = train_step(x)
        assert np.isclose(total.item(), content.item() + style.item(), rtol=1e-5)
        totals.append(total.item())
    assert totals[-1] < 0.8 * totals[0], totals


def test_compiled_style_step_matches_eager_and_compiles_once():
    results = []
    for compiled in (False, True):
        transformer, train_step = _setup()
        transformer.train()
        step = fw.compile(train_step, mode="always") if compiled else train_step
        batches = _batches()
        losses = [[t.item() for t in step(x)] for x in batches]
        results.append((losses, transformer, step, batches))
    (le, me, _, be), (lc, mc, step, bc) = results
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-5)
    assert_params_close(mc, me)
    for xe, xc in zip(be, bc):  # normalize_batch's div_ reached the caller's batch
        np.testing.assert_allclose(xc.numpy(), xe.numpy(), rtol=1e-6)
        assert xc.numpy().max() <= 1.0
    assert_stats(step, captures=1, num_recompiles=0, eager_reason=None, graph_breaks=[])


def test_blocks_gradcheck_float64():
    """ReflectionPad2d, Conv2d, InstanceNorm2d(affine), nearest upsampling, the residual
    sum and the gram matrix against finite differences."""
    torch.manual_seed(0)
    block = ResidualBlock(2).double()
    up = UpsampleConvLayer(2, 2, kernel_size=3, stride=1, upsample=2).double()
    with torch.no_grad():  # non-trivial affine parameters
        block.in1.weight.uniform_(0.5, 1.5)
        block.in2.bias.uniform_(-0.5, 0.5)

    def f(x, w):
        up.conv2d.weight = w
        return gram_matrix(up(block(x))).sum()

    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = up.conv2d.weight.detach().clone().requires_grad_()
    del up.conv2d.weight
    assert fw.autograd.gradcheck(f, (x, w), eps=1e-6, atol=1e-5)


def test_full_size_net_exports_stylizes_and_checkpoints(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    style_model = TransformerNet()
    assert "res5.in2.weight" in style_model.state_dict()
    ck = str(tmp_path / "model.pth")
    torch.save(style_model.state_dict(), ck)
    content_image = torch.rand(3, 16, 16).mul(255).unsqueeze(0)
    # stylize(): load the checkpoint, drop deprecated running_* keys, run, save the image
    with torch.no_grad():
        style_model = TransformerNet()
        state_dict = torch.load(ck)
        # remove saved deprecated running_* keys in InstanceNorm from the checkpoint
        for k in list(state_dict.keys()):
            if re.search(r'in\d+\.running_(mean|var)$', k):
                del state_dict[k]
        style_model.load_state_dict(state_dict)
        style_model.eval()
        output = style_model(content_image).cpu()
    img = save_image_array(output[0])
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8
    path = str(tmp_path / "style.onnx")
    # GAP: the original exports with opset_version=11 and PyTorch's exporter accepts any
    # image size; here the opset is 17+ and H/W must stay static (reflect padding of a
    # symbolic dim is refused with a ShapeError, below).
    fw.onnx.export(style_model, content_image, path, input_names=["input"])
    sess = ort.InferenceSession(path)
    (got,) = sess.run(None, {"input": content_image.numpy()})
    np.testing.assert_allclose(got, output.numpy(), rtol=1e-3, atol=1e-2)
    other = torch.rand(1, 3, 16, 16).mul(255)
    (got,) = sess.run(None, {"input": other.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, style_model(other).numpy(), rtol=1e-3, atol=1e-2)
    with pytest.raises(fw.ShapeError, match="reflect padding needs a static size"):
        fw.onnx.export(style_model, content_image, None, input_names=["input"],
                       dynamic_axes={"input": {2: "h", 3: "w"}})
