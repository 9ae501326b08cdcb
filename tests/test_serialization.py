"""fw.save / fw.load: safetensors checkpoints, round trips, atomic writes, bad files."""

import collections
import dataclasses
import io
import math
import os
import pickle
import zipfile

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy

import framework as fw
from framework import optim
from framework.errors import ArgumentError
from framework.serialization import CheckpointError


def test_nested_round_trip(tmp_path):
    sd = collections.OrderedDict([("z.weight", fw.randn(2, 3)), ("a.bias", fw.arange(3))])
    x = fw.ones(2, requires_grad=True)
    obj = {"model": sd, "step": 3, "lr": 1e-3, "inf": -math.inf, "nan": math.nan,
           "name": "run", "flag": True, "none": None, "tup": (1, "a", x), "same": x,
           0: "int key", (1, 2): "tuple key", "arr": np.arange(4, dtype=np.int16),
           "dt": fw.float16, "npf": np.float32(2.5), "raw": b"\x00\xff",
           "counter": collections.Counter({3: 2}), "list": [[1, 2.5], {"k": fw.zeros(())}],
           "bool_t": fw.tensor([True, False]), "empty": fw.zeros(0, 4)}
    path = tmp_path / "ck.safetensors"
    fw.save(obj, path)
    out = fw.load(path)
    assert list(out) == list(obj)
    assert type(out["model"]) is collections.OrderedDict and list(out["model"]) == list(sd)
    for k in sd:
        assert out["model"][k].dtype is sd[k].dtype
        np.testing.assert_array_equal(out["model"][k].numpy(), sd[k].numpy())
    assert out["step"] == 3 and type(out["step"]) is int and out["lr"] == 1e-3
    assert out["inf"] == -math.inf and math.isnan(out["nan"])
    assert out["name"] == "run" and out["flag"] is True and out["none"] is None
    assert out[0] == "int key" and out[(1, 2)] == "tuple key"
    assert isinstance(out["tup"], tuple) and out["tup"][2] is out["same"]
    assert out["same"].requires_grad and out["same"].is_leaf
    assert out["arr"].dtype == np.int16 and out["arr"].tolist() == [0, 1, 2, 3]
    assert out["dt"] is fw.float16 and out["npf"] == np.float32(2.5)
    assert out["raw"] == b"\x00\xff" and out["counter"] == collections.Counter({3: 2})
    assert out["list"][0] == [1, 2.5] and out["list"][1]["k"].shape == ()
    assert out["bool_t"].dtype is fw.bool and out["bool_t"].tolist() == [True, False]
    assert out["empty"].shape == (0, 4)


def test_file_is_plain_safetensors_with_state_dict_names(tmp_path):
    sd = {"fc.weight": fw.randn(2, 2), "fc.bias": fw.tensor([1.5, -2.0], dtype=fw.bfloat16)}
    path = tmp_path / "m.safetensors"
    fw.save(sd, path)
    raw = safetensors.numpy.load_file(str(path))
    assert set(raw) == {"fc.weight", "fc.bias"}
    np.testing.assert_array_equal(raw["fc.weight"], sd["fc.weight"].numpy())
    # bfloat16 is stored as its 16-bit pattern (safetensors.numpy has no bfloat16)
    assert raw["fc.bias"].dtype == np.uint16
    np.testing.assert_array_equal(raw["fc.bias"].view(ml_dtypes.bfloat16).astype(np.float32),
                                  [1.5, -2.0])
    back = fw.load(path)
    assert back["fc.bias"].dtype is fw.bfloat16


def test_foreign_safetensors_file_loads_as_tensor_dict(tmp_path):
    path = str(tmp_path / "hf.safetensors")
    safetensors.numpy.save_file({"b": np.ones(2, np.float32), "a": np.arange(3)}, path)
    out = fw.load(path)
    assert set(out) == {"a", "b"} and out["a"].dtype is fw.int64 and out["b"].tolist() == [1, 1]


def test_file_objects_and_map_location():
    buf = io.BytesIO()
    fw.save({"w": fw.ones(2)}, buf)
    buf.seek(0)
    seen = []

    def mover(t, location):
        seen.append(location)
        return t * 2

    assert fw.load(buf, map_location=mover)["w"].tolist() == [2.0, 2.0] and seen == ["cpu"]
    buf.seek(0)
    assert fw.load(buf, map_location="cpu")["w"].device.type == "cpu"
    buf.seek(0)
    assert fw.load(buf, map_location={"cuda:0": "cpu"})["w"].device.type == "cpu"
    buf.seek(0)
    with pytest.raises(ArgumentError, match="map_location"):
        fw.load(buf, map_location=3)


