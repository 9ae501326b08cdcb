"""``nn.Module``'s state-dict hooks, extra state, ``set_submodule``, ``to_empty``,
``Module.compile`` and ``load_state_dict(assign=True)``, against PyTorch's semantics."""

import copy
import warnings

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.nn.modules.module import ModuleAttributeError, StateDictError


def _net():
    """outer: "0" (Linear), "1" (Sequential) -> "1.0" (Linear)."""
    return nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Linear(3, 1)))


def _named(net):
    return {id(m): name for name, m in net.named_modules()}


# -- state_dict hooks -----------------------------------------------------------------------
def test_state_dict_hooks_order_and_arguments():
    net = _net()
    names, calls = _named(net), []
    for m in net.modules():
        m.register_state_dict_pre_hook(
            lambda mod, prefix, keep_vars: calls.append(("pre", names[id(mod)], prefix,
                                                         keep_vars)))

        def post(mod, sd, prefix, local_metadata):
            calls.append(("post", names[id(mod)], prefix, sorted(sd), local_metadata))
        m.register_state_dict_post_hook(post)
    sd = net.state_dict(keep_vars=True)
    assert [c[:3] for c in calls] == [
        ("pre", "", ""), ("pre", "0", "0."), ("post", "0", "0."), ("pre", "1", "1."),
        ("pre", "1.0", "1.0."), ("post", "1.0", "1.0."), ("post", "1", "1."), ("post", "", "")]
    assert all(c[3] is True for c in calls if c[0] == "pre")
    # a post-hook sees everything saved so far, its subtree included
    assert calls[2][3] == ["0.bias", "0.weight"]
    assert calls[-1][3] == sorted(sd) and calls[-1][4] == {"version": 1}
    assert sd["0.weight"] is net[0].weight  # keep_vars
    assert set(sd._metadata) == {"", "0", "1", "1.0"}


def test_state_dict_post_hook_edits_in_place_and_handles_remove():
    net = _net()

    def drop_bias(mod, sd, prefix, meta):
        del sd[prefix + "bias"]
    h = net[1][0].register_state_dict_post_hook(drop_bias)
    assert "1.0.bias" not in net.state_dict()
    h.remove()
    assert "1.0.bias" in net.state_dict()
    h.remove()  # idempotent
    with net.register_state_dict_post_hook(lambda *a: {"new": 1}):
        with pytest.raises(StateDictError, match="must return None"):
            net.state_dict()
    assert not net._state_dict_hooks


def test_private_state_dict_hook_may_replace_the_dict():
    lin = nn.Linear(2, 2)
    lin._register_state_dict_hook(lambda mod, sd, prefix, meta: {"only": sd["weight"]})
    assert list(lin.state_dict()) == ["only"]


def test_state_dict_destination_and_prefix():
    lin = nn.Linear(2, 2)
    dest = {"x": 1}
    out = lin.state_dict(destination=dest, prefix="enc.")
    assert out is dest and list(dest) == ["x", "enc.weight", "enc.bias"]
    assert not dest["enc.weight"].requires_grad


# -- load_state_dict hooks ------------------------------------------------------------------
def test_load_hooks_order_and_arguments():
    net = _net()
    sd = net.state_dict()
    names, calls = _named(net), []
    for m in net.modules():
        def pre(mod, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
            calls.append(("pre", names[id(mod)], prefix, sorted(state_dict), local_metadata,
                          strict, list(missing)))

        def post(mod, keys):
            calls.append(("post", names[id(mod)], list(keys.missing_keys)))
        m.register_load_state_dict_pre_hook(pre)
        m.register_load_state_dict_post_hook(post)
    del sd["1.0.bias"]
    res = net.load_state_dict(sd, strict=False)
    assert [c[:2] for c in calls] == [
        ("pre", ""), ("pre", "0"), ("post", "0"), ("pre", "1"), ("pre", "1.0"),
        ("post", "1.0"), ("post", "1"), ("post", "")]
    pre = {c[1]: c for c in calls if c[0] == "pre"}
    # each module sees the entries under its own prefix
    assert pre["1"][2] == "1." and pre["1"][3] == ["1.0.weight"]
    assert pre["0"][3] == ["0.bias", "0.weight"]
    assert pre[""][4] == {"version": 1} and pre["1.0"][4] == {"version": 1}
    assert all(c[5] is True for c in pre.values())  # PyTorch passes strict=True
    assert calls[-1] == ("post", "", ["1.0.bias"])
    assert res.missing_keys == ["1.0.bias"]


def test_load_pre_hook_renames_keys_and_leaves_callers_dict_alone():
    net = _net()
    want = {k: v + 1 for k, v in net.state_dict().items()}
    old = {k.replace("1.0.", "1.0.old_"): v for k, v in want.items()}

    def rename(mod, sd, prefix, meta, strict, missing, unexpected, errors):
        for k in [k for k in sd if k.startswith(prefix + "old_")]:
            sd[k.replace("old_", "")] = sd.pop(k)
    h = net[1][0].register_load_state_dict_pre_hook(rename)
    snapshot = dict(old)
    assert net.load_state_dict(old).missing_keys == []
    assert old == snapshot
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), want[k].numpy())
    h.remove()
    with pytest.raises(StateDictError, match="old_weight"):
        net.load_state_dict(old)


