"""nn.Module semantics: registration, iteration, modes, dtype moves, state dicts, hooks,
repr, containers and Parameter."""

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import FwIndexError
from framework.nn.modules.module import StateDictError


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.register_buffer("steps", fw.zeros(()))
        self.register_buffer("scratch", fw.ones(2), persistent=False)
        self.scale = nn.Parameter(fw.ones(1))

    def forward(self, x):
        return self.bn(self.fc(x)) * self.scale


# -- registration ------------------------------------------------------------------------
def test_setattr_registers_parameters_modules_buffers():
    b = Block()
    assert list(b._parameters) == ["scale"]
    assert list(b._modules) == ["fc", "bn"]
    assert list(b._buffers) == ["steps", "scratch"]
    assert [n for n, _ in b.named_parameters()] == ["scale", "fc.weight", "fc.bias",
                                                    "bn.weight", "bn.bias"]
    assert [n for n, _ in b.named_buffers()] == [
        "steps", "scratch", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in b.named_children()] == ["fc", "bn"]
    assert [n for n, _ in b.named_modules()] == ["", "fc", "bn"]
    assert len(list(b.parameters())) == 5 and len(list(b.buffers())) == 5
    assert list(b.children())[0] is b.fc


def test_setattr_type_rules_and_delattr():
    b = Block()
    with pytest.raises(TypeError, match="cannot assign .* as parameter 'scale'"):
        b.scale = fw.ones(1)
    b.scale = None
    assert b.scale is None and "scale" in b._parameters
    assert [n for n, _ in b.named_parameters()][0] == "fc.weight"
    with pytest.raises(TypeError, match="child module 'fc'"):
        b.fc = 3
    b.steps = fw.full((), 5.0)   # plain tensor re-assigned to a buffer stays a buffer
    assert "steps" in b._buffers and float(b.steps) == 5.0
    with pytest.raises(TypeError, match="buffer 'steps'"):
        b.steps = 3
    b.fc = nn.Identity()
    assert isinstance(b._modules["fc"], nn.Identity)
    del b.bn
    assert "bn" not in b._modules
    with pytest.raises(AttributeError, match="no attribute 'bn'"):
        b.bn
    b.plain = 3  # ordinary attribute
    assert b.plain == 3 and "plain" not in b._parameters


def test_register_errors():
    m = nn.Module()
    with pytest.raises(KeyError, match="contain"):
        m.register_buffer("a.b", fw.zeros(1))
    with pytest.raises(TypeError):
        m.register_parameter("w", fw.zeros(1))
    with pytest.raises(TypeError, match="not a Module subclass"):
        m.add_module("x", 3)
    m.add_module("lin", nn.Linear(2, 2))
    assert m.get_submodule("lin") is m.lin and m.get_parameter("lin.bias") is m.lin.bias

    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(fw.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        NoInit()
    with pytest.raises(NotImplementedError, match="forward"):
        nn.Module()(1)


def test_shared_parameters_listed_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert len(list(seq.named_modules())) == 3
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


# -- modes, dtype, grads ----------------------------------------------------------------
def test_train_eval_apply_requires_grad():
    b = Block()
    assert b.training and b.bn.training
    b.eval()
    assert not b.training and not b.fc.training
    b.train()
    assert b.bn.training
    seen = []
    b.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "BatchNorm1d", "Block"]
    b.requires_grad_(False)
    assert not any(p.requires_grad for p in b.parameters())


def test_to_dtype_keeps_parameter_identity():
    b = Block()
    w = b.fc.weight
    before = w.detach().numpy().copy()
    b.to(fw.float64)
    assert b.fc.weight is w and w.dtype is fw.float64 and isinstance(w, nn.Parameter)
    assert w.requires_grad
    np.testing.assert_allclose(w.detach().numpy(), before, rtol=1e-7)
    assert b.bn.running_mean.dtype is fw.float64
    assert b.bn.num_batches_tracked.dtype is fw.int64  # integer buffers keep their dtype
    b.float()
    assert w.dtype is fw.float32
    with pytest.raises(ValueError, match="floating point"):
        b.to(fw.int32)
    out = b.double()(fw.randn(5, 3, dtype=fw.float64))
    assert out.dtype is fw.float64


