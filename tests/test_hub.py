"""fw.hub: weight downloads into a cache (file:// URLs stand in for the network)."""

import hashlib
import os

import numpy as np
import pytest

import framework as fw
from framework import nn
from framework.serialization import CheckpointError
from tests import torch_zip_writer as tz


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(fw.hub, "_hub_dir", None)
    monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FW_HUB", raising=False)
    return tmp_path / "home" / "hub"


def _torch_file(path, model):
    items = [(k, tz.tensor(tz.Storage(v.numpy(), str(i)), size=tuple(v.shape)))
             for i, (k, v) in enumerate(model.state_dict().items())]
    tz.write(tz.ordered_dict(items), str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    named = path.with_name(f"linear-{digest[:8]}.pth")
    path.rename(named)
    return named


def test_get_dir_follows_the_environment_and_set_dir(hub_dir, tmp_path, monkeypatch):
    assert fw.hub.get_dir() == str(hub_dir)
    monkeypatch.setenv("FW_HUB", str(tmp_path / "elsewhere"))
    assert fw.hub.get_dir() == str(tmp_path / "elsewhere")
    fw.hub.set_dir(tmp_path / "mine")
    assert fw.hub.get_dir() == str(tmp_path / "mine")


def test_load_state_dict_from_url_downloads_once_and_checks_the_hash(hub_dir, tmp_path, capsys):
    fw.manual_seed(0)
    src = nn.Linear(3, 2)
    served = _torch_file(tmp_path / "w.pth", src)
    url = served.as_uri()
    sd = fw.hub.load_state_dict_from_url(url, check_hash=True)
    cached = hub_dir / "checkpoints" / served.name
    assert cached.exists() and "Downloading" in capsys.readouterr().err
    dst = nn.Linear(3, 2)
    dst.load_state_dict(sd)
    np.testing.assert_array_equal(dst.weight.detach().numpy(), src.weight.detach().numpy())
    served.write_bytes(b"changed on the server")          # the cache is used, not the URL
    again = fw.hub.load_state_dict_from_url(url, progress=False)
    np.testing.assert_array_equal(again["bias"].numpy(), src.bias.detach().numpy())


def test_a_download_whose_hash_differs_is_refused_and_not_kept(hub_dir, tmp_path):
    src = tmp_path / "linear-deadbeef.pth"
    src.write_bytes(b"not what the name promises")
    with pytest.raises(CheckpointError, match="does not start with the expected 'deadbeef'"):
        fw.hub.load_state_dict_from_url(src.as_uri(), check_hash=True, progress=False)
    assert not (hub_dir / "checkpoints" / src.name).exists()
    assert os.listdir(hub_dir / "checkpoints") == []        # no partial file either


def test_safetensors_urls_and_file_name(hub_dir, tmp_path):
    path = tmp_path / "weights.safetensors"
    fw.save({"w": fw.ones(2)}, str(path))
    out = fw.hub.load_state_dict_from_url(path.as_uri(), model_dir=tmp_path / "models",
                                          file_name="renamed.safetensors", progress=False)
    assert (tmp_path / "models" / "renamed.safetensors").exists()
    np.testing.assert_array_equal(out["w"].numpy(), [1.0, 1.0])


def test_hubconf_entry_points_say_what_to_do_instead():
    for fn in (fw.hub.load, fw.hub.list, fw.hub.help):
        with pytest.raises(NotImplementedError, match="load_state_dict_from_url"):
            fn("pytorch/vision", "resnet18")
