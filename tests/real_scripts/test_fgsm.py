"""pytorch/tutorials ``beginner_source/fgsm_tutorial.py`` (adversarial example generation)
ported to ``fw`` with only the imports changed.

Kept: the tutorial's LeNet ``Net`` (Conv2d, Dropout2d, ``F.dropout(training=...)``,
``x.view(-1, 320)``, ``log_softmax``), ``fgsm_attack``, ``denorm`` and ``test()`` with
``data.requires_grad = True``, ``data.grad.data``, ``output.max(1, keepdim=True)[1]`` and the
per-epsilon accuracy. (The tutorial's later revision swapped the Net for pytorch/examples'
mnist Net, which tests/real_scripts/test_mnist.py covers; its denorm / re-Normalize lines are
kept here.)

Replaced: the pretrained ``lenet_mnist_model.pth`` by a few epochs of training on synthetic
MNIST-like patterns (tests/real_scripts/_mnist_like.py); torchvision's
``transforms.Normalize((0.1307,), (0.3081,))`` by :class:`Normalize`, the same per-channel
formula on a batch.
"""
# ruff: noqa: UP008, UP032, E201, E202, E231, E275  (the original's lines are kept as written)

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim

from ._mnist_like import MEAN, STD, SyntheticMNIST

torch = fw  # the tutorial's ``torch.xxx`` calls read as ``fw.xxx``
device = torch.device("cpu")
epsilons = [0, .05, .1, .15, .2, .25, .3]


# LeNet Model definition
class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d()
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = x.view(-1, 320)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, training=self.training)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


class Normalize:
    """torchvision ``transforms.Normalize(mean, std)`` on an (N, C, H, W) tensor."""

    def __init__(self, mean, std):
        self.mean, self.std = mean, std

    def __call__(self, t):
        mean = torch.tensor(self.mean, dtype=t.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, dtype=t.dtype).view(1, -1, 1, 1)
        return (t - mean) / std


class transforms:  # noqa: N801  (the tutorial's module name)
    Normalize = Normalize


# FGSM attack code
def fgsm_attack(image, epsilon, data_grad):
    # Collect the element-wise sign of the data gradient
    sign_data_grad = data_grad.sign()
    # Create the perturbed image by adjusting each pixel of the input image
    perturbed_image = image + epsilon*sign_data_grad
    # Adding clipping to maintain [0,1] range
    perturbed_image = torch.clamp(perturbed_image, 0, 1)
    # Return the perturbed image
    return perturbed_image


# restores the tensors to their original scale
def denorm(batch, mean=[0.1307], std=[0.3081]):  # noqa: B006  (verbatim)
    if isinstance(mean, list):
        mean = torch.tensor(mean).to(device)
    if isinstance(std, list):
        std = torch.tensor(std).to(device)

    return batch * std.view(1, -1, 1, 1) + mean.view(1, -1, 1, 1)


def test( model, device, test_loader, epsilon ):

    # Accuracy counter
    correct = 0
    adv_examples = []

    # Loop over all examples in test set
    for data, target in test_loader:

        # Send the data and label to the device
        data, target = data.to(device), target.to(device)

        # Set requires_grad attribute of tensor. Important for Attack
        data.requires_grad = True

        # Forward pass the data through the model
        output = model(data)
        init_pred = output.max(1, keepdim=True)[1] # get the index of the max log-probability

        # If the initial prediction is wrong, don't bother attacking, just move on
        if init_pred.item() != target.item():
            continue

        # Calculate the loss
        loss = F.nll_loss(output, target)

        # Zero all existing gradients
        model.zero_grad()

        # Calculate gradients of model in backward pass
        loss.backward()

        # Collect ``datagrad``
        data_grad = data.grad.data

        # Restore the data to its original scale
        data_denorm = denorm(data)

        # Call FGSM Attack
        perturbed_data = fgsm_attack(data_denorm, epsilon, data_grad)

        # Reapply normalization
        perturbed_data_normalized = transforms.Normalize((0.1307,), (0.3081,))(perturbed_data)

        # Re-classify the perturbed image
        output = model(perturbed_data_normalized)

        # Check for success
        final_pred = output.max(1, keepdim=True)[1] # get the index of the max log-probability
        if final_pred.item() == target.item():
            correct += 1
            # Special case for saving 0 epsilon examples
            if epsilon == 0 and len(adv_examples) < 5:
                adv_ex = perturbed_data.squeeze().detach().cpu().numpy()
                adv_examples.append( (init_pred.item(), final_pred.item(), adv_ex) )
        else:
            # Save some adv examples for visualization later
            if len(adv_examples) < 5:
                adv_ex = perturbed_data.squeeze().detach().cpu().numpy()
                adv_examples.append( (init_pred.item(), final_pred.item(), adv_ex) )

    # Calculate final accuracy for this epsilon
    final_acc = correct/float(len(test_loader))
    print("Epsilon: {}\tTest Accuracy = {} / {} = {}".format(epsilon, correct, len(test_loader), final_acc))

    # Return the accuracy and an adversarial example
    return final_acc, adv_examples


