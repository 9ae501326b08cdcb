"""``torch.hub``'s weight downloads: :func:`load_state_dict_from_url` fetches a checkpoint once
into a cache directory and loads it (a ``torch.save`` file through
:func:`framework.load_torch_checkpoint`, a safetensors file through :func:`framework.load`).

``hub.load`` / ``hub.list`` / ``hub.help`` are not here: they import a GitHub repository's
``hubconf.py``, which builds PyTorch modules.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request

from .errors import ArgumentError
from .serialization import CheckpointError

_hub_dir: str | None = None
HASH_REGEX = re.compile(r"-([a-f0-9]*)\.")  # "resnet18-f37072fd.pth": a sha256 prefix


def get_dir() -> str:
    """The hub cache directory: :func:`set_dir`'s, else ``$FW_HUB``, else
    ``$FW_HOME/hub`` (``$FW_HOME`` defaults to ``$XDG_CACHE_HOME/framework``, i.e.
    ``~/.cache/framework``)."""
    if _hub_dir is not None:
        return _hub_dir
    if os.environ.get("FW_HUB"):
        return os.path.expanduser(os.environ["FW_HUB"])
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.environ.get("FW_HOME", os.path.join(cache, "framework"))
    return os.path.join(os.path.expanduser(home), "hub")


def set_dir(d) -> None:
    """Use ``d`` as the hub cache directory."""
    global _hub_dir
    _hub_dir = os.path.expanduser(os.fspath(d))


def download_url_to_file(url: str, dst, hash_prefix: str | None = None,
                         progress: bool = True) -> None:
    """Download ``url`` to the file ``dst`` (through a temporary file beside it, renamed
    only once complete). With ``hash_prefix``, the download's SHA-256 must start with it, or
    a :class:`~framework.serialization.CheckpointError` is raised and nothing is kept."""
    dst = os.path.expanduser(os.fspath(dst))
    folder = os.path.dirname(os.path.abspath(dst))
    os.makedirs(folder, exist_ok=True)
    sha = hashlib.sha256()
    with urllib.request.urlopen(url) as response:  # noqa: S310  (the user's URL)
        total = response.headers.get("Content-Length") if hasattr(response, "headers") else None
        total = int(total) if total else None
        tmp = tempfile.NamedTemporaryFile(delete=False, dir=folder, suffix=".partial")
        try:
            done = 0
            with tmp:
                while True:
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    tmp.write(chunk)
                    sha.update(chunk)
                    done += len(chunk)
                    if progress:
                        _report(done, total)
            if progress:
                sys.stderr.write("\n")
            if hash_prefix is not None and not sha.hexdigest().startswith(hash_prefix):
                raise CheckpointError(f"hub: the download of {url!r} has SHA-256 "
                                      f"{sha.hexdigest()[:16]}..., which does not start with "
                                      f"the expected {hash_prefix!r} (corrupted or replaced)")
            shutil.move(tmp.name, dst)
        finally:
            if os.path.exists(tmp.name):
                os.remove(tmp.name)


def _report(done: int, total: int | None) -> None:
    mb = done / 2 ** 20
    if total:
        sys.stderr.write(f"\r{100 * done // total:3d}% {mb:.1f} / {total / 2 ** 20:.1f} MB")
    else:
        sys.stderr.write(f"\r{mb:.1f} MB")
    sys.stderr.flush()


def load_state_dict_from_url(url: str, model_dir=None, map_location=None, progress: bool = True,
                             check_hash: bool = False, file_name: str | None = None,
                             weights_only: bool = True):
    """Download the checkpoint at ``url`` into ``model_dir`` (default ``get_dir()/checkpoints``)
    unless it is already there, and load it. ``check_hash`` requires the file name's
    ``-<hex>.`` part (e.g. ``resnet18-f37072fd.pth``) to prefix the file's SHA-256, as
    PyTorch's published weights are named. A ``torch.save`` file is read by
    :func:`framework.load_torch_checkpoint` (never unpickled), a safetensors file by
    :func:`framework.load`."""
    if weights_only is False:
        raise ArgumentError("hub.load_state_dict_from_url: weights_only=False would unpickle "
                            "arbitrary objects, which the framework never does")
    model_dir = os.path.join(get_dir(), "checkpoints") if model_dir is None else \
        os.path.expanduser(os.fspath(model_dir))
    name = file_name or os.path.basename(urllib.parse.urlparse(url).path)
    if not name:
        raise ArgumentError(f"hub.load_state_dict_from_url: cannot tell a file name from "
                            f"{url!r}; pass file_name=")
    cached = os.path.join(model_dir, name)
    if not os.path.exists(cached):
        hash_prefix = None
        if check_hash:
            match = HASH_REGEX.search(name)
            hash_prefix = match.group(1) if match else None
        if progress:
            sys.stderr.write(f'Downloading: "{url}" to {cached}\n')
        download_url_to_file(url, cached, hash_prefix, progress=progress)
    return _load_file(cached, map_location)


def _load_file(path: str, map_location):
    import zipfile

    from .serialization import load
    from .torch_checkpoint import load_torch_checkpoint
    if zipfile.is_zipfile(path):
        return load_torch_checkpoint(path, map_location=map_location)
    return load(path, map_location=map_location)


def _needs_hubconf(fn_name: str):
    def refuse(*args, **kwargs):
        raise NotImplementedError(
            f"fw.hub.{fn_name}: PyTorch Hub runs a GitHub repository's hubconf.py, which builds "
            "PyTorch modules; build the model with fw and load its published weights with "
            "fw.hub.load_state_dict_from_url(url)")
    refuse.__name__ = fn_name
    refuse.__doc__ = f"Not available: ``torch.hub.{fn_name}`` imports a repository's hubconf.py."
    return refuse


load = _needs_hubconf("load")
list = _needs_hubconf("list")  # noqa: A001  (torch.hub.list)
help = _needs_hubconf("help")  # noqa: A001  (torch.hub.help)
