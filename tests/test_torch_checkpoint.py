"""fw.load_torch_checkpoint: torch.save zip files read without PyTorch and without running
anything from the file. The files are written by tests/torch_zip_writer.py in PyTorch's
layout, anchored by the exact bytes PyTorch writes for a one-tensor dict."""

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.errors import DeviceError
from framework.serialization import CheckpointError
from tests import torch_zip_writer as tz

# data.pkl of torch.save({"w": torch.tensor([1., 2.])}, f): pickle protocol 2, the tensor
# as _rebuild_tensor_v2 over the persistent storage ("storage", FloatStorage, "0", "cpu", 2)
TORCH_DATA_PKL = (
    b"\x80\x02}q\x00X\x01\x00\x00\x00wq\x01ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07"
    b"\x00\x00\x00storageq\x03ctorch\nFloatStorage\nq\x04X\x01\x00\x00\x000q\x05X\x03\x00\x00"
    b"\x00cpuq\x06K\x02tq\x07QK\x00K\x02\x85q\x08K\x01\x85q\t\x89ccollections\nOrderedDict"
    b"\nq\n)Rq\x0btq\x0cRq\rs.")


def _zip(pkl: bytes, storages: dict, name="archive", byteorder="little"):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(f"{name}/data.pkl", pkl)
        z.writestr(f"{name}/byteorder", byteorder)
        for key, raw in storages.items():
            z.writestr(f"{name}/data/{key}", raw)
    buf.seek(0)
    return buf


def test_the_bytes_pytorch_writes_for_one_tensor():
    f = _zip(TORCH_DATA_PKL, {"0": struct.pack("<2f", 1.0, 2.0)})
    out = fw.load_torch_checkpoint(f)
    assert list(out) == ["w"] and out["w"].dtype == fw.float32
    np.testing.assert_array_equal(out["w"].numpy(), [1.0, 2.0])
    assert not out["w"].requires_grad
    # the test writer produces exactly those bytes for the same object
    st = tz.Storage(np.array([1.0, 2.0], np.float32), "0")
    with zipfile.ZipFile(tz.write({"w": tz.tensor(st)})) as z:
        assert z.read("archive/data.pkl") == TORCH_DATA_PKL


def _model():
    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 2 * 2, 3))


def _as_torch_state_dict(model):
    """The model's state dict as torch.save would pickle it: an OrderedDict of tensors over
    one storage each, with the ``_metadata`` attribute."""
    items = []
    for i, (k, v) in enumerate(model.state_dict().items()):
        arr = v.numpy()
        items.append((k, tz.tensor(tz.Storage(arr, str(i)), size=arr.shape)))
    meta = tz.ordered_dict([("", {"version": 1}), ("1", {"version": 2})])
    return tz.ordered_dict(items, metadata=meta)


def test_a_pytorch_state_dict_loads_into_the_twin_module(tmp_path):
    fw.manual_seed(0)
    src = _model()
    src[1].running_mean.copy_(fw.randn(4))
    src[1].num_batches_tracked.fill_(7)
    path = tmp_path / "model.pt"
    tz.write(_as_torch_state_dict(src), str(path), name="model")
    sd = fw.load_torch_checkpoint(path)
    assert list(sd) == list(src.state_dict())
    assert sd._metadata == {"": {"version": 1}, "1": {"version": 2}}
    assert sd["1.num_batches_tracked"].dtype == fw.int64 and sd["1.num_batches_tracked"].ndim == 0
    dst = _model()
    dst.load_state_dict(sd)
    x = fw.randn(2, 2, 4, 4)
    src.eval(), dst.eval()
    np.testing.assert_array_equal(dst(x).detach().numpy(), src(x).detach().numpy())


def test_views_of_one_storage_come_back_as_separate_tensors():
    base = np.arange(12, dtype=np.float32)
    st = tz.Storage(base, "0")
    obj = {"m": tz.tensor(st, size=(3, 4)),
           "t": tz.tensor(st, size=(4, 3), stride=(1, 4)),           # the transpose
           "row": tz.tensor(st, offset=4, size=(4,)),                 # m[1]
           "col": tz.tensor(st, offset=2, size=(3,), stride=(4,)),    # m[:, 2]
           "scalar": tz.tensor(st, offset=5, size=(), stride=())}
    out = fw.load_torch_checkpoint(tz.write(obj))
    m = base.reshape(3, 4)
    np.testing.assert_array_equal(out["t"].numpy(), m.T)
    np.testing.assert_array_equal(out["row"].numpy(), m[1])
    np.testing.assert_array_equal(out["col"].numpy(), m[:, 2])
    assert out["scalar"].shape == () and out["scalar"].item() == 5.0
    out["m"].add_(1)                        # own memory: the others do not change
    np.testing.assert_array_equal(out["row"].numpy(), m[1])


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16", "int64", "int32", "int8",
                                   "uint8", "bool", "complex64"])
def test_dtypes(dtype):
    np_dt = fw.dtypes.to_dtype(dtype).np
    arr = (np.arange(6) % 3).astype(np.float32).astype(np_dt).reshape(2, 3)
    out = fw.load_torch_checkpoint(tz.write([tz.tensor(tz.Storage(arr, "0"), size=(2, 3))]))
    assert out[0].dtype == fw.dtypes.to_dtype(dtype)
    np.testing.assert_array_equal(out[0].numpy(), arr)


