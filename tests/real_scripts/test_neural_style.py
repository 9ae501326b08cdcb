"""pytorch/tutorials ``advanced_source/neural_style_tutorial.py`` (Gatys neural transfer)
ported to ``fw`` with only the imports changed.

Kept: ``ContentLoss`` / ``StyleLoss`` (transparent modules storing ``self.loss``, ``.detach()``
targets), ``gram_matrix``, ``Normalization``, ``get_style_model_and_losses`` (``copy.deepcopy``
of the cnn, a new ``nn.Sequential`` built by iterating ``cnn.children()`` and naming the
layers, in-place ReLUs replaced, the model trimmed after the last loss with ``model[:(i + 1)]``),
``get_input_optimizer`` (``optim.LBFGS([input_img.requires_grad_()])``) and
``run_style_transfer`` in both revisions of the closure (``input_img.data.clamp_(0, 1)`` and
``with torch.no_grad(): input_img.clamp_(0, 1)``).

Replaced: ``models.vgg19(pretrained=True).features`` by :func:`tiny_features`, a random
5-conv stack with VGG's layer kinds (Conv2d, ReLU(inplace=True), MaxPool2d) and no
pretrained weights; the PIL images by random 3x16x16 images in [0, 1].
"""
# ruff: noqa: UP008, UP032  (the original's lines are kept as written)

import copy

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim

torch = fw  # the tutorial's ``torch.xxx`` calls read as ``fw.xxx``
device = torch.device("cpu")


class ContentLoss(nn.Module):

    def __init__(self, target,):
        super(ContentLoss, self).__init__()
        # we 'detach' the target content from the tree used
        # to dynamically compute the gradient: this is a stated value,
        # not a variable. Otherwise the forward method of the criterion
        # will throw an error.
        self.target = target.detach()

    def forward(self, input):
        self.loss = F.mse_loss(input, self.target)
        return input


def gram_matrix(input):
    a, b, c, d = input.size()  # a=batch size(=1)
    # b=number of feature maps
    # (c,d)=dimensions of a f. map (N=c*d)

    features = input.view(a * b, c * d)  # resize F_XL into \hat F_XL

    G = torch.mm(features, features.t())  # compute the gram product

    # we 'normalize' the values of the gram matrix
    # by dividing by the number of element in each feature maps.
    return G.div(a * b * c * d)


class StyleLoss(nn.Module):

    def __init__(self, target_feature):
        super(StyleLoss, self).__init__()
        self.target = gram_matrix(target_feature).detach()

    def forward(self, input):
        G = gram_matrix(input)
        self.loss = F.mse_loss(G, self.target)
        return input


