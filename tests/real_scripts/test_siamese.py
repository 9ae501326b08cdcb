"""pytorch/examples ``siamese_network/main.py`` ported to fw (imports renamed, argparse
dropped).

Two replacements, both torchvision:
- the backbone ``torchvision.models.resnet18(weights=None)`` is :class:`TinyResNet`, a small
  conv stack with ResNet-18's child layout (conv1, bn1, relu, maxpool, layer1, avgpool, fc),
  so the script's own lines run unchanged on it: overwrite ``conv1`` with a 1-channel
  ``Conv2d(1, 64, 7, 2, 3, bias=False)``, read ``fc.in_features``, drop the last child with
  ``nn.Sequential(*(list(resnet.children())[:-1]))``;
- ``datasets.MNIST(root, train, download)`` is :class:`RawMNIST`: ``.data`` (N, 28, 28) uint8
  and ``.targets`` int64 tensors of synthetic 10-class patterns (the APP_MATCHER dataset
  pairs images of random classes 0..9, so all ten must exist).
"""
# ruff: noqa: UP008, UP032, UP034, E501  (the original's lines are kept as written)


import random
import types

import numpy as np
import pytest

import framework as fw
import framework.nn as nn
import framework.optim as optim
from framework.optim.lr_scheduler import StepLR
from framework.utils.data import Dataset

from ._checks import assert_compiled_matches_eager
from ._mnist_like import make_arrays


class TinyResNet(nn.Module):
    """ResNet-18's children, tiny: the stand-in for torchvision.models.resnet18."""

    def __init__(self, width=64):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = nn.Sequential(nn.Conv2d(width, 16, 3, stride=2, padding=1, bias=False),
                                    nn.BatchNorm2d(16), nn.ReLU(inplace=True))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 1000)


class RawMNIST:
    """``datasets.MNIST(root, train=..., download=...)`` without a transform: raw tensors."""

    def __init__(self, root, train, download=False):
        self.data, targets = make_arrays(200 if train else 40, seed=0 if train else 1,
                                         num_classes=10)
        self.data = fw.tensor(self.data)
        self.targets = fw.tensor(targets)