def test_private_load_pre_hook_is_called_without_module():
    lin = nn.Linear(2, 2)
    seen = []
    lin._register_load_state_dict_pre_hook(lambda sd, prefix, *rest: seen.append(
        (sorted(sd), prefix, len(rest))))
    lin.load_state_dict(lin.state_dict())
    assert seen == [(["bias", "weight"], "", 5)]


def test_load_post_hook_edits_incompatible_keys():
    net = _net()
    sd = net.state_dict()
    del sd["0.bias"]
    sd["junk"] = fw.zeros(1)
    with pytest.raises(StateDictError, match="Missing key.*0.bias"):
        net.load_state_dict(sd)

    def forgive(mod, keys):
        keys.missing_keys.clear()
        keys.unexpected_keys.remove("junk")
    h = net.register_load_state_dict_post_hook(forgive)
    res = net.load_state_dict(sd)  # strict, but the hook emptied both lists
    assert res.missing_keys == [] and res.unexpected_keys == []
    assert str(res) == "<All keys matched successfully>"
    h.remove()
    with net.register_load_state_dict_post_hook(lambda mod, keys: keys):
        with pytest.raises(StateDictError, match="must return None"):
            net.load_state_dict(net.state_dict())


# -- extra state ----------------------------------------------------------------------------
class Counter(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 2)
        self.meta = {"steps": 0, "name": "x", "hist": [1.5, 2.5], "t": fw.arange(3)}

    def get_extra_state(self):
        return self.meta

    def set_extra_state(self, state):
        self.meta = state


def test_extra_state_round_trip_through_checkpoint(tmp_path):
    src = nn.Sequential(Counter(), nn.ReLU())
    src[0].meta = {"steps": 7, "name": "run", "hist": [0.25, None], "t": fw.arange(4) * 2,
                   "nested": (1, "a")}
    sd = src.state_dict()
    assert list(sd) == ["0._extra_state", "0.lin.weight", "0.lin.bias"]  # own, then children
    fw.save(sd, tmp_path / "ck.safetensors")
    dst = nn.Sequential(Counter(), nn.ReLU())
    assert dst.load_state_dict(fw.load(tmp_path / "ck.safetensors")).missing_keys == []
    got = dst[0].meta
    assert (got["steps"], got["name"], got["hist"], got["nested"]) == (7, "run", [0.25, None],
                                                                      (1, "a"))
    assert got["t"].tolist() == [0, 2, 4, 6]
    np.testing.assert_array_equal(dst[0].lin.weight.detach().numpy(),
                                  src[0].lin.weight.detach().numpy())
    del sd["0._extra_state"]
    with pytest.raises(StateDictError, match='Missing key.*"0._extra_state"'):
        dst.load_state_dict(sd)


def test_extra_state_is_unexpected_without_set_extra_state():
    lin = nn.Linear(2, 2)
    sd = lin.state_dict()
    sd["_extra_state"] = 3
    assert lin.load_state_dict(sd, strict=False).unexpected_keys == ["_extra_state"]
    with pytest.raises(StateDictError):
        lin.get_extra_state()


# -- set_submodule --------------------------------------------------------------------------
def test_set_submodule_and_errors():
    net = _net()
    new = nn.Linear(3, 1)
    net.set_submodule("1.0", new)
    assert net[1][0] is new and net.get_submodule("1.0") is new
    net.set_submodule("extra", nn.ReLU())  # a new name is fine unless strict
    assert isinstance(net.extra, nn.ReLU)
    with pytest.raises(ModuleAttributeError, match="has no attribute `nope`") as ei:
        net.set_submodule("nope.0", nn.ReLU())
    assert isinstance(ei.value, AttributeError)
    with pytest.raises(AttributeError, match="has no attribute `missing`"):
        net.set_submodule("1.missing", nn.ReLU(), strict=True)
    with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
        net.set_submodule("0.weight", nn.ReLU())
    with pytest.raises(AttributeError, match="`weight` is not an nn.Module"):
        net.get_submodule("0.weight.x")
    with pytest.raises(ValueError, match="without a target name"):
        net.set_submodule("", nn.ReLU())
    with pytest.raises(ValueError, match="is not an nn.Module"):
        net.set_submodule("0", fw.zeros(1))