def test_zero_grad():
    lin = nn.Linear(3, 2)
    lin(fw.randn(4, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert np.all(lin.weight.grad.numpy() == 0)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None


def test_zero_grad_keep_buffers_like_pytorch():
    """set_to_none=False zeroes the same grad object in place; a grad recorded with
    create_graph is detached in place (detach_), a leaf grad that requires grad stops."""
    lin = nn.Linear(3, 2)
    lin(fw.randn(4, 3)).pow(2).sum().backward(create_graph=True)
    g = lin.weight.grad
    assert g.grad_fn is not None
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad is g and g.grad_fn is None and not g.requires_grad
    assert np.all(g.numpy() == 0)
    lin.bias.grad = fw.ones(2, requires_grad=True)
    b = lin.bias.grad
    lin.zero_grad(set_to_none=False)
    assert lin.bias.grad is b and not b.requires_grad and np.all(b.numpy() == 0)


# -- state dict -------------------------------------------------------------------------
def test_state_dict_round_trip():
    a, b = Block(), Block()
    sd = a.state_dict()
    assert list(sd) == ["scale", "steps", "fc.weight", "fc.bias", "bn.weight", "bn.bias",
                        "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert "scratch" not in sd  # non-persistent
    assert not sd["fc.weight"].requires_grad
    assert all(p.requires_grad for p in a.state_dict(keep_vars=True).values()
               if isinstance(p, nn.Parameter))
    res = b.load_state_dict(sd)
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert repr(res) == "<All keys matched successfully>"
    x = fw.randn(6, 3)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    # loading copies values: later changes to the source don't leak
    with fw.no_grad():
        a.fc.weight.add_(1.0)
    assert not np.array_equal(a.fc.weight.detach().numpy(), b.fc.weight.detach().numpy())


def test_load_numpy_state_dict_with_pytorch_keys():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    rng = np.random.default_rng(0)
    sd = {"0.weight": rng.standard_normal((4, 3)).astype(np.float32),
          "0.bias": rng.standard_normal(4).astype(np.float32),
          "2.weight": rng.standard_normal((2, 4)).astype(np.float32),
          "2.bias": rng.standard_normal(2).astype(np.float32)}
    model.load_state_dict(sd)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    want = np.tanh(x @ sd["0.weight"].T + sd["0.bias"]) @ sd["2.weight"].T + sd["2.bias"]
    np.testing.assert_allclose(model(fw.tensor(x)).detach().numpy(), want, rtol=1e-5,
                               atol=1e-6)


def test_load_numpy_state_dict_norm_and_embedding_keys():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(5, 3)
            self.bn = nn.BatchNorm1d(3)
            self.ln = nn.LayerNorm(3)

        def forward(self, idx):
            return self.ln(self.bn(self.emb(idx)))

    rng = np.random.default_rng(1)
    sd = {"emb.weight": rng.standard_normal((5, 3)).astype(np.float32),
          "bn.weight": rng.uniform(0.5, 2, 3).astype(np.float32),
          "bn.bias": rng.standard_normal(3).astype(np.float32),
          "bn.running_mean": rng.standard_normal(3).astype(np.float32),
          "bn.running_var": rng.uniform(0.5, 2, 3).astype(np.float32),
          "bn.num_batches_tracked": np.array(7, np.int64),
          "ln.weight": rng.uniform(0.5, 2, 3).astype(np.float32),
          "ln.bias": rng.standard_normal(3).astype(np.float32)}
    net = Net()
    assert sorted(net.state_dict()) == sorted(sd)
    net.load_state_dict(sd)
    net.eval()
    idx = np.array([0, 4, 2])
    h = sd["emb.weight"][idx]
    h = (h - sd["bn.running_mean"]) / np.sqrt(sd["bn.running_var"] + 1e-5) * sd["bn.weight"] \
        + sd["bn.bias"]
    h = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5) * \
        sd["ln.weight"] + sd["ln.bias"]
    np.testing.assert_allclose(net(fw.tensor(idx)).detach().numpy(), h, rtol=1e-5, atol=1e-5)
    assert int(net.bn.num_batches_tracked) == 7


def test_load_state_dict_strict_errors_name_keys():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    del sd["1.bias"]
    sd["1.extra"] = np.zeros(1, np.float32)
    sd["0.weight"] = np.zeros((5, 3), np.float32)
    with pytest.raises(StateDictError) as ei:
        model.load_state_dict(sd)
    msg = str(ei.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    assert 'Missing key(s) in state_dict: "1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "1.extra"' in msg
    assert "size mismatch for 0.weight" in msg and "[5, 3]" in msg and "[4, 3]" in msg
    assert isinstance(ei.value, RuntimeError)
    with pytest.raises(StateDictError, match="size mismatch"):  # raises even non-strict
        model.load_state_dict(sd, strict=False)
    del sd["0.weight"]
    res = model.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["0.weight", "1.bias"] and res.unexpected_keys == ["1.extra"]
    sd2 = {"0.weight": np.zeros((4, 3), np.float32), "bogus": np.zeros(1)}
    res = model.load_state_dict(sd2, strict=False)
    assert np.all(model[0].weight.detach().numpy() == 0)
    assert res.unexpected_keys == ["bogus"] and "0.bias" in res.missing_keys
    with pytest.raises(StateDictError, match="bogus"):
        model.load_state_dict(sd2)


def test_load_state_dict_assign():
    lin = nn.Linear(2, 2)
    w = fw.ones(2, 2, dtype=fw.float64)
    lin.load_state_dict({"weight": w, "bias": np.zeros(2)}, assign=True)
    assert isinstance(lin.weight, nn.Parameter) and lin.weight.dtype is fw.float64
    assert lin.weight.requires_grad
    with fw.no_grad():
        w.add_(1.0)
    assert lin.weight.tolist() == [[2.0, 2.0], [2.0, 2.0]]  # holds the given tensor


def test_nonpersistent_buffer_in_state_dict_is_unexpected():
    b = Block()
    sd = b.state_dict()
    sd["scratch"] = fw.ones(2)
    with pytest.raises(StateDictError, match='Unexpected key.*"scratch"'):
        b.load_state_dict(sd)


# -- hooks --------------------------------------------------------------------------------
def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(out.shape) or out + 1)
    out = lin(fw.ones(3, 2))
    np.testing.assert_allclose(out.detach().numpy(),
                               np.broadcast_to(lin.bias.detach().numpy() + 1, (3, 2)))
    assert calls == [(3, 2)]
    h1.remove(), h2.remove()
    out2 = lin(fw.ones(3, 2))
    assert not np.allclose(out2.detach().numpy(), out.detach().numpy())
    assert calls == [(3, 2)]

    def kw_hook(m, args, kwargs):
        return args, kwargs
    with lin.register_forward_pre_hook(kw_hook, with_kwargs=True):
        lin(fw.ones(1, 2))


# -- repr -----------------------------------------------------------------------------------
def test_repr_matches_pytorch():
    model = nn.Sequential(OrderedDict([
        ("embed", nn.Embedding(10, 4, padding_idx=0)),
        ("body", nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(), nn.Dropout(0.1))),
        ("heads", nn.ModuleList([nn.Linear(8, 2) for _ in range(3)])),
        ("act", nn.LeakyReLU(0.2, inplace=True)),
        ("bn", nn.BatchNorm1d(8, momentum=None)),
    ]))
    expected = """Sequential(
  (embed): Embedding(10, 4, padding_idx=0)
  (body): Sequential(
    (0): Linear(in_features=4, out_features=8, bias=True)
    (1): LayerNorm((8,), eps=1e-05, elementwise_affine=True)
    (2): GELU(approximate='none')
    (3): Dropout(p=0.1, inplace=False)
  )
  (heads): ModuleList(
    (0-2): 3 x Linear(in_features=8, out_features=2, bias=True)
  )
  (act): LeakyReLU(negative_slope=0.2, inplace=True)
  (bn): BatchNorm1d(8, eps=1e-05, momentum=None, affine=True, track_running_stats=True)
)"""
    assert repr(model) == expected
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.ReLU6()) == "ReLU6()"
    assert repr(nn.Hardtanh(-2.0, 2.0)) == "Hardtanh(min_val=-2.0, max_val=2.0)"
    assert repr(nn.Softmax(dim=-1)) == "Softmax(dim=-1)"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
    assert repr(nn.GroupNorm(2, 4)) == "GroupNorm(2, 4, eps=1e-05, affine=True)"
    assert repr(nn.Linear(2, 3, bias=False)) == "Linear(in_features=2, out_features=3, bias=False)"


