"""Builders of ``Summary`` messages (as dicts for ``_wire.encode``), one per kind of data,
following ``torch.utils.tensorboard.summary``: ``scalar``, ``histogram`` /
``histogram_raw`` / ``make_histogram``, ``image``, ``text`` and ``hparams``."""

import numpy as np

from ...errors import ArgumentError, FwTypeError, ShapeError
from ...tensor import Tensor
from ._messages import DT_DOUBLE, DT_FLOAT, DT_STRING
from ._png import encode_png
from ._wire import encode


def make_np(x, what: str = "value") -> np.ndarray:
    """``x`` (an fw.Tensor, a NumPy array or scalar, a Python number) as a NumPy array."""
    if isinstance(x, Tensor):
        return np.asarray(x.detach())
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (int, float, bool, np.generic)):
        return np.array([x])
    raise FwTypeError(f"tensorboard: {what} must be a number, a NumPy array or an fw.Tensor, "
                      f"got {type(x).__name__}")


def scalar(name: str, value, new_style: bool = False, double_precision: bool = False) -> dict:
    """A Summary with one scalar: ``simple_value`` (a float32), or with ``new_style`` a
    rank-0 ``tensor`` (float32, or float64 with ``double_precision``) for the scalars plugin."""
    array = make_np(value, f"add_scalar({name!r})").squeeze()
    if array.ndim != 0:
        raise ShapeError(f"add_scalar({name!r}): expected one element, got {array.size} "
                         f"elements of shape {tuple(array.shape)}")
    number = float(array)
    if not new_style:
        return {"value": [{"tag": name, "simple_value": number}]}
    tensor = ({"dtype": DT_DOUBLE, "double_val": [number]} if double_precision
              else {"dtype": DT_FLOAT, "float_val": [number]})
    return {"value": [{"tag": name, "tensor": tensor,
                       "metadata": {"plugin_data": {"plugin_name": "scalars"}}}]}


def histogram_raw(name, min, max, num, sum, sum_squares, bucket_limits,
                  bucket_counts) -> dict:
    """A Summary holding a histogram given by its statistics and buckets."""
    return {"value": [{"tag": name, "histo": {
        "min": float(min), "max": float(max), "num": float(num), "sum": float(sum),
        "sum_squares": float(sum_squares),
        "bucket_limit": [float(v) for v in bucket_limits],
        "bucket": [float(v) for v in bucket_counts]}}]}


def make_histogram(values: np.ndarray, bins, max_bins=None) -> dict:
    """A HistogramProto dict of ``values`` binned by ``np.histogram(values, bins)``, then
    (as PyTorch) merged down to at most ``max_bins`` buckets and cut to the buckets between
    the first and last non-empty one, plus one empty bucket on the left (TensorBoard keeps
    only right bucket edges)."""
    values = values.reshape(-1)
    if values.size == 0:
        raise ArgumentError("add_histogram: the input has no element")
    try:
        counts, limits = np.histogram(values, bins=bins)
    except (ValueError, TypeError) as e:
        raise ArgumentError(f"add_histogram: np.histogram(values, bins={bins!r}) failed: "
                            f"{e}") from None
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        counts = np.pad(counts, (0, (-len(counts)) % group)).reshape(-1, group).sum(axis=1)
        limits = np.concatenate([limits[:-1:group], limits[-1:]])
    nonzero = np.flatnonzero(counts)
    if nonzero.size == 0:
        raise ArgumentError(f"add_histogram: no value falls inside the bins "
                            f"[{limits[0]}, {limits[-1]}]")
    start, end = int(nonzero[0]), int(nonzero[-1]) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    return {"min": float(values.min()), "max": float(values.max()), "num": float(values.size),
            "sum": float(values.sum()), "sum_squares": float(values.dot(values)),
            "bucket_limit": limits.tolist(), "bucket": counts.astype(float).tolist()}


def histogram(name: str, values, bins, max_bins=None) -> dict:
    """A Summary with the histogram of ``values`` (see ``make_histogram``)."""
    array = make_np(values, f"add_histogram({name!r})").astype(float)
    return {"value": [{"tag": name, "histo": make_histogram(array, bins, max_bins)}]}


