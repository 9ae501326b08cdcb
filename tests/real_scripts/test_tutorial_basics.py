"""pytorch/tutorials ``beginner_source/basics``: ``tensorqs_tutorial.py``,
``autogradqs_tutorial.py``, ``optimization_tutorial.py`` and ``saveloadrun_tutorial.py``
on fw (imports renamed).

FashionMNIST is replaced by a small synthetic set of 28x28 images (ToTensor's float32 in
[0, 1], int64 labels); torchvision's pretrained VGG16 download is skipped, the
save/load steps run on the tutorial's ``NeuralNetwork``.
"""

import numpy as np
import pytest

import framework as torch
from framework import nn
from framework.utils.data import DataLoader, TensorDataset

from ._checks import assert_compiled_matches_eager


# -- tensorqs_tutorial.py -----------------------------------------------------------------
def test_initializing_and_attributes():
    data = [[1, 2], [3, 4]]
    x_data = torch.tensor(data)
    assert x_data.dtype == torch.int64
    np_array = np.array(data)
    x_np = torch.from_numpy(np_array)
    assert torch.equal(x_np, x_data)
    x_ones = torch.ones_like(x_data)  # retains the properties of x_data
    assert f"Ones Tensor: \n {x_ones} \n" == "Ones Tensor: \n tensor([[1, 1],\n        [1, 1]]) \n"
    x_rand = torch.rand_like(x_data, dtype=torch.float)  # overrides the datatype of x_data
    assert x_rand.dtype == torch.float32 and x_rand.shape == (2, 2)

    shape = (2, 3,)
    rand_tensor = torch.rand(shape)
    ones_tensor = torch.ones(shape)
    zeros_tensor = torch.zeros(shape)
    assert rand_tensor.shape == (2, 3)
    assert f"Ones Tensor: \n {ones_tensor} \n" == \
        "Ones Tensor: \n tensor([[1., 1., 1.],\n        [1., 1., 1.]]) \n"
    assert f"Zeros Tensor: \n {zeros_tensor}" == \
        "Zeros Tensor: \n tensor([[0., 0., 0.],\n        [0., 0., 0.]])"

    tensor = torch.rand(3, 4)
    assert tensor.shape == (3, 4) and tensor.size() == torch.Size([3, 4])
    assert f"Datatype of tensor: {tensor.dtype}" == "Datatype of tensor: framework.float32"
    assert f"Device tensor is stored on: {tensor.device}" == "Device tensor is stored on: cpu"
    if torch.cuda.is_available() & (torch.device('cuda').index is not None):
        tensor = tensor.to('cuda')


def test_indexing_joining_arithmetic_and_out():
    tensor = torch.ones(4, 4)
    assert repr(tensor[0]) == "tensor([1., 1., 1., 1.])"
    assert repr(tensor[:, 0]) == "tensor([1., 1., 1., 1.])"
    assert repr(tensor[..., -1]) == "tensor([1., 1., 1., 1.])"
    tensor[:, 1] = 0
    assert repr(tensor) == ("tensor([[1., 0., 1., 1.],\n        [1., 0., 1., 1.],\n"
                            "        [1., 0., 1., 1.],\n        [1., 0., 1., 1.]])")
    t1 = torch.cat([tensor, tensor, tensor], dim=1)
    assert t1.shape == (4, 12)
    assert repr(t1).split("\n")[0] == \
        "tensor([[1., 0., 1., 1., 1., 0., 1., 1., 1., 0., 1., 1.],"

    # This computes the matrix multiplication between two tensors. y1, y2, y3 will have
    # the same value
    y1 = tensor @ tensor.T
    y2 = tensor.matmul(tensor.T)
    y3 = torch.rand_like(tensor)
    torch.matmul(tensor, tensor.T, out=y3)
    want = tensor.numpy() @ tensor.numpy().T
    for y in (y1, y2, y3):
        np.testing.assert_array_equal(y.numpy(), want)
    # This computes the element-wise product. z1, z2, z3 will have the same value
    z1 = tensor * tensor
    z2 = tensor.mul(tensor)
    z3 = torch.rand_like(tensor)
    torch.mul(tensor, tensor, out=z3)
    for z in (z1, z2, z3):
        np.testing.assert_array_equal(z.numpy(), tensor.numpy() ** 2)

    agg = tensor.sum()
    agg_item = agg.item()
    assert (agg_item, type(agg_item)) == (12.0, float)
    tensor.add_(5)
    assert repr(tensor) == ("tensor([[6., 5., 6., 6.],\n        [6., 5., 6., 6.],\n"
                            "        [6., 5., 6., 6.],\n        [6., 5., 6., 6.]])")