def test_views_are_saved_as_copies(tmp_path):
    base = fw.arange(6).float()
    view = base[2:]
    fw.save({"base": base, "view": view}, tmp_path / "v.safetensors")
    out = fw.load(tmp_path / "v.safetensors")
    out["base"].add_(100)
    assert out["view"].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_module_state_dict_and_parameters(tmp_path):
    a, b = fw.nn.Linear(3, 2), fw.nn.Linear(3, 2)
    fw.save(a.state_dict(), tmp_path / "lin.safetensors")
    b.load_state_dict(fw.load(tmp_path / "lin.safetensors"))
    x = fw.randn(4, 3)
    np.testing.assert_array_equal(a(x).detach().numpy(), b(x).detach().numpy())
    fw.save({"p": a.weight}, tmp_path / "p.safetensors")
    p = fw.load(tmp_path / "p.safetensors")["p"]
    assert type(p) is fw.nn.Parameter and p.requires_grad


def test_optimizer_and_scheduler_resume_through_a_checkpoint(tmp_path):
    rng = np.random.default_rng(0)
    grads = [[rng.standard_normal((3,)), rng.standard_normal((2, 2))] for _ in range(6)]

    def setup(values):
        ps = [fw.tensor(v, requires_grad=True) for v in values]
        opt = optim.AdamW([{"params": ps[:1]}, {"params": ps[1:], "lr": 0.05}], lr=0.1,
                          amsgrad=True)
        sched = optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.5)
        return ps, opt, sched

    def run(ps, opt, sched, steps):
        for gs in steps:
            for p, g in zip(ps, gs):
                p.grad = fw.tensor(g, dtype=p.dtype)
            opt.step()
            sched.step()

    ps, opt, sched = setup([rng.standard_normal((3,)), rng.standard_normal((2, 2))])
    run(ps, opt, sched, grads[:3])
    fw.save({"params": ps, "opt": opt.state_dict(), "sched": sched.state_dict()},
            tmp_path / "ck.safetensors")
    run(ps, opt, sched, grads[3:])
    ck = fw.load(tmp_path / "ck.safetensors")
    ps2, opt2, sched2 = setup([p.detach().numpy() for p in ck["params"]])
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    run(ps2, opt2, sched2, grads[3:])
    for a, b in zip(ps, ps2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.state[ps2[0]]["step"].dtype is fw.float32


def test_plateau_scheduler_state_with_infinity(tmp_path):
    opt = optim.SGD([fw.zeros(1, requires_grad=True)], lr=1.0)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt)
    fw.save(sched.state_dict(), tmp_path / "s.safetensors")
    assert fw.load(tmp_path / "s.safetensors")["best"] == math.inf


def test_unsupported_objects_are_rejected_with_their_path(tmp_path):
    with pytest.raises(ArgumentError, match=r"obj\['a'\]\[1\].*never pickles"):
        fw.save({"a": [1, object()]}, tmp_path / "x.safetensors")
    loop = []
    loop.append(loop)
    with pytest.raises(ArgumentError, match="cycle"):
        fw.save(loop, tmp_path / "x.safetensors")
    assert not os.path.exists(tmp_path / "x.safetensors")


