"""pytorch/tutorials ``recipes_source/recipes``: ``what_is_state_dict.py``,
``saving_and_loading_models_for_inference.py``, ``saving_and_loading_a_general_checkpoint.py``,
``saving_multiple_models_in_one_file.py``,
``warmstarting_model_using_parameters_from_a_different_model.py``,
``module_load_state_dict_tips.py``, ``swap_tensors.py``, ``reasoning_about_shapes.py`` and
``changing_default_device.py`` on fw (imports renamed; files go to ``tmp_path``; sizes
smaller where the recipe's only point is "large").
"""

import time
import timeit

import numpy as np
import pytest

import framework as torch
import framework.nn as nn
import framework.nn.functional as F
import framework.optim as optim


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


def _train_a_bit(net, optimizer, steps=2):
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    for _ in range(steps):
        optimizer.zero_grad()
        nn.CrossEntropyLoss()(net(x), y).backward()
        optimizer.step()
    return x


# -- what_is_state_dict.py ----------------------------------------------------------------
def test_what_is_state_dict():
    net = Net()
    text = str(net)
    assert text.startswith("Net(\n  (conv1): Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1))")
    assert "(pool): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, " \
           "ceil_mode=False)" in text
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    lines = []
    for param_tensor in net.state_dict():
        lines.append(f"{param_tensor} \t {net.state_dict()[param_tensor].size()}")
    assert lines[0] == "conv1.weight \t framework.Size([6, 3, 5, 5])"
    assert lines[-1] == "fc3.bias \t framework.Size([10])" and len(lines) == 10
    sd = optimizer.state_dict()
    assert list(sd) == ["state", "param_groups"]
    assert sd["state"] == {}
    group = sd["param_groups"][0]
    assert group["params"] == list(range(10))
    assert group["lr"] == 0.001 and group["momentum"] == 0.9 and group["dampening"] == 0
    assert group["weight_decay"] == 0 and group["nesterov"] is False
    for var_name in optimizer.state_dict():
        assert f"{var_name} \t {optimizer.state_dict()[var_name]}"
    _train_a_bit(net, optimizer, 1)
    buf = optimizer.state_dict()["state"][0]["momentum_buffer"]
    assert buf.shape == (6, 3, 5, 5)


# -- saving_and_loading_models_for_inference.py -------------------------------------------
def test_saving_and_loading_models_for_inference(tmp_path):
    torch.manual_seed(0)
    net = Net()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    x = _train_a_bit(net, optimizer)
    with torch.no_grad():
        want = net(x).numpy()
    PATH = tmp_path / "state_dict_model.pt"
    torch.save(net.state_dict(), PATH)
    model = Net()
    model.load_state_dict(torch.load(PATH))
    model.eval()
    with torch.no_grad():
        np.testing.assert_array_equal(model(x).numpy(), want)
    # you CANNOT load using model.load_state_dict(PATH)
    with pytest.raises(TypeError):
        model.load_state_dict(str(PATH))

    PATH = tmp_path / "entire_model.pt"
    # GAP: fw.save never pickles, so "save the entire model" is refused with a message that
    # points to the state_dict way (the recipe's recommended method)
    with pytest.raises(ValueError, match=r"save its weights with fw.save\(model.state_dict"):
        torch.save(net, PATH)