class SiameseNetwork(nn.Module):
    def __init__(self):
        super(SiameseNetwork, self).__init__()
        # get resnet model
        self.resnet = TinyResNet()   # torchvision.models.resnet18(weights=None)

        # over-write the first conv layer to be able to read MNIST images
        # as resnet18 reads (3,x,x) where 3 is RGB channels
        # whereas MNIST has (1,x,x) where 1 is a gray-scale channel
        self.resnet.conv1 = nn.Conv2d(1, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
        self.fc_in_features = self.resnet.fc.in_features

        # remove the last layer of resnet18 (linear layer which is before avgpool layer)
        self.resnet = fw.nn.Sequential(*(list(self.resnet.children())[:-1]))

        # add linear layers to compare between the features of the two images
        self.fc = nn.Sequential(
            nn.Linear(self.fc_in_features * 2, 256),
            nn.ReLU(inplace=True),
            nn.Linear(256, 1),
        )

        self.sigmoid = nn.Sigmoid()

        # initialize the weights
        self.resnet.apply(self.init_weights)
        self.fc.apply(self.init_weights)

    def init_weights(self, m):
        if isinstance(m, nn.Linear):
            fw.nn.init.xavier_uniform_(m.weight)
            m.bias.data.fill_(0.01)

    def forward_once(self, x):
        output = self.resnet(x)
        output = output.view(output.size()[0], -1)
        return output

    def forward(self, input1, input2):
        # get two images' features
        output1 = self.forward_once(input1)
        output2 = self.forward_once(input2)

        # concatenate both images' features
        output = fw.cat((output1, output2), 1)

        # pass the concatenation to the linear layers
        output = self.fc(output)

        # pass the out of the linear layers to sigmoid layer
        output = self.sigmoid(output)

        return output


class APP_MATCHER(Dataset):
    def __init__(self, root, train, download=False):
        super(APP_MATCHER, self).__init__()

        # get MNIST dataset
        self.dataset = RawMNIST(root, train=train, download=download)

        # as `self.dataset.data`'s shape is (Nx28x28), where N is the number of
        # examples in MNIST dataset, a single example has the dimensions of
        # (28x28) for (WxH), where W and H are the width and the height of the image.
        # However, every example should have (CxWxH) dimensions where C is the number
        # of channels to be passed to the network. As MNIST contains gray-scale images,
        # we add an additional dimension to corresponds to the number of channels.
        self.data = self.dataset.data.unsqueeze(1).clone()

        self.group_examples()

    def group_examples(self):
        # get the targets from MNIST dataset
        np_arr = np.array(self.dataset.targets.clone(), dtype=None, copy=None)

        # group examples based on class
        self.grouped_examples = {}
        for i in range(0,10):
            self.grouped_examples[i] = np.where((np_arr==i))[0]

    def __len__(self):
        return self.data.shape[0]

    def __getitem__(self, index):
        # pick some random class for the first image
        selected_class = random.randint(0, 9)

        # pick a random index for the first image in the grouped indices based of the label
        # of the class
        random_index_1 = random.randint(0, self.grouped_examples[selected_class].shape[0]-1)

        # pick the index to get the first image
        index_1 = self.grouped_examples[selected_class][random_index_1]

        # get the first image
        image_1 = self.data[index_1].clone().float()

        # same class
        if index % 2 == 0:
            # pick a random index for the second image
            random_index_2 = random.randint(0, self.grouped_examples[selected_class].shape[0]-1)

            # ensure that the index of the second image isn't the same as the first image
            while random_index_2 == random_index_1:
                random_index_2 = random.randint(0, self.grouped_examples[selected_class].shape[0]-1)

            # pick the index to get the second image
            index_2 = self.grouped_examples[selected_class][random_index_2]

            # get the second image
            image_2 = self.data[index_2].clone().float()

            # set the label for this example to be positive (1)
            target = fw.tensor(1, dtype=fw.float)

        # different class
        else:
            # pick a random class
            other_selected_class = random.randint(0, 9)

            # ensure that the class of the second image isn't the same as the first image
            while other_selected_class == selected_class:
                other_selected_class = random.randint(0, 9)

            # pick a random index for the second image in the grouped indices based of the label
            # of the class
            random_index_2 = random.randint(0, self.grouped_examples[other_selected_class].shape[0]-1)

            # pick the index to get the second image
            index_2 = self.grouped_examples[other_selected_class][random_index_2]

            # get the second image
            image_2 = self.data[index_2].clone().float()

            # set the label for this example to be negative (0)
            target = fw.tensor(0, dtype=fw.float)

        return image_1, image_2, target


def train(args, model, device, train_loader, optimizer, epoch):
    model.train()

    # we aren't using `TripletLoss` as the MNIST dataset is simple, so `BCELoss` can do the trick.
    criterion = nn.BCELoss()
    losses = []

    for batch_idx, (images_1, images_2, targets) in enumerate(train_loader):
        images_1, images_2, targets = images_1.to(device), images_2.to(device), targets.to(device)
        optimizer.zero_grad()
        outputs = model(images_1, images_2).squeeze()
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if batch_idx % args.log_interval == 0:
            print('Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(images_1), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
            if args.dry_run:
                break
    return losses


def test(model, device, test_loader):
    model.eval()
    test_loss = 0
    correct = 0

    # we aren't using `TripletLoss` as the MNIST dataset is simple, so `BCELoss` can do the trick.
    criterion = nn.BCELoss()

    with fw.no_grad():
        for (images_1, images_2, targets) in test_loader:
            images_1, images_2, targets = images_1.to(device), images_2.to(device), targets.to(device)
            outputs = model(images_1, images_2).squeeze()
            test_loss += criterion(outputs, targets).sum().item()  # sum up batch loss
            pred = fw.where(outputs > 0.5, 1, 0)  # get the index of the max log-probability
            correct += pred.eq(targets.view_as(pred)).sum().item()

    test_loss /= len(test_loader.dataset)

    print('\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n'.format(
        test_loss, correct, len(test_loader.dataset),
        100. * correct / len(test_loader.dataset)))
    return test_loss, correct


test.__test__ = False   # the script's name; not a pytest test


def _setup():
    args = types.SimpleNamespace(batch_size=16, test_batch_size=20, epochs=6, lr=1.0,
                                 gamma=0.7, no_accel=True, dry_run=False, seed=1,
                                 log_interval=4)
    use_accel = not args.no_accel and fw.accelerator.is_available()
    fw.manual_seed(args.seed)
    random.seed(args.seed)   # APP_MATCHER pairs with Python's random
    device = fw.accelerator.current_accelerator() if use_accel else fw.device("cpu")
    train_kwargs = {'batch_size': args.batch_size}
    test_kwargs = {'batch_size': args.test_batch_size}
    accel_kwargs = {'num_workers': 0, 'pin_memory': True, 'shuffle': True}
    train_kwargs.update(accel_kwargs)
    test_kwargs.update(accel_kwargs)
    train_dataset = APP_MATCHER('../data', train=True, download=True)
    test_dataset = APP_MATCHER('../data', train=False)
    train_loader = fw.utils.data.DataLoader(train_dataset, **train_kwargs)
    test_loader = fw.utils.data.DataLoader(test_dataset, **test_kwargs)
    model = SiameseNetwork().to(device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    return args, device, train_loader, test_loader, model, optimizer, scheduler


def test_model_structure_follows_the_script():
    fw.manual_seed(0)
    model = SiameseNetwork()
    assert model.fc_in_features == 16
    names = [n for n, _ in model.resnet.named_children()]
    assert names == ["0", "1", "2", "3", "4", "5"]      # fc dropped, renumbered
    conv1 = model.resnet[0]
    assert conv1.in_channels == 1 and conv1.bias is None and conv1.padding == (3, 3)
    head = model.fc[0]
    assert head.weight.shape == (256, 32)
    np.testing.assert_array_equal(head.bias.detach().numpy(), np.full(256, 0.01, np.float32))
    bound = np.sqrt(6.0 / (256 + 32))                   # xavier_uniform_
    w = head.weight.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound


def test_pairs_dataset():
    random.seed(0)
    ds = APP_MATCHER('../data', train=True)
    assert len(ds) == 200 and ds.data.shape == (200, 1, 28, 28) and ds.data.dtype == fw.uint8
    labels = ds.dataset.targets.numpy()
    raw = ds.data.numpy().astype(np.float32)
    for index in range(12):
        im1, im2, target = ds[index]
        assert im1.shape == (1, 28, 28) and im1.dtype == fw.float32 and target.ndim == 0
        c1 = labels[np.flatnonzero((raw == im1.numpy()).all(axis=(1, 2, 3)))]
        c2 = labels[np.flatnonzero((raw == im2.numpy()).all(axis=(1, 2, 3)))]
        assert target.item() == float(index % 2 == 0)
        assert (c1[0] == c2[0]) == (index % 2 == 0)
    batch = next(iter(fw.utils.data.DataLoader(ds, batch_size=4)))
    assert [t.shape for t in batch] == [(4, 1, 28, 28), (4, 1, 28, 28), (4,)]
    np.testing.assert_array_equal(batch[2].numpy(), [1.0, 0.0, 1.0, 0.0])


def test_script_trains_and_evaluates(tmp_path):
    args, device, train_loader, test_loader, model, optimizer, scheduler = _setup()
    epoch_losses, corrects = [], []
    for epoch in range(1, args.epochs + 1):
        epoch_losses.append(train(args, model, device, train_loader, optimizer, epoch))
        test_loss, correct = test(model, device, test_loader)
        corrects.append(correct)
        scheduler.step()
    assert np.mean(epoch_losses[-1]) < 0.85 * np.mean(epoch_losses[0]), epoch_losses
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.7 ** args.epochs)
    assert corrects[-1] >= 28 and corrects[-1] > corrects[0], corrects   # of 40 pairs

    fw.save(model.state_dict(), tmp_path / "siamese_network.pt")
    fresh = SiameseNetwork()
    fresh.load_state_dict(fw.load(tmp_path / "siamese_network.pt"))
    fresh.eval()
    model.eval()
    im1, im2, _ = next(iter(test_loader))
    with fw.no_grad():
        np.testing.assert_array_equal(fresh(im1, im2).numpy(), model(im1, im2).numpy())


def test_test_loop_where_and_eq_count():
    """``fw.where(outputs > 0.5, 1, 0)`` is an int64 tensor compared with float targets."""
    outputs = fw.tensor([0.2, 0.7, 0.51, 0.5])
    targets = fw.tensor([0.0, 1.0, 0.0, 1.0])
    pred = fw.where(outputs > 0.5, 1, 0)
    assert pred.dtype == fw.int64 and pred.tolist() == [0, 1, 1, 0]
    assert pred.eq(targets.view_as(pred)).sum().item() == 2
    loss = nn.BCELoss()(outputs, targets).item()
    o, t = outputs.numpy().astype(np.float64), targets.numpy()
    assert loss == pytest.approx(-(t * np.log(o) + (1 - t) * np.log(1 - o)).mean(), rel=1e-5)


def _run_steps(compiled, steps=4):
    fw.manual_seed(1)
    model = SiameseNetwork()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    criterion = nn.BCELoss()
    model.train()

    def step(images_1, images_2, targets):
        optimizer.zero_grad()
        outputs = model(images_1, images_2).squeeze()
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        return loss

    fn = fw.compile(step, mode="always") if compiled else step
    random.seed(5)
    ds = APP_MATCHER('../data', train=True)
    loader = fw.utils.data.DataLoader(ds, batch_size=8, shuffle=True,
                                      generator=fw.Generator().manual_seed(0))
    losses = []
    for images_1, images_2, targets in loader:
        losses.append(fn(images_1, images_2, targets).item())
        if len(losses) == steps:
            break
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return losses, state, fn


def test_compiled_train_step_matches_eager():
    # call 1: eager warm-up; the states include BatchNorm running statistics
    assert_compiled_matches_eager(_run_steps, eager_reason=None, captures=1, min_cache_hits=2,
                                  num_recompiles=0)


def test_gradcheck_siamese_small_images():
    """float64 finite differences through both towers (BatchNorm in train mode, max and
    adaptive-average pooling, in-place ReLU), the head and the sigmoid, on 8x8 images."""
    fw.manual_seed(0)
    model = SiameseNetwork().double()
    model.train()
    a = fw.randn(2, 1, 8, 8, dtype=fw.float64, requires_grad=True)
    b = fw.randn(2, 1, 8, 8, dtype=fw.float64)   # the same tower as a's: a is enough
    assert fw.autograd.gradcheck(lambda x, y: model(x, y), (a, b), atol=1e-6, rtol=1e-4)


def test_onnx_export_matches_eager(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    args, device, train_loader, test_loader, model, optimizer, scheduler = _setup()
    train(args, model, device, train_loader, optimizer, 1)   # non-trivial BatchNorm stats
    im1, im2, _ = next(iter(test_loader))
    path = tmp_path / "siamese.onnx"
    fw.onnx.export(model, (im1, im2), str(path), input_names=["a", "b"],
                   output_names=["p"], dynamic_axes={"a": {0: "n"}, "b": {0: "n"},
                                                     "p": {0: "n"}})
    assert model.training                      # export restored the mode
    model.eval()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with fw.no_grad():
        want = model(im1, im2).numpy()
    got = sess.run(None, {"a": im1.numpy(), "b": im2.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    got = sess.run(None, {"a": im1.numpy()[:3], "b": im2.numpy()[:3]})[0]
    np.testing.assert_allclose(got, want[:3], rtol=1e-4, atol=1e-5)