def _listdir(path):
    return sorted(os.listdir(path))


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "ck.safetensors"
    fw.save({"w": fw.ones(3)}, path)
    before = path.read_bytes()

    def crash_mid_write(arrays, filename, metadata=None):
        with open(filename, "wb") as fh:
            fh.write(b"\x10\x00\x00\x00partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash_mid_write)
    with pytest.raises(OSError, match="disk full"):
        fw.save({"w": fw.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and _listdir(tmp_path) == ["ck.safetensors"]

    def no_rename(src, dst):
        raise KeyboardInterrupt  # a crash just before the rename

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(KeyboardInterrupt):
        fw.save({"w": fw.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before and _listdir(tmp_path) == ["ck.safetensors"]
    assert fw.load(path)["w"].tolist() == [1.0, 1.0, 1.0]
    fw.save({"w": fw.zeros(3)}, path)
    assert fw.load(path)["w"].tolist() == [0.0, 0.0, 0.0]
    assert _listdir(tmp_path) == ["ck.safetensors"]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_files_are_rejected_without_running_them(tmp_path, protocol):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"x": _Evil(str(marker))}, fh, protocol=protocol)
    with pytest.raises(CheckpointError, match="pickle file") as err:
        fw.load(path)
    assert str(path) in str(err.value) and isinstance(err.value, ValueError)
    assert not marker.exists()


def test_zip_and_garbage_files_are_rejected(tmp_path):
    zpath = tmp_path / "torch_style.pt"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(CheckpointError, match="zip archive"):
        fw.load(zpath)
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        fw.load(text)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="too short"):
        fw.load(empty)
    with pytest.raises(FileNotFoundError, match="no such file"):
        fw.load(tmp_path / "missing.safetensors")


def test_truncated_and_corrupted_files_are_rejected(tmp_path):
    path = tmp_path / "ck.safetensors"
    fw.save({"w": fw.randn(64), "meta": {"epoch": 3}}, path)
    data = path.read_bytes()
    header_len = int.from_bytes(data[:8], "little")
    for cut in (5, 8 + header_len // 2, 8 + header_len + 10, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="truncated|too short|corrupted") as err:
            fw.load(bad)
        assert str(bad) in str(err.value)
    flipped = bytearray(data)
    flipped[8] = ord("#")  # break the JSON header
    bad = tmp_path / "flipped.safetensors"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupted"):
        fw.load(bad)
    # a valid safetensors file whose structure points at a missing tensor
    safetensors.numpy.save_file({"x": np.ones(1, np.float32)}, str(tmp_path / "s.safetensors"),
                                metadata={"fw.structure": '{"$t": "tensor", "name": "y", '
                                          '"dtype": "float32"}'})
    with pytest.raises(CheckpointError, match="'y'"):
        fw.load(tmp_path / "s.safetensors")


@dataclasses.dataclass
class _Config:
    block_size: int = 8
    name: str = "tiny"
    dropout: float = 0.1


def test_dataclass_round_trip_needs_weights_only_false_or_an_allowed_class(tmp_path):
    """build-nanogpt saves ``{'model': sd, 'config': GPTConfig(...)}``: torch.save pickles
    it, and torch.load(weights_only=True) refuses the class unless it was allowed."""
    path = tmp_path / "ck.safetensors"
    fw.save({"config": _Config(block_size=16), "w": fw.ones(2)}, path)
    with pytest.raises(CheckpointError, match=r"_Config.*weights_only=False.*add_safe_globals"):
        fw.load(path)
    ck = fw.load(path, weights_only=False)
    assert ck["config"] == _Config(block_size=16) and type(ck["config"]) is _Config
    try:
        fw.serialization.add_safe_globals([_Config])
        assert fw.load(path)["config"] == _Config(block_size=16)
        assert fw.serialization.get_safe_globals() == [_Config]
    finally:
        fw.serialization.clear_safe_globals()
    with pytest.raises(ArgumentError, match="not a dataclass"):
        fw.serialization.add_safe_globals([dict])


def test_argparse_namespace_round_trip(tmp_path):
    """DiT's train.py and MAE's save_model put the script's ``args`` in the checkpoint:
    it comes back as a Namespace under PyTorch's weights_only rule."""
    import argparse
    args = argparse.Namespace(model="DiT-XL/2", lr=1e-4, sizes=(256, 512), ckpt=None)
    path = tmp_path / "ck.safetensors"
    fw.save({"model": {"w": fw.ones(2)}, "args": args}, path)
    with pytest.raises(CheckpointError, match=r"argparse.Namespace.*weights_only=False"):
        fw.load(path)
    ck = fw.load(path, weights_only=False)
    assert type(ck["args"]) is argparse.Namespace and ck["args"] == args
    try:
        fw.serialization.add_safe_globals([argparse.Namespace])
        assert fw.load(path)["args"].sizes == (256, 512)
    finally:
        fw.serialization.clear_safe_globals()
    with pytest.raises(ArgumentError, match=r"type object at obj\['n'\]\['x'\]"):
        fw.save({"n": argparse.Namespace(x=object())}, tmp_path / "bad.safetensors")