# -- saving_and_loading_a_general_checkpoint.py -------------------------------------------
def test_saving_and_loading_a_general_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = Net()
    optimizer = optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    _train_a_bit(net, optimizer)
    EPOCH = 5
    PATH = tmp_path / "model.pt"
    LOSS = 0.4
    torch.save({
                'epoch': EPOCH,
                'model_state_dict': net.state_dict(),
                'optimizer_state_dict': optimizer.state_dict(),
                'loss': LOSS,
                }, PATH)

    model = Net()
    optimizer2 = optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    checkpoint = torch.load(PATH)
    model.load_state_dict(checkpoint['model_state_dict'])
    optimizer2.load_state_dict(checkpoint['optimizer_state_dict'])
    epoch = checkpoint['epoch']
    loss = checkpoint['loss']
    assert epoch == 5 and loss == 0.4
    model.eval()
    assert not model.training
    # - or -
    model.train()
    # resuming gives the same next steps as continuing
    torch.manual_seed(3)
    _train_a_bit(net, optimizer)
    torch.manual_seed(3)
    _train_a_bit(model, optimizer2)
    for a, b in zip(net.parameters(), model.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


# -- saving_multiple_models_in_one_file.py ------------------------------------------------
def test_saving_multiple_models_in_one_file(tmp_path):
    torch.manual_seed(0)
    netA = Net()
    netB = Net()
    optimizerA = optim.SGD(netA.parameters(), lr=0.001, momentum=0.9)
    optimizerB = optim.SGD(netB.parameters(), lr=0.001, momentum=0.9)
    _train_a_bit(netA, optimizerA)
    _train_a_bit(netB, optimizerB, 1)
    PATH = tmp_path / "model.pt"
    torch.save({
                'modelA_state_dict': netA.state_dict(),
                'modelB_state_dict': netB.state_dict(),
                'optimizerA_state_dict': optimizerA.state_dict(),
                'optimizerB_state_dict': optimizerB.state_dict(),
                }, PATH)
    modelA = Net()
    modelB = Net()
    optimModelA = optim.SGD(modelA.parameters(), lr=0.001, momentum=0.9)
    optimModelB = optim.SGD(modelB.parameters(), lr=0.001, momentum=0.9)
    checkpoint = torch.load(PATH)
    modelA.load_state_dict(checkpoint['modelA_state_dict'])
    modelB.load_state_dict(checkpoint['modelB_state_dict'])
    # the recipe loads into optimizerA/B (its typo); the new optimizers are meant
    optimModelA.load_state_dict(checkpoint['optimizerA_state_dict'])
    optimModelB.load_state_dict(checkpoint['optimizerB_state_dict'])
    modelA.eval()
    modelB.eval()
    # - or -
    modelA.train()
    modelB.train()
    for src, dst in ((netA, modelA), (netB, modelB)):
        for (k, a), b in zip(src.state_dict().items(), dst.state_dict().values()):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    bufA = optimModelA.state_dict()["state"][0]["momentum_buffer"]
    np.testing.assert_array_equal(
        bufA.numpy(), optimizerA.state_dict()["state"][0]["momentum_buffer"].numpy())
    # the loaded buffer belongs to modelA's optimizer, not to the saved one
    assert optimModelA.state[modelA.conv1.weight]["momentum_buffer"] is not \
        optimizerA.state[netA.conv1.weight]["momentum_buffer"]


# -- warmstarting_model_using_parameters_from_a_different_model.py ------------------------
class NetB(nn.Module):
    """NetA with a different head (so that keys partly match, as the recipe discusses)."""

    def __init__(self):
        super(NetB, self).__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.pool = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.head = nn.Linear(84, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.head(x)


def test_warmstarting_from_a_different_model(tmp_path):
    torch.manual_seed(0)
    netA = Net()
    netB = Net()  # the recipe's NetB has NetA's layers
    PATH = tmp_path / "model.pt"
    torch.save(netA.state_dict(), PATH)
    result = netB.load_state_dict(torch.load(PATH), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert str(result) == "<All keys matched successfully>"
    for a, b in zip(netA.parameters(), netB.parameters()):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())

    netC = NetB()
    head = netC.head.weight.detach().numpy().copy()
    result = netC.load_state_dict(torch.load(PATH), strict=False)
    assert result.missing_keys == ["head.weight", "head.bias"]
    assert result.unexpected_keys == ["fc3.weight", "fc3.bias"]
    missing, unexpected = result  # a named tuple, as PyTorch's
    assert missing == result.missing_keys and unexpected == result.unexpected_keys
    np.testing.assert_array_equal(netC.head.weight.detach().numpy(), head)
    np.testing.assert_array_equal(netC.fc2.weight.detach().numpy(),
                                  netA.fc2.weight.detach().numpy())
    with pytest.raises(RuntimeError, match="Missing key.*head.weight"):
        netC.load_state_dict(torch.load(PATH))
    # "simply change the name of the parameter keys in the state_dict"
    sd = torch.load(PATH)
    sd["head.weight"], sd["head.bias"] = sd.pop("fc3.weight")[:2], sd.pop("fc3.bias")[:2]
    assert netC.load_state_dict(sd).missing_keys == []
    # a shape mismatch is an error even with strict=False
    sd["head.bias"] = torch.zeros(3)
    with pytest.raises(RuntimeError, match="size mismatch for head.bias"):
        netC.load_state_dict(sd, strict=False)


# -- module_load_state_dict_tips.py -------------------------------------------------------
class SomeModule(torch.nn.Module):
    def __init__(self, size):
        super().__init__()
        self.linears = nn.ModuleList([nn.Linear(size, size) for i in range(10)])

    def forward(self, x):
        return self.linears(x)


def test_module_load_state_dict_tips(tmp_path):
    torch.manual_seed(0)
    m = SomeModule(16)
    path = tmp_path / 'checkpoint.pth'
    torch.save(m.state_dict(), path)
    state_dict = torch.load(path, mmap=True)
    with torch.device('meta'):
        meta_m = SomeModule(16)
    assert meta_m.linears[0].weight.device.type == "meta"
    meta_m.load_state_dict(state_dict, assign=True)
    w = meta_m.linears[3].weight
    assert isinstance(w, nn.Parameter) and w.requires_grad and w.device.type == "cpu"
    np.testing.assert_array_equal(w.detach().numpy(), m.linears[3].weight.detach().numpy())

    state_dict = torch.load(path)
    m2 = SomeModule(16)
    m2.load_state_dict(state_dict)

    start_time = time.time()
    state_dict = torch.load(path, mmap=True)
    assert time.time() >= start_time

    def my_special_routine(t, device):
        # this could be a much fancier operation
        return t.to(dtype=torch.bfloat16, device=device)

    def my_processing_function(key, device):
        t = state_dict[key]
        processed_t = my_special_routine(t, device)
        del t
        state_dict[key] = processed_t

    for key in state_dict.keys():
        device = torch.device('cpu')  # recipe: 'cuda'
        my_processing_function(key, device)
    assert all(v.dtype == torch.bfloat16 for v in state_dict.values())

    with torch.device('meta'):
        new_m = SomeModule(16)
    new_m.load_state_dict(state_dict, assign=True)
    # This MUST be done AFTER the load_state_dict with assign.
    opt = torch.optim.SGD(new_m.parameters(), lr=1e-3)
    assert new_m.linears[0].weight.dtype == torch.bfloat16  # assign keeps the checkpoint's
    assert opt.param_groups[0]["params"][0] is new_m.linears[0].weight
    # assign=False copies into the module's own tensors (keeps their dtype)
    m3 = SomeModule(16)
    w_before = m3.linears[0].weight
    m3.load_state_dict(state_dict)
    assert m3.linears[0].weight is w_before and w_before.dtype == torch.float32
    # an in-place copy into a meta tensor loads nothing
    with torch.device('meta'):
        m4 = SomeModule(16)
    m4.load_state_dict(torch.load(path))
    assert m4.linears[0].weight.device.type == "meta"


# -- swap_tensors.py ----------------------------------------------------------------------
def test_swap_tensors():
    t1 = torch.arange(2)
    t2 = torch.arange(3)
    assert f"Before swapping, t1: {t1}, t2: {t2}" == \
        "Before swapping, t1: tensor([0, 1]), t2: tensor([0, 1, 2])"
    torch.utils.swap_tensors(t1, t2)
    assert f"After swapping, t1: {t1}, t2: {t2}" == \
        "After swapping, t1: tensor([0, 1, 2]), t2: tensor([0, 1])"

    mod = torch.nn.Linear(1, 2, bias=False)
    optimizer = torch.optim.SGD(mod.parameters())
    assert optimizer.param_groups[0]['params'][0] is mod.weight
    mod.weight = torch.nn.Parameter(2 * mod.weight)
    assert optimizer.param_groups[0]['params'][0] is not mod.weight  # the recipe's point

    # with the __future__ flag, .to()/.bfloat16() swap in place: references stay valid
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        assert torch.__future__.get_swap_module_params_on_conversion()
        m = nn.Linear(3, 5, dtype=torch.float32)
        wid, bid = id(m.weight), id(m.bias)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        m.bfloat16()
        assert (id(m.weight), id(m.bias)) == (wid, bid)
        assert m.weight.dtype == torch.bfloat16 and opt.param_groups[0]['params'][0] is m.weight
    finally:
        torch.__future__.set_swap_module_params_on_conversion(False)

    # load_state_dict(assign=True) from a meta skeleton, swap path on
    with torch.device("meta"):
        m = nn.Linear(3, 5)
    torch.__future__.set_swap_module_params_on_conversion(True)
    try:
        state_dict = nn.Linear(3, 5).state_dict()
        m.load_state_dict(state_dict, assign=True)
    finally:
        torch.__future__.set_swap_module_params_on_conversion(False)
    assert m.weight.device.type == "cpu" and isinstance(m.weight, nn.Parameter)
    np.testing.assert_array_equal(m.bias.detach().numpy(), state_dict["bias"].numpy())


# -- reasoning_about_shapes.py ------------------------------------------------------------
def test_reasoning_about_shapes():
    t = torch.rand(2, 3, 10, 10, device="meta")
    conv = torch.nn.Conv2d(3, 5, 2, device="meta")
    start = timeit.default_timer()
    out = conv(t)
    end = timeit.default_timer()
    assert repr(out).startswith("tensor(..., device='meta', size=(2, 5, 9, 9), grad_fn=<")
    assert end >= start
    t_large = torch.rand(2**10, 3, 2**16, 2**16, device="meta")
    out = conv(t_large)
    assert out.shape == (2**10, 5, 2**16 - 1, 2**16 - 1) and out.device.type == "meta"

    class Net2(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)  # flatten all dimensions except batch
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            x = self.fc3(x)
            return x

    shapes = []

    def fw_hook(module, input, output):
        shapes.append(f"Shape of output to {module} is {output.shape}.")

    with torch.device("meta"):
        net = Net2()
        inp = torch.randn((1024, 3, 32, 32))
    for name, layer in net.named_modules():
        layer.register_forward_hook(fw_hook)
    out = net(inp)
    assert out.shape == (1024, 10) and out.device.type == "meta"
    # GAP: Tensor.shape is a plain tuple (PyTorch: torch.Size, printed "torch.Size([...])")
    assert shapes[0] == "Shape of output to Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1)) " \
                        "is (1024, 6, 28, 28)."
    assert shapes[-2] == "Shape of output to Linear(in_features=84, out_features=10, " \
                         "bias=True) is (1024, 10)."
    assert shapes[-1].startswith("Shape of output to Net2(") and len(shapes) == 8  # pool runs twice


# -- changing_default_device.py -----------------------------------------------------------
def test_changing_default_device():
    USE_CUDA = False
    mod = torch.nn.Linear(20, 30)
    if USE_CUDA:
        mod.cuda()
    device = 'cpu'
    if USE_CUDA:
        device = 'cuda'
    inp = torch.randn(128, 20, device=device)
    assert str(mod(inp).device) == "cpu"
    # the recipe uses 'cuda'; the ports run without an accelerator, so 'meta' stands in
    with torch.device('meta'):
        mod = torch.nn.Linear(20, 30)
        assert str(mod.weight.device) == "meta"
        assert str(mod(torch.randn(128, 20)).device) == "meta"
    assert torch.randn(2).device.type == "cpu"
    torch.set_default_device('meta')
    try:
        mod = torch.nn.Linear(20, 30)
        assert str(mod.weight.device) == "meta"
        assert str(mod(torch.randn(128, 20)).device) == "meta"
        assert torch.get_default_device() == torch.device("meta")
    finally:
        torch.set_default_device(None)
    assert torch.randn(2).device.type == "cpu"