def test_parameter():
    p = nn.Parameter(fw.tensor([1.0, 2.0]))
    assert p.requires_grad and p.is_leaf and isinstance(p, fw.Tensor)
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"
    q = nn.Parameter(fw.zeros(2), requires_grad=False)
    assert not q.requires_grad
    y = p * 2
    assert type(y) is fw.Tensor
    c = copy.deepcopy(p)
    assert isinstance(c, nn.Parameter) and c is not p and c.requires_grad
    r = pickle.loads(pickle.dumps(p))
    assert isinstance(r, nn.Parameter) and r.tolist() == [1.0, 2.0]
    src = fw.zeros(3)
    shared = nn.Parameter(src)
    with fw.no_grad():
        shared.add_(1.0)
    assert src.tolist() == [1.0, 1.0, 1.0]  # shares storage like PyTorch
    m = copy.deepcopy(Block())
    assert isinstance(m.fc.weight, nn.Parameter)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).eval()
    twin = pickle.loads(pickle.dumps(model))
    x = fw.randn(4, 2)
    assert isinstance(twin[0].weight, nn.Parameter) and twin[0].weight.requires_grad
    np.testing.assert_array_equal(twin(x).detach().numpy(), model(x).detach().numpy())


# -- containers -----------------------------------------------------------------------------
def test_sequential_ops():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    s = nn.Sequential(a, b, c)
    assert len(s) == 3 and s[0] is a and s[-1] is c and list(s) == [a, b, c]
    sub = s[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub._modules) == ["1", "2"]  # slicing keeps the original keys
    s.append(nn.Sigmoid())
    assert len(s) == 4 and isinstance(s[3], nn.Sigmoid)
    with pytest.raises(FwIndexError):
        s[7]
    del s[1]
    assert list(s._modules) == ["0", "1", "2"] and s[1] is c
    s.insert(1, nn.Tanh())
    assert isinstance(s[1], nn.Tanh)
    s[0] = nn.Identity()
    assert isinstance(s[0], nn.Identity)
    out = nn.Sequential(a, b, c)(fw.randn(5, 2))
    assert out.shape == (5, 1)
    assert len(nn.Sequential(a) + nn.Sequential(c)) == 2