test.__test__ = False  # the tutorial's name; not a pytest test


# -- stands in for the pretrained weights ------------------------------------------------
def _trained_model(seed=0, epochs=8):
    torch.manual_seed(seed)
    model = Net().to(device)
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = torch.utils.data.DataLoader(SyntheticMNIST(96, seed=0), batch_size=16, shuffle=True)
    model.train()
    losses = []
    for _ in range(epochs):
        for data, target in loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return model, losses


@pytest.fixture(scope="module")
def trained():
    return _trained_model()


def test_training_lowers_loss(trained):
    _, losses = trained
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4]), losses


def test_attack_lowers_accuracy_per_epsilon(trained):
    model, _ = trained
    # Set the model in evaluation mode. In this case this is for the Dropout layers
    model.eval()
    test_loader = torch.utils.data.DataLoader(SyntheticMNIST(24, seed=1), batch_size=1,
                                              shuffle=True)
    accuracies, examples = [], []
    for eps in epsilons:
        acc, ex = test(model, device, test_loader, eps)
        accuracies.append(acc)
        examples.append(ex)
    assert accuracies[0] >= 0.75, accuracies
    assert all(a >= b for a, b in zip(accuracies, accuracies[1:])), accuracies
    assert accuracies[-1] <= accuracies[0] - 0.1, accuracies
    orig, adv, ex = examples[-1][0]
    assert ex.shape == (28, 28) and ex.min() >= 0.0 and ex.max() <= 1.0
    assert orig != adv  # a successful adversarial example
    assert all(o == a for o, a, _ in examples[0])  # eps 0 saves unchanged predictions