def test_big_endian_files():
    arr = np.array([1.5, -2.0, 3.25], np.float32)
    f = tz.write({"x": tz.tensor(tz.Storage(arr, "0"))}, byteorder="big")
    np.testing.assert_array_equal(fw.load_torch_checkpoint(f)["x"].numpy(), arr)


def test_parameters_and_an_optimizer_checkpoint():
    fw.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = fw.optim.Adam(model.parameters(), lr=0.01)
    model(fw.randn(4, 3)).sum().backward()
    opt.step()
    state = opt.state_dict()

    def rec(t, key):
        return tz.tensor(tz.Storage(t.numpy(), key), size=tuple(t.shape))
    saved_state = {i: {"step": rec(s["step"], f"s{i}"), "exp_avg": rec(s["exp_avg"], f"a{i}"),
                       "exp_avg_sq": rec(s["exp_avg_sq"], f"q{i}")}
                   for i, s in state["state"].items()}
    groups = [dict(g, betas=tuple(g["betas"])) for g in state["param_groups"]]
    ckpt = {"epoch": 3, "best_acc": np.float64(0.75), "arch": "linear",
            "param": tz.parameter(rec(model.weight.detach(), "w")),
            "optimizer": {"state": saved_state, "param_groups": groups}}
    out = fw.load_torch_checkpoint(tz.write(ckpt))
    assert out["epoch"] == 3 and out["arch"] == "linear" and out["best_acc"] == 0.75
    assert isinstance(out["param"], nn.Parameter) and out["param"].requires_grad
    np.testing.assert_array_equal(out["param"].detach().numpy(), model.weight.detach().numpy())
    fresh = fw.optim.Adam(nn.Linear(3, 2).parameters(), lr=0.5)
    fresh.load_state_dict(out["optimizer"])
    assert fresh.param_groups[0]["lr"] == 0.01
    np.testing.assert_array_equal(fresh.state_dict()["state"][0]["exp_avg"].numpy(),
                                  state["state"][0]["exp_avg"].numpy())


def test_a_global_outside_the_allowlist_is_refused_and_never_called(tmp_path):
    marker = tmp_path / "ran"
    pkl = (b"\x80\x02cos\nsystem\nX" + struct.pack("<I", len(f"touch {marker}")) +
           f"touch {marker}".encode() + b"\x85R.")
    with pytest.raises(CheckpointError, match="os.system"):
        fw.load_torch_checkpoint(_zip(pkl, {}))
    assert not os.path.exists(marker)
    # a whole pickled module (torch.save(model)) names its class
    obj = tz._Reduce(tz.Global("mypackage.models", "ResNet"), ())
    with pytest.raises(CheckpointError, match=r"mypackage\.models\.ResNet.*state_dict"):
        fw.load_torch_checkpoint(tz.write(obj))


def test_cuda_tensors_need_a_device_or_map_location(monkeypatch):
    monkeypatch.setattr(fw.cuda, "is_available", lambda: False)
    st = tz.Storage(np.ones(3, np.float32), "0", location="cuda:0")
    with pytest.raises(DeviceError, match="map_location='cpu'"):
        fw.load_torch_checkpoint(tz.write({"x": tz.tensor(st)}))
    out = fw.load_torch_checkpoint(tz.write({"x": tz.tensor(st)}), map_location="cpu")
    assert out["x"].device == fw.device("cpu") and out["x"].sum().item() == 3.0
    # older files rebuild through _rebuild_tensor; map_location applies to them too
    old_style = tz._Reduce(tz.Global("torch._utils", "_rebuild_tensor"), (st, 0, (3,), (1,)))
    out = fw.load_torch_checkpoint(tz.write({"x": old_style}), map_location="cpu")
    assert out["x"].device == fw.device("cpu") and out["x"].sum().item() == 3.0


def test_broken_files_are_clear_errors():
    with pytest.raises(CheckpointError, match="not a zip archive"):
        fw.load_torch_checkpoint(io.BytesIO(pickle.dumps({"a": 1})))
    with pytest.raises(CheckpointError, match="no single data.pkl"):
        fw.load_torch_checkpoint(_no_pickle_zip())
    truncated = _zip(TORCH_DATA_PKL, {"0": struct.pack("<f", 1.0)})
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        fw.load_torch_checkpoint(truncated)
    missing = _zip(TORCH_DATA_PKL, {})
    with pytest.raises(CheckpointError, match="missing the storage"):
        fw.load_torch_checkpoint(missing)
    with pytest.raises(CheckpointError, match="corrupted data.pkl"):
        fw.load_torch_checkpoint(_zip(TORCH_DATA_PKL[:40], {}))
    st = tz.Storage(np.ones(4, np.float32), "0")
    with pytest.raises(CheckpointError, match="does not fit its storage"):
        fw.load_torch_checkpoint(tz.write([tz.tensor(st, offset=2, size=(3,))]))


def _no_pickle_zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "hello")
    buf.seek(0)
    return buf


def test_fw_load_points_at_the_torch_reader():
    with pytest.raises(CheckpointError, match="load_torch_checkpoint"):
        fw.load(_zip(TORCH_DATA_PKL, {"0": struct.pack("<2f", 1.0, 2.0)}))