def test_modulelist_moduledict():
    ml = nn.ModuleList([nn.Linear(1, 1), nn.ReLU()])
    ml.append(nn.Tanh())
    ml.extend([nn.Sigmoid()])
    ml += [nn.Identity()]
    assert len(ml) == 5 and isinstance(ml[-1], nn.Identity) and isinstance(ml[1:3], nn.ModuleList)
    assert [n for n, _ in ml.named_parameters()] == ["0.weight", "0.bias"]
    with pytest.raises(TypeError):
        ml.extend(nn.ReLU())
    md = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.ReLU()})
    md["c"] = nn.Tanh()
    assert list(md.keys()) == ["a", "b", "c"] and "a" in md and len(md) == 3
    assert [n for n, _ in md.named_parameters()] == ["a.weight", "a.bias"]
    md.pop("b")
    assert list(md) == ["a", "c"]
    assert repr(nn.ModuleList()) == "ModuleList()"


def test_parameterlist_parameterdict():
    pl = nn.ParameterList([nn.Parameter(fw.zeros(2)), fw.ones(3)])
    assert isinstance(pl[1], nn.Parameter) and pl[1].requires_grad
    pl.append(fw.zeros(1, 2))
    assert [n for n, _ in pl.named_parameters()] == ["0", "1", "2"] and len(pl) == 3
    assert repr(pl) == ("ParameterList(\n"
                        "    (0): Parameter containing: [framework.float32 of size 2]\n"
                        "    (1): Parameter containing: [framework.float32 of size 3]\n"
                        "    (2): Parameter containing: [framework.float32 of size 1x2]\n)")
    pd = nn.ParameterDict({"w": fw.zeros(2)})
    pd["b"] = nn.Parameter(fw.ones(1))
    assert list(pd.keys()) == ["w", "b"] and isinstance(pd["w"], nn.Parameter)
    assert [n for n, _ in pd.named_parameters()] == ["w", "b"]
    assert list(dict(pd.state_dict())) == ["w", "b"]
    del pd["w"]
    assert list(pd) == ["b"]


def test_buffer_class_and_to_device_noop():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.stat = nn.Buffer(fw.zeros(2), persistent=False)

    m = M()
    assert "stat" in m._buffers and "stat" not in m.state_dict()
    assert m.to("cpu") is m