def tiny_features(seed=0):
    """Stands in for ``models.vgg19(pretrained=True).features.eval()``: random weights."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=2, stride=2),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(inplace=True),
    ).to(device).eval()


cnn_normalization_mean = torch.tensor([0.485, 0.456, 0.406]).to(device)
cnn_normalization_std = torch.tensor([0.229, 0.224, 0.225]).to(device)


# create a module to normalize input image so we can easily put it in a
# nn.Sequential
class Normalization(nn.Module):
    def __init__(self, mean, std):
        super(Normalization, self).__init__()
        # .view the mean and std to make them [C x 1 x 1] so that they can
        # directly work with image Tensor of shape [B x C x H x W].
        # B is batch size. C is number of channels. H is height and W is width.
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def forward(self, img):
        # normalize img
        return (img - self.mean) / self.std


# desired depth layers to compute style/content losses :
content_layers_default = ['conv_4']
style_layers_default = ['conv_1', 'conv_2', 'conv_3', 'conv_4', 'conv_5']


def get_style_model_and_losses(cnn, normalization_mean, normalization_std,
                               style_img, content_img,
                               content_layers=content_layers_default,
                               style_layers=style_layers_default):
    cnn = copy.deepcopy(cnn)

    # normalization module
    normalization = Normalization(normalization_mean, normalization_std).to(device)

    # just in order to have an iterable access to or list of content/syle
    # losses
    content_losses = []
    style_losses = []

    # assuming that cnn is a nn.Sequential, so we make a new nn.Sequential
    # to put in modules that are supposed to be activated sequentially
    model = nn.Sequential(normalization)

    i = 0  # increment every time we see a conv
    for layer in cnn.children():
        if isinstance(layer, nn.Conv2d):
            i += 1
            name = 'conv_{}'.format(i)
        elif isinstance(layer, nn.ReLU):
            name = 'relu_{}'.format(i)
            # The in-place version doesn't play very nicely with the ContentLoss
            # and StyleLoss we insert below. So we replace with out-of-place
            # ones here.
            layer = nn.ReLU(inplace=False)
        elif isinstance(layer, nn.MaxPool2d):
            name = 'pool_{}'.format(i)
        elif isinstance(layer, nn.BatchNorm2d):
            name = 'bn_{}'.format(i)
        else:
            raise RuntimeError('Unrecognized layer: {}'.format(layer.__class__.__name__))

        model.add_module(name, layer)

        if name in content_layers:
            # add content loss:
            target = model(content_img).detach()
            content_loss = ContentLoss(target)
            model.add_module("content_loss_{}".format(i), content_loss)
            content_losses.append(content_loss)

        if name in style_layers:
            # add style loss:
            target_feature = model(style_img).detach()
            style_loss = StyleLoss(target_feature)
            model.add_module("style_loss_{}".format(i), style_loss)
            style_losses.append(style_loss)

    # now we trim off the layers after the last content and style losses
    for i in range(len(model) - 1, -1, -1):
        if isinstance(model[i], ContentLoss) or isinstance(model[i], StyleLoss):
            break

    model = model[:(i + 1)]

    return model, style_losses, content_losses


def get_input_optimizer(input_img):
    # this line to show that input is a parameter that requires a gradient
    optimizer = optim.LBFGS([input_img.requires_grad_()])
    return optimizer


def run_style_transfer(cnn, normalization_mean, normalization_std,
                       content_img, style_img, input_img, num_steps=300,
                       style_weight=1000000, content_weight=1, no_grad_clamp=False):
    """Run the style transfer."""
    print('Building the style transfer model..')
    model, style_losses, content_losses = get_style_model_and_losses(cnn,
        normalization_mean, normalization_std, style_img, content_img)
    if no_grad_clamp:  # the tutorial's later revision
        input_img.requires_grad_(True)
        model.eval()
        model.requires_grad_(False)
    optimizer = get_input_optimizer(input_img)

    print('Optimizing..')
    run = [0]
    scores = []
    while run[0] <= num_steps:

        def closure():
            # correct the values of updated input image
            if no_grad_clamp:
                with torch.no_grad():
                    input_img.clamp_(0, 1)
            else:
                input_img.data.clamp_(0, 1)

            optimizer.zero_grad()
            model(input_img)
            style_score = 0
            content_score = 0

            for sl in style_losses:
                style_score += sl.loss
            for cl in content_losses:
                content_score += cl.loss

            style_score *= style_weight
            content_score *= content_weight

            loss = style_score + content_score
            loss.backward()

            run[0] += 1
            if run[0] % 50 == 0:
                print("run {}:".format(run))
                print('Style Loss : {:4f} Content Loss: {:4f}'.format(
                    style_score.item(), content_score.item()))
                print()
            scores.append(loss.item())

            return style_score + content_score

        optimizer.step(closure)

    # a last correction...
    if no_grad_clamp:
        with torch.no_grad():
            input_img.clamp_(0, 1)
    else:
        input_img.data.clamp_(0, 1)

    return input_img, scores, model


def _images(seed=0):
    rng = np.random.default_rng(seed)
    style_img = torch.tensor(rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))
    content_img = torch.tensor(rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32))
    assert style_img.size() == content_img.size(), \
        "we need to import style and content images of the same size"
    return style_img, content_img


def test_model_is_built_named_and_trimmed():
    cnn = tiny_features()
    style_img, content_img = _images()
    model, style_losses, content_losses = get_style_model_and_losses(
        cnn, cnn_normalization_mean, cnn_normalization_std, style_img, content_img)
    names = [n for n, _ in model.named_children()]
    assert names[0] == "0" and names[1:5] == ["conv_1", "style_loss_1", "relu_1", "conv_2"]
    assert "content_loss_4" in names and names[-1] == "style_loss_5"  # relu_5, conv_6 cut
    assert len(style_losses) == 5 and len(content_losses) == 1
    assert not any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
    assert all(isinstance(m, nn.ReLU) and m.inplace for m in cnn if isinstance(m, nn.ReLU))
    assert model.conv_1.weight is not cnn[0].weight  # a deep copy
    np.testing.assert_array_equal(model.conv_1.weight.detach().numpy(),
                                  cnn[0].weight.detach().numpy())
    for sl in style_losses:
        assert not sl.target.requires_grad and sl.target.grad_fn is None


def test_losses_match_numpy():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 3, 5)
    f = x.numpy().reshape(4, 15).astype(np.float64)
    np.testing.assert_allclose(gram_matrix(x).numpy(), f @ f.T / 60, rtol=1e-5, atol=1e-6)
    target = torch.randn(1, 4, 3, 5)
    sl, cl = StyleLoss(target), ContentLoss(target)
    assert sl(x) is x and cl(x) is x  # transparent layers
    t = target.numpy().reshape(4, 15).astype(np.float64)
    assert sl.loss.item() == pytest.approx(np.mean((f @ f.T / 60 - t @ t.T / 60) ** 2),
                                           rel=1e-5)
    assert cl.loss.item() == pytest.approx(np.mean((x.numpy() - target.numpy()) ** 2),
                                           rel=1e-5)
    norm = Normalization(cnn_normalization_mean, cnn_normalization_std)
    img = torch.rand(1, 3, 2, 2)
    want = (img.numpy() - np.array([0.485, 0.456, 0.406])[:, None, None]) / \
        np.array([0.229, 0.224, 0.225])[:, None, None]
    np.testing.assert_allclose(norm(img).numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("no_grad_clamp", [False, True])
def test_lbfgs_style_transfer_lowers_the_loss_and_keeps_the_image_in_range(no_grad_clamp):
    cnn = tiny_features()
    style_img, content_img = _images()
    cnn_before = copy.deepcopy(cnn.state_dict())
    input_img = content_img.clone()
    output, scores, model = run_style_transfer(
        cnn, cnn_normalization_mean, cnn_normalization_std, content_img, style_img,
        input_img, num_steps=30, no_grad_clamp=no_grad_clamp)
    assert output is input_img and output.is_leaf and output.requires_grad
    assert scores[-1] < 0.2 * scores[0], scores
    assert output.min().item() >= 0 and output.max().item() <= 1
    assert not np.array_equal(output.detach().numpy(), content_img.numpy())
    for k, v in cnn.state_dict().items():  # the network itself never changes
        np.testing.assert_array_equal(v.numpy(), cnn_before[k].numpy())
    if no_grad_clamp:
        assert not any(p.requires_grad for p in model.parameters())


def _closure_step(model, style_losses, content_losses, input_img, optimizer):
    """The closure's body (``no_grad`` clamp revision), without the host reads."""
    with torch.no_grad():
        input_img.clamp_(0, 1)
    optimizer.zero_grad()
    model(input_img)
    style_score = 0
    content_score = 0
    for sl in style_losses:
        style_score += sl.loss
    for cl in content_losses:
        content_score += cl.loss
    style_score *= 1000000
    content_score *= 1
    loss = style_score + content_score
    loss.backward()
    return style_score + content_score