def make_grid(images: np.ndarray, ncols: int = 8) -> np.ndarray:
    """Tile an (N, C, H, W) batch (C 1 or 3; 1 becomes gray RGB) into one (3, H*rows,
    W*cols) image, ``min(N, ncols)`` per row, row-major, zero where the last row is short."""
    if images.shape[1] == 1:
        images = np.concatenate([images] * 3, axis=1)
    if images.shape[1] != 3:
        raise ShapeError(f"add_images: a batch needs 1 or 3 channels, got shape "
                         f"{tuple(images.shape)} (N, C, H, W)")
    n, _, h, w = images.shape
    ncols = min(n, ncols)
    nrows = -(-n // ncols)
    padded = np.concatenate([images, np.zeros((nrows * ncols - n, 3, h, w), images.dtype)])
    grid = padded.reshape(nrows, ncols, 3, h, w).transpose(2, 0, 3, 1, 4)
    return grid.reshape(3, nrows * h, ncols * w)


def convert_to_HWC(array: np.ndarray, dataformats: str) -> np.ndarray:
    """``array`` laid out as ``dataformats`` (NCHW/NHWC/...: a grid; CHW/HWC/...; HW/WH)
    as (H, W, C); one channel, or none, becomes gray RGB, as in PyTorch."""
    fmt = dataformats.upper()
    wanted = {4: "NCHW", 3: "CHW", 2: "HW"}.get(len(fmt))
    if wanted is None or sorted(fmt) != sorted(wanted):
        raise ArgumentError(f"add_image: dataformats={dataformats!r} must be a permutation "
                            "of NCHW, CHW or HW")
    if array.ndim != len(fmt):
        raise ShapeError(f"add_image: dataformats={dataformats!r} needs a {len(fmt)}-d "
                         f"image, got shape {tuple(array.shape)}")
    if len(fmt) == 4:
        nchw = array.transpose([fmt.index(c) for c in "NCHW"])
        return make_grid(nchw).transpose(1, 2, 0)
    if len(fmt) == 3:
        hwc = array.transpose([fmt.index(c) for c in "HWC"])
        return np.concatenate([hwc] * 3, axis=2) if hwc.shape[2] == 1 else hwc
    hw = array.transpose([fmt.index(c) for c in "HW"])
    return np.stack([hw] * 3, axis=2)


def image(tag: str, img, dataformats: str = "NCHW") -> dict:
    """A Summary with one PNG image. uint8 data are taken as 0..255; any other dtype as
    0..1 and multiplied by 255; then clipped to 0..255 and truncated to uint8 (PyTorch)."""
    array = make_np(img, f"add_image({tag!r})")
    hwc = convert_to_HWC(array, dataformats)
    if hwc.shape[2] not in (3, 4):
        raise ShapeError(f"add_image({tag!r}): expected 1, 3 or 4 channels, got "
                         f"{hwc.shape[2]} (image of shape {tuple(array.shape)}, "
                         f"dataformats={dataformats!r})")
    scale = 1 if hwc.dtype == np.uint8 else 255
    pixels = (hwc.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    height, width, channels = pixels.shape
    return {"value": [{"tag": tag, "image": {
        "height": height, "width": width, "colorspace": channels,
        "encoded_image_string": encode_png(pixels)}}]}


def text(tag: str, text_string: str) -> dict:
    """A Summary for the text plugin: a 1-element string tensor under ``tag/text_summary``."""
    return {"value": [{
        "tag": tag + "/text_summary",
        "metadata": {"plugin_data": {"plugin_name": "text"}},  # TextPluginData(version=0)
        "tensor": {"dtype": DT_STRING, "tensor_shape": {"dim": [{"size": 1}]},
                   "string_val": [str(text_string).encode("utf-8")]}}]}


# ---- hparams plugin (tensorboard/plugins/hparams/metadata.py)
_HP_PLUGIN, _HP_VERSION = "hparams", 0
EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_INFO_TAG = "_hparams_/session_start_info"
SESSION_END_INFO_TAG = "_hparams_/session_end_info"
_DATA_TYPE_STRING, _DATA_TYPE_BOOL, _DATA_TYPE_FLOAT64 = 1, 2, 3
_STATUS_SUCCESS = 1


def _hp_summary(tag: str, **data) -> dict:
    content = encode("HParamsPluginData", {"version": _HP_VERSION, **data})
    return {"value": [{"tag": tag, "metadata": {"plugin_data": {
        "plugin_name": _HP_PLUGIN, "content": content}}}]}


def _hp_value(key: str, v):
    """(google.protobuf.Value dict, HParamInfo type) of one hyperparameter value. As in
    PyTorch, bools are ints and so are logged as numbers."""
    if isinstance(v, (int, float)):
        return {"number_value": float(v)}, _DATA_TYPE_FLOAT64
    if isinstance(v, str):
        return {"string_value": v}, _DATA_TYPE_STRING
    if isinstance(v, Tensor):
        return {"number_value": float(make_np(v).reshape(-1)[0])}, _DATA_TYPE_FLOAT64
    raise FwTypeError(f"add_hparams: hparam {key!r} must be an int, float, str, bool or "
                      f"fw.Tensor, got {type(v).__name__}")


def hparams(hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None):
    """The three Summaries of the hparams plugin: (experiment, session start, session end)."""
    if not isinstance(hparam_dict, dict) or not isinstance(metric_dict, dict):
        raise FwTypeError("add_hparams: hparam_dict and metric_dict should be dictionaries")
    domains = hparam_domain_discrete or {}
    if not isinstance(domains, dict):
        raise FwTypeError("add_hparams: hparam_domain_discrete should be a dictionary")
    for k, values in domains.items():
        if (k not in hparam_dict or not isinstance(values, list)
                or not all(isinstance(d, type(hparam_dict[k])) for d in values)):
            raise FwTypeError(f"add_hparams: hparam_domain_discrete[{k!r}] should be a list "
                              f"of the same type as hparam_dict[{k!r}]")
    session_values, infos = {}, []
    for k, v in hparam_dict.items():
        if v is None:
            continue
        session_values[k], dtype = _hp_value(k, v)
        info = {"name": k, "type": dtype}
        if k in domains and not isinstance(v, Tensor):
            info["domain_discrete"] = {"values": [_hp_value(k, d)[0] for d in domains[k]]}
        infos.append(info)
    experiment = {"hparam_infos": infos,
                  "metric_infos": [{"name": {"tag": k}} for k in metric_dict]}
    return (_hp_summary(EXPERIMENT_TAG, experiment=experiment),
            _hp_summary(SESSION_START_INFO_TAG,
                        session_start_info={"hparams": session_values}),
            _hp_summary(SESSION_END_INFO_TAG, session_end_info={"status": _STATUS_SUCCESS}))