def test_full_backward_hooks():
    lin = nn.Linear(3, 2).double()
    seen = []

    def hook(m, grad_input, grad_output):
        seen.append((m, tuple(g.shape for g in grad_input), tuple(g.shape for g in grad_output)))
        return (grad_input[0] * 10,)

    h = lin.register_full_backward_hook(hook)
    x = fw.randn(4, 3, dtype=fw.float64, requires_grad=True)
    lin(x).sum().backward()
    assert seen == [(lin, ((4, 3),), ((4, 2),))]
    w = lin.weight.detach().numpy()
    np.testing.assert_allclose(x.grad.numpy(), np.tile(10 * w.sum(0), (4, 1)))
    h.remove()
    # inputs without grad: the hook still fires, with grad_input of None
    raw = []
    h = lin.register_full_backward_hook(lambda m, gi, go: raw.append((gi, go[0].shape)))
    lin(fw.randn(4, 3, dtype=fw.float64)).sum().backward()
    assert raw == [((None,), (4, 2))]
    h.remove()
    pre = lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 3,))
    lin.zero_grad()
    lin(fw.randn(5, 3, dtype=fw.float64)).sum().backward()
    np.testing.assert_allclose(lin.bias.grad.numpy(), [15.0, 15.0])
    pre.remove()
    lin.zero_grad()
    lin(fw.randn(5, 3, dtype=fw.float64)).sum().backward()
    np.testing.assert_allclose(lin.bias.grad.numpy(), [5.0, 5.0])
    with pytest.raises(NotImplementedError, match="full"):
        lin.register_backward_hook(hook)


@pytest.mark.parametrize("module, text", [
    (lambda: nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (lambda: nn.ReLU6(inplace=True), "ReLU6(inplace=True)"),
    (lambda: nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (lambda: nn.ELU(), "ELU(alpha=1.0)"),
    (lambda: nn.CELU(alpha=0.5, inplace=True), "CELU(alpha=0.5, inplace=True)"),
    (lambda: nn.SELU(), "SELU()"),
    (lambda: nn.GELU(approximate="tanh"), "GELU(approximate='tanh')"),
    (lambda: nn.SiLU(), "SiLU()"),
    (lambda: nn.Mish(), "Mish()"),
    (lambda: nn.Hardsigmoid(), "Hardsigmoid()"),
    (lambda: nn.Hardswish(), "Hardswish()"),
    (lambda: nn.Softplus(), "Softplus(beta=1.0, threshold=20.0)"),
    (lambda: nn.LogSoftmax(), "LogSoftmax(dim=None)"),
    (lambda: nn.GLU(), "GLU(dim=-1)"),
    (lambda: nn.PReLU(), "PReLU(num_parameters=1)"),
    (lambda: nn.Hardtanh(), "Hardtanh(min_val=-1.0, max_val=1.0)"),
    (lambda: nn.Threshold(0.1, 20), "Threshold(threshold=0.1, value=20)"),
    (lambda: nn.Softshrink(), "Softshrink(0.5)"),
    (lambda: nn.Sigmoid(), "Sigmoid()"),
    (lambda: nn.Identity(), "Identity()"),
    (lambda: nn.Dropout2d(0.25), "Dropout2d(p=0.25, inplace=False)"),
    (lambda: nn.BatchNorm2d(4), "BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, "
                                "track_running_stats=True)"),
    (lambda: nn.LayerNorm((2, 3)), "LayerNorm((2, 3), eps=1e-05, elementwise_affine=True)"),
    (lambda: nn.Embedding(5, 2), "Embedding(5, 2)"),
    (lambda: nn.Bilinear(2, 3, 4), "Bilinear(in1_features=2, in2_features=3, "
                                   "out_features=4, bias=True)"),
    (lambda: nn.MSELoss(reduction="sum"), "MSELoss()"),
])
def test_layer_reprs(module, text):
    assert repr(module()) == text


def test_batchnorm_loads_state_dict_without_num_batches_tracked():
    src = nn.BatchNorm1d(3)
    src(fw.randn(4, 3))
    old = {k: v.numpy() for k, v in src.state_dict().items() if k != "num_batches_tracked"}
    dst = nn.Sequential(nn.BatchNorm1d(3))
    res = dst.load_state_dict({"0." + k: v for k, v in old.items()})
    assert not res.missing_keys and not res.unexpected_keys
    assert np.allclose(dst[0].running_mean.numpy(), src.running_mean.numpy())
    assert dst[0].num_batches_tracked.item() == 0
    with pytest.raises(Exception, match="running_var"):
        dst.load_state_dict({"0.weight": old["weight"], "0.bias": old["bias"],
                             "0.running_mean": old["running_mean"]})