def test_attack_step_matches_numpy(trained):
    """One sample by hand: ``data.grad`` is dLoss/dInput (finite differences), and the
    perturbed image is clip(denorm(x) + eps * sign(grad), 0, 1)."""
    model, _ = trained
    model.eval()
    with torch.no_grad():  # the least confident sample: a loss (and gradient) above zero
        data, target = max(torch.utils.data.DataLoader(SyntheticMNIST(16, seed=2), batch_size=1),
                           key=lambda b: F.nll_loss(model(b[0]), b[1]).item())
    data.requires_grad = True
    loss = F.nll_loss(model(data), target)
    model.zero_grad()
    loss.backward()
    data_grad = data.grad.data
    assert not data_grad.requires_grad and data_grad.shape == data.shape
    assert loss.item() > 1e-3 and (data_grad != 0).float().mean().item() > 0.5
    assert any(p.grad is not None for p in model.parameters())
    x = data.detach().numpy().astype(np.float64)
    g = data_grad.numpy()
    h = 1e-2
    with torch.no_grad():
        for idx in [(0, 0, 14, 14), (0, 0, 10, 12), (0, 0, 20, 7)]:
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            lp = F.nll_loss(model(torch.tensor(xp, dtype=torch.float32)), target).item()
            lm = F.nll_loss(model(torch.tensor(xm, dtype=torch.float32)), target).item()
            assert abs((lp - lm) / (2 * h) - g[idx]) < 2e-3 + 0.05 * abs(g[idx]), idx
    pert = fgsm_attack(denorm(data), 0.1, data_grad)
    want = np.clip(x * STD + MEAN + 0.1 * np.sign(g), 0, 1)
    np.testing.assert_allclose(pert.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    renorm = transforms.Normalize((0.1307,), (0.3081,))(pert)
    np.testing.assert_allclose(renorm.detach().numpy(), (want - MEAN) / STD, rtol=1e-5,
                               atol=1e-5)
    # the gradient's sign raises the loss more than a random sign of the same size
    rand = torch.clamp(denorm(data) + 0.1 * torch.randint(0, 2, data.shape).float().mul(2)
                       .sub(1), 0, 1)
    with torch.no_grad():
        losses = [F.nll_loss(model(transforms.Normalize((MEAN,), (STD,))(p)), target).item()
                  for p in (pert, rand)]
    assert losses[0] > max(losses[1], loss.item()), (losses, loss.item())


def _attack_batch(model, data, target, epsilon):
    """``test()``'s attack lines on a whole batch (the sign of a mean loss's gradient is
    the sign of each sample's own), returning the final predictions."""
    data.requires_grad = True
    output = model(data)
    loss = F.nll_loss(output, target)
    model.zero_grad()
    loss.backward()
    data_grad = data.grad.data
    perturbed_data = fgsm_attack(denorm(data), epsilon, data_grad)
    output = model(transforms.Normalize((0.1307,), (0.3081,))(perturbed_data))
    return output.max(1, keepdim=True)[1], perturbed_data.detach()


def test_compiled_batch_attack_matches_eager_and_compiles_once(trained):
    model, _ = trained
    model.eval()
    batches = list(torch.utils.data.DataLoader(SyntheticMNIST(24, seed=1), batch_size=8))
    step = fw.compile(_attack_batch, mode="always")
    for data, target in batches:
        de, dc = data.clone(), data.clone()
        pe, xe = _attack_batch(model, de, target, 0.2)
        ge = [p.grad.numpy().copy() for p in model.parameters()]
        pc, xc = step(model, dc, target, 0.2)
        np.testing.assert_array_equal(pc.numpy(), pe.numpy())
        np.testing.assert_allclose(xc.numpy(), xe.numpy(), rtol=1e-6, atol=1e-6)
        # the side effects reach the caller: data.requires_grad, data.grad, param grads
        assert dc.requires_grad and dc.grad is not None
        np.testing.assert_allclose(dc.grad.numpy(), de.grad.numpy(), rtol=1e-4, atol=1e-7)
        for a, b in zip([p.grad.numpy() for p in model.parameters()], ge):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    st = step.stats()
    assert st["eager_reason"] is None and st["captures"] == 1, st
    assert st["num_recompiles"] == 0 and st["cache_hits"] == 2, st["recompiles"]


def test_input_gradient_gradcheck_float64():
    torch.manual_seed(0)
    model = Net().double().eval()
    x = torch.randn(1, 1, 28, 28, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([3])
    assert fw.autograd.gradcheck(lambda x: F.nll_loss(model(x), target), (x,), eps=1e-6,
                                 atol=1e-5)


def test_train_mode_dropout2d_zeroes_whole_channels():
    torch.manual_seed(0)
    model = Net()
    model.train()
    h = model.conv2(F.relu(F.max_pool2d(model.conv1(torch.rand(4, 1, 28, 28)), 2)))
    out = model.conv2_drop(h).detach().numpy()
    dropped = (out == 0).all(axis=(2, 3))
    kept = ~dropped
    assert 0 < dropped.mean() < 1
    np.testing.assert_allclose(out[kept], 2 * h.detach().numpy()[kept], rtol=1e-6)
    model.eval()
    np.testing.assert_array_equal(model.conv2_drop(h).detach().numpy(), h.detach().numpy())


def test_onnx_export_and_checkpoint(trained, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    model, _ = trained
    model.eval()
    pretrained_model = str(tmp_path / "lenet_mnist_model.pth")
    torch.save(model.state_dict(), pretrained_model)
    model2 = Net().to(device)
    model2.load_state_dict(torch.load(pretrained_model, map_location=device, weights_only=True))
    model2.eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        want = model(x).numpy()
        np.testing.assert_array_equal(model2(x).numpy(), want)
    path = str(tmp_path / "lenet.onnx")
    fw.onnx.export(model2, x, path, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    (got,) = ort.InferenceSession(path).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