def test_bridge_with_numpy():
    t = torch.ones(5)
    assert f"t: {t}" == "t: tensor([1., 1., 1., 1., 1.])"
    n = t.numpy()
    assert f"n: {n}" == "n: [1. 1. 1. 1. 1.]"
    t.add_(1)
    assert f"t: {t}" == "t: tensor([2., 2., 2., 2., 2.])" and f"n: {n}" == "n: [2. 2. 2. 2. 2.]"
    n = np.ones(5)
    t = torch.from_numpy(n)
    np.add(n, 1, out=n)
    assert f"t: {t}" == "t: tensor([2., 2., 2., 2., 2.], dtype=framework.float64)"


# -- autogradqs_tutorial.py -----------------------------------------------------------
def test_one_layer_gradients_match_numpy():
    torch.manual_seed(0)
    x = torch.ones(5)  # input tensor
    y = torch.zeros(3)  # expected output
    w = torch.randn(5, 3, requires_grad=True)
    b = torch.randn(3, requires_grad=True)
    z = torch.matmul(x, w) + b
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
    assert z.grad_fn is not None and loss.grad_fn is not None
    loss.backward()
    zn = x.numpy() @ w.detach().numpy() + b.detach().numpy()
    s = 1 / (1 + np.exp(-zn))
    np.testing.assert_allclose(loss.item(), np.mean(np.log1p(np.exp(zn))), rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), s / 3, rtol=1e-5)
    np.testing.assert_allclose(w.grad.numpy(), np.outer(x.numpy(), s / 3), rtol=1e-5)
    # a second backward without retain_graph fails as in PyTorch
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        loss.backward()

    z = torch.matmul(x, w) + b
    assert z.requires_grad
    with torch.no_grad():
        z = torch.matmul(x, w) + b
    assert not z.requires_grad
    z = torch.matmul(x, w) + b
    z_det = z.detach()
    assert not z_det.requires_grad


def test_jacobian_vector_products_accumulate():
    inp = torch.eye(4, 5, requires_grad=True)
    out = (inp + 1).pow(2).t()
    out.backward(torch.ones_like(out), retain_graph=True)
    first = ("tensor([[4., 2., 2., 2., 2.],\n        [2., 4., 2., 2., 2.],\n"
             "        [2., 2., 4., 2., 2.],\n        [2., 2., 2., 4., 2.]])")
    assert f"First call\n{inp.grad}" == "First call\n" + first
    out.backward(torch.ones_like(out), retain_graph=True)
    assert f"\nSecond call\n{inp.grad}" == (
        "\nSecond call\ntensor([[8., 4., 4., 4., 4.],\n        [4., 8., 4., 4., 4.],\n"
        "        [4., 4., 8., 4., 4.],\n        [4., 4., 4., 8., 4.]])")
    inp.grad.zero_()
    out.backward(torch.ones_like(out), retain_graph=True)
    assert f"\nCall after zeroing gradients\n{inp.grad}" == \
        "\nCall after zeroing gradients\n" + first


# -- optimization_tutorial.py -----------------------------------------------------------
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28*28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