# GAP: the input image is both the compiled function's argument and the optimizer's
# parameter. Compiled code would take the gradient on its stand-in for the argument while
# the optimizer steps the real tensor, so fw.compile runs such a function eagerly (a graph
# break naming the argument) and the results are eager's.
def test_compiled_closure_matches_eager_through_a_graph_break():
    results = []
    for compiled in (False, True):
        cnn = tiny_features()
        style_img, content_img = _images()
        model, style_losses, content_losses = get_style_model_and_losses(
            cnn, cnn_normalization_mean, cnn_normalization_std, style_img, content_img)
        model.requires_grad_(False)
        input_img = content_img.clone().requires_grad_()
        optimizer = optim.SGD([input_img], lr=0.01)  # a plain step after each closure
        fn = fw.compile(_closure_step, mode="always") if compiled else _closure_step
        losses = []
        for _ in range(4):
            losses.append(fn(model, style_losses, content_losses, input_img,
                             optimizer).item())
            losses.append(style_losses[0].loss.item())  # the attribute the forward set
            optimizer.step()
        results.append((losses, input_img.detach().numpy().copy(),
                        input_img.grad.numpy().copy(), fn))
    (le, xe, ge, _), (lc, xc, gc, fn) = results
    np.testing.assert_allclose(lc, le, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(xc, xe, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gc, ge, rtol=1e-4, atol=1e-6)
    assert "is also a parameter of an optimizer" in fn.stats()["eager_reason"]


def test_style_model_gradcheck_float64():
    """The input image's gradient through Normalization, convs, MaxPool2d, gram matrices
    and the MSE losses, against finite differences."""
    cnn = tiny_features().double()
    rng = np.random.default_rng(1)
    style_img, content_img = (torch.tensor(rng.uniform(0, 1, (1, 3, 4, 4))) for _ in range(2))
    model, style_losses, content_losses = get_style_model_and_losses(
        cnn, cnn_normalization_mean.double(), cnn_normalization_std.double(), style_img,
        content_img)

    def f(img):
        model(img)
        return sum(sl.loss for sl in style_losses) * 100 + content_losses[0].loss

    img = torch.tensor(rng.uniform(0, 1, (1, 3, 4, 4)), requires_grad=True)
    assert fw.autograd.gradcheck(f, (img,), eps=1e-6, atol=1e-5)


def test_lbfgs_matches_a_direct_minimum():
    """LBFGS on the tutorial's ``step(closure)`` API finds a quadratic's minimum."""
    a = torch.tensor([[3.0, 0.5], [0.5, 1.0]])
    b = torch.tensor([1.0, -2.0])
    x = torch.zeros(2)
    opt = optim.LBFGS([x.requires_grad_()])

    def closure():
        opt.zero_grad()
        loss = 0.5 * x @ a @ x - b @ x
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    np.testing.assert_allclose(x.detach().numpy(), np.linalg.solve(a.numpy(), b.numpy()),
                               rtol=1e-4, atol=1e-5)