# -- to_empty -------------------------------------------------------------------------------
def test_to_empty_keeps_shapes_dtypes_requires_grad():
    net = nn.Sequential(nn.Linear(3, 2, device="meta", dtype=fw.float64),
                        nn.BatchNorm1d(2, device="meta"))
    net[0].bias.requires_grad_(False)
    before = [(n, t.shape, t.dtype, t.requires_grad, t) for n, t in
              list(net.named_parameters()) + list(net.named_buffers())]
    assert net.to_empty(device="cpu") is net
    after = dict(list(net.named_parameters()) + list(net.named_buffers()))
    for name, shape, dtype, rg, obj in before:
        t = after[name]
        assert (t.shape, t.dtype, t.requires_grad, str(t.device)) == (shape, dtype, rg, "cpu")
        if isinstance(obj, nn.Parameter):
            assert t is obj  # parameters stay the same objects
    assert net[1].num_batches_tracked.dtype is fw.int64
    net(fw.randn(4, 3, dtype=fw.float64))  # usable


def test_to_empty_without_recurse():
    net = nn.Sequential(nn.Linear(2, 2, device="meta"))
    net.register_parameter("own", nn.Parameter(fw.zeros(2, device="meta")))
    net.to_empty(device="cpu", recurse=False)
    assert str(net.own.device) == "cpu" and str(net[0].weight.device) == "meta"


# -- Module.compile -------------------------------------------------------------------------
def test_module_compile_matches_eager_and_trains():
    fw.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    ref = copy.deepcopy(model)
    assert model.compile(mode="always") is None
    x, y = fw.randn(5, 4), fw.randn(5, 2)
    np.testing.assert_allclose(model(x).detach().numpy(), ref(x).detach().numpy(), rtol=1e-6)
    for m in (model, ref):
        opt = fw.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            ((m(x) - y) ** 2).mean().backward()
            opt.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-6)
    stats = model._compiled_call_impl.stats()
    assert stats["captures"] >= 1 and stats["eager_calls"] == 0
    # state changes reach the compiled call: copied and assigned weights
    sd = {k: v * 2 for k, v in ref.state_dict().items()}
    model.load_state_dict(sd)
    ref.load_state_dict(sd)
    np.testing.assert_allclose(model(x).detach().numpy(), ref(x).detach().numpy(), rtol=1e-5)
    sd = {k: v + 1 for k, v in sd.items()}
    model.load_state_dict(sd, assign=True)
    ref.load_state_dict(sd, assign=True)
    np.testing.assert_allclose(model(x).detach().numpy(), ref(x).detach().numpy(), rtol=1e-5)
    assert "_compiled_call_impl" not in copy.deepcopy(model).__dict__  # copies run eager


# -- load_state_dict(assign=True) ----------------------------------------------------------
def test_load_state_dict_assign_identity():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    net[0].bias.requires_grad_(False)
    w = nn.Parameter(fw.ones(2, 2), requires_grad=False)
    b = fw.zeros(2, dtype=fw.float64)
    rm = fw.full((2,), 3.0)
    sd = dict(net.state_dict(), **{"0.weight": w, "0.bias": b, "1.running_mean": rm})
    net.load_state_dict(sd, assign=True)
    assert net[0].weight is w and w.requires_grad  # a Parameter is taken as is
    assert isinstance(net[0].bias, nn.Parameter) and net[0].bias.dtype is fw.float64
    assert not net[0].bias.requires_grad  # keeps the module's requires_grad
    assert net[1].running_mean is rm  # buffers: the tensor itself
    with fw.no_grad():
        b.add_(5.0)
    assert net[0].bias.tolist() == [5.0, 5.0]  # shares the given tensor's storage
    with pytest.raises(StateDictError, match="size mismatch"):
        net.load_state_dict(dict(sd, **{"0.weight": fw.ones(3, 2)}), assign=True)


# -- weight_norm: legacy checkpoints -------------------------------------------------------
def test_old_weight_norm_checkpoint_loads_into_parametrization(tmp_path):
    fw.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        old = nn.Sequential(nn.utils.weight_norm(nn.Linear(4, 3)))
    with fw.no_grad():
        old[0].weight_g.mul_(2.0)
    old_sd = old.state_dict()
    assert sorted(old_sd) == ["0.bias", "0.weight_g", "0.weight_v"]
    fw.save(old_sd, tmp_path / "old.safetensors")
    new = nn.Sequential(nn.utils.parametrizations.weight_norm(nn.Linear(4, 3)))
    res = new.load_state_dict(fw.load(tmp_path / "old.safetensors"))
    assert res.missing_keys == [] and res.unexpected_keys == []
    pw = new[0].parametrizations.weight
    np.testing.assert_array_equal(pw.original0.detach().numpy(),
                                  old_sd["0.weight_g"].numpy())
    np.testing.assert_array_equal(pw.original1.detach().numpy(),
                                  old_sd["0.weight_v"].numpy())
    x = fw.randn(2, 4)
    old(x)  # the legacy pre-hook recomputes weight
    np.testing.assert_allclose(new(x).detach().numpy(), old(x).detach().numpy(), rtol=1e-6)
    # new-style checkpoints still load as before
    assert new.load_state_dict(new.state_dict()).missing_keys == []