def _fashion_like(n, seed):
    """Images (n, 1, 28, 28) float32 in [0, 1] and int64 labels: class k is a bright
    horizontal band at rows 2k..2k+5, on noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 10
    x = rng.uniform(0, 0.3, (n, 1, 28, 28)).astype(np.float32)
    for i, k in enumerate(y):
        x[i, 0, 2 * k:2 * k + 6] += 0.7
    return TensorDataset(torch.tensor(x), torch.tensor(y))


batch_size = 64


def train_loop(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    # Set the model to training mode - important for batch normalization and dropout layers
    # Unnecessary in this situation but added for best practices
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        # Compute prediction and loss
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

        if batch % 100 == 0:
            loss, current = loss.item(), batch * batch_size + len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test_loop(dataloader, model, loss_fn):
    # Set the model to evaluation mode - important for batch normalization and dropout layers
    # Unnecessary in this situation but added for best practices
    model.eval()
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    test_loss, correct = 0, 0

    # Evaluating the model with torch.no_grad() ensures that no gradients are computed
    with torch.no_grad():
        for X, y in dataloader:
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()

    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100*correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return test_loss, correct


test_loop.__test__ = False   # the tutorial's name; not a pytest test


def test_optimization_loop_trains(capsys):
    torch.manual_seed(0)
    train_dataloader = DataLoader(_fashion_like(128, 0), batch_size=64)
    test_dataloader = DataLoader(_fashion_like(60, 1), batch_size=64)
    model = NeuralNetwork()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss0, _ = test_loop(test_dataloader, model, loss_fn)
    epochs = 6
    for t in range(epochs):
        print(f"Epoch {t+1}\n-------------------------------")
        train_loop(train_dataloader, model, loss_fn, optimizer)
        loss1, correct = test_loop(test_dataloader, model, loss_fn)
    print("Done!")
    assert loss1 < loss0 and correct > 0.5, (loss0, loss1, correct)
    out = capsys.readouterr().out
    assert "loss: " in out and "[   64/  128]" in out and "Accuracy: " in out


def test_optimization_step_compiled_matches_eager():
    def run(compiled):
        torch.manual_seed(0)
        model = NeuralNetwork()
        loss_fn = nn.CrossEntropyLoss()
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step(X, y):
            pred = model(X)
            loss = loss_fn(pred, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            return loss
        fn = torch.compile(step, mode="always") if compiled else step
        losses = [fn(X, y).item() for X, y in DataLoader(_fashion_like(96, 0), batch_size=32)]
        return losses, [p.detach().numpy().copy() for p in model.parameters()], fn

    assert_compiled_matches_eager(run, eager_reason=None, captures=1, num_recompiles=0)


# -- saveloadrun_tutorial.py (the VGG16 download replaced by NeuralNetwork) -------------
def test_save_and_load_model_weights(tmp_path):
    torch.manual_seed(0)
    model = NeuralNetwork()
    torch.save(model.state_dict(), tmp_path / 'model_weights.pth')

    model2 = NeuralNetwork()  # we do not specify weights, i.e. do not load default weights
    result = model2.load_state_dict(torch.load(tmp_path / 'model_weights.pth',
                                               weights_only=True))
    assert not result.missing_keys and not result.unexpected_keys
    model2.eval()
    x = torch.rand(3, 28, 28)
    with torch.no_grad():
        np.testing.assert_array_equal(model2(x).numpy(), model(x).numpy())

    # Saving and Loading Models with Shapes: fw.save never pickles a whole Module; the
    # refusal says what to do instead
    with pytest.raises(torch.ArgumentError, match=r"NeuralNetwork.*model\.state_dict\(\)"):
        torch.save(model, tmp_path / 'model.pth')
    assert not (tmp_path / 'model.pth').exists()


def test_export_to_onnx(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = NeuralNetwork().eval()
    input_image = torch.zeros((1, 28, 28))
    path = tmp_path / 'model.onnx'
    torch.onnx.export(model, input_image, str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 28, 28)
    with torch.no_grad():
        want = model(x).numpy()
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0],
                               want, rtol=1e-4, atol=1e-5)
