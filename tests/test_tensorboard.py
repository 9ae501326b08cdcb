"""fw.utils.tensorboard: event files TensorBoard can read, checked without TensorBoard.

Checks: CRC-32C against published test vectors and a bit-by-bit reference; protobuf
encodings against hand-computed bytes; the records' CRCs (a flipped byte is caught);
round trips of every summary kind through ``read_events``; and, where the ``protobuf``
package is installed (onnx brings it), the real protobuf library parsing our bytes and
serializing the same bytes from descriptors declared here.
"""

import os
import re
import socket
import struct
import time
import zlib

import numpy as np
import pytest

import framework as fw
from framework.errors import ArgumentError, FwTypeError, ShapeError
from framework.utils.tensorboard import SummaryWriter, read_events
from framework.utils.tensorboard._crc32c import crc32c, masked_crc32c
from framework.utils.tensorboard._record import frame_record
from framework.utils.tensorboard._wire import decode, encode


def _events(path):
    return list(read_events(path))


def _values(path):
    """(step, Summary.Value) of every summary value in ``path``."""
    return [(e.step, v) for e in _events(path) for v in e.summary.value]


def _crc32c_bitwise(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 * (crc & 1))
    return crc ^ 0xFFFFFFFF


def _decode_png(blob: bytes) -> np.ndarray:
    """A test-side PNG reader for what the writer makes (8-bit, filter 0, one IDAT)."""
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, data = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", blob[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + data)
        chunks[kind] = data
        pos += 12 + length
    width, height, depth, ctype, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and b"IEND" in chunks
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[ctype]
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8)
    rows = raw.reshape(height, 1 + width * channels)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, channels)


# ---------------------------------------------------------------- CRC-32C

def test_crc32c_known_vectors():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
    # RFC 3720 (iSCSI) appendix B.4
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    assert crc32c(b"6789", crc32c(b"12345")) == 0xE3069283
    blob = np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8).tobytes()
    assert crc32c(blob) == _crc32c_bitwise(blob)


def test_masked_crc32c_and_record_framing():
    crc = 0xE3069283
    assert masked_crc32c(b"123456789") == ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(b"") == 0xA282EAD8
    rec = frame_record(b"abc")
    assert rec[:8] == struct.pack("<Q", 3) and rec[12:15] == b"abc" and len(rec) == 19
    assert struct.unpack("<I", rec[8:12])[0] == masked_crc32c(rec[:8])
    assert struct.unpack("<I", rec[15:])[0] == masked_crc32c(b"abc")


# ---------------------------------------------------------------- protobuf encoding

def test_event_encoding_matches_hand_computed_bytes():
    ev = {"wall_time": 1.5, "step": 3,
          "summary": {"value": [{"tag": "a", "simple_value": 2.0}]}}
    value = b"\x0a\x01a" + b"\x15" + struct.pack("<f", 2.0)            # tag=1, simple_value=2
    summary = b"\x0a" + bytes([len(value)]) + value                    # value=1 (repeated)
    want = (b"\x09" + struct.pack("<d", 1.5) + b"\x10\x03"            # wall_time=1, step=2
            + b"\x2a" + bytes([len(summary)]) + summary)               # summary=5
    assert encode("Event", ev) == want
    assert decode("Event", want).summary.value[0].simple_value == 2.0

    head = encode("Event", {"wall_time": 0.0, "file_version": "brain.Event:2"})
    assert head == b"\x1a\x0dbrain.Event:2"                            # file_version=3
    # a oneof member is written even at its default; a plain proto3 scalar is not
    assert encode("Summary.Value", {"tag": "", "simple_value": 0.0}) == b"\x15\x00\x00\x00\x00"
    assert encode("Event", {"step": -1}) == b"\x10" + b"\xff" * 9 + b"\x01"
    assert decode("Event", b"\x10" + b"\xff" * 9 + b"\x01").step == -1
    assert encode("Event", {"step": 300}) == b"\x10\xac\x02"


def test_packed_and_nested_encodings():
    histo = encode("HistogramProto", {"min": -1.0, "bucket_limit": [1.0, 2.0],
                                      "bucket": [0.0, 3.0]})
    assert histo == (b"\x09" + struct.pack("<d", -1.0)
                     + b"\x32\x10" + struct.pack("<2d", 1.0, 2.0)       # packed, field 6
                     + b"\x3a\x10" + struct.pack("<2d", 0.0, 3.0))      # packed, field 7
    text = encode("TensorProto", {"dtype": 7, "tensor_shape": {"dim": [{"size": 1}]},
                                  "string_val": [b"hi"]})
    assert text == b"\x08\x07" + b"\x12\x04\x12\x02\x08\x01" + b"\x42\x02hi"
    # unpacked repeated numbers decode too, and unknown fields are skipped
    loose = b"\x31" + struct.pack("<d", 4.0) + b"\x31" + struct.pack("<d", 5.0) + b"\x58\x01"
    assert decode("HistogramProto", loose).bucket_limit == [4.0, 5.0]
    with pytest.raises(ArgumentError, match="no field"):
        encode("Event", {"wal_time": 1.0})


# ---------------------------------------------------------------- the writer

def test_scalars_round_trip_and_file_name(tmp_path):
    with SummaryWriter(tmp_path, filename_suffix=".v1") as w:
        for step in range(4):
            w.add_scalar("loss", 1.0 / (step + 1), step, walltime=100.0 + step)
        w.add_scalar("t", fw.tensor([2.5]), 10)
        w.add_scalar("np", np.float64(0.125), 11)
        w.add_scalar("int", 7, 12)
        w.add_scalar("new", 1.25, 13, new_style=True)
        w.add_scalar("dbl", 0.1, 14, new_style=True, double_precision=True)
    (name,) = os.listdir(tmp_path)
    pattern = (r"events\.out\.tfevents\.\d{10}\." + re.escape(socket.gethostname())
               + rf"\.{os.getpid()}\.\d+\.v1")
    assert re.fullmatch(pattern, name)
    events = _events(tmp_path)
    assert events[0].file_version == "brain.Event:2" and not events[0].HasField("summary")
    assert abs(events[0].wall_time - time.time()) < 60
    assert [e.wall_time for e in events[1:5]] == [100.0, 101.0, 102.0, 103.0]
    losses = [(step, v.simple_value) for step, v in _values(tmp_path) if v.tag == "loss"]
    assert losses == [(0, 1.0), (1, 0.5), (2, np.float32(1 / 3)), (3, 0.25)]
    vals = {v.tag: (step, v) for step, v in _values(tmp_path)}
    assert vals["t"][1].simple_value == 2.5 and vals["t"][0] == 10
    assert vals["np"][1].simple_value == 0.125 and vals["int"][1].simple_value == 7.0
    new = vals["new"][1]
    assert not new.HasField("simple_value") and new.tensor.float_val == [1.25]
    assert new.tensor.dtype == 1 and new.metadata.plugin_data.plugin_name == "scalars"
    assert vals["dbl"][1].tensor.double_val == [0.1] and vals["dbl"][1].tensor.dtype == 2


def test_add_scalars_writes_one_run_per_key(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalars("loss/all", {"train": 1.0, "val": 2.0}, 5)
        w.add_scalars("loss/all", {"train": 0.5, "val": 1.5}, 6)
    assert sorted(os.listdir(tmp_path))[1:] == ["loss_all_train", "loss_all_val"]
    train = _values(tmp_path / "loss_all_train")
    assert [(s, v.tag, v.simple_value) for s, v in train] == [(5, "loss/all", 1.0),
                                                               (6, "loss/all", 0.5)]
    assert [v.simple_value for _, v in _values(tmp_path / "loss_all_val")] == [2.0, 1.5]


def test_histogram_buckets_by_hand(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("a", np.array([0.5, 1.5, 1.5, 3.5]), 1, bins=[0, 1, 2, 3, 4])
        w.add_histogram("b", fw.tensor([2.5, 2.5]), 2, bins=[0, 1, 2, 3, 4])
        w.add_histogram("c", np.arange(5) + 0.5, 3, bins=[0, 1, 2, 3, 4, 5], max_bins=2)
        w.add_histogram("d", np.array([1.0, 2.0, 4.0]), 4, bins="auto")
    h = {v.tag: v.histo for _, v in _values(tmp_path)}
    a = h["a"]
    assert (a.min, a.max, a.num, a.sum, a.sum_squares) == (0.5, 3.5, 4.0, 7.0, 17.0)
    assert a.bucket_limit == [0, 1, 2, 3, 4] and a.bucket == [0, 1, 2, 0, 1]
    assert h["b"].bucket_limit == [2, 3] and h["b"].bucket == [0, 2]   # cut to the support
    assert h["c"].bucket_limit == [0, 2, 4, 5] and h["c"].bucket == [0, 2, 2, 1]
    assert sum(h["d"].bucket) == 3


def test_histogram_default_tensorflow_bins(tmp_path):
    values = np.random.default_rng(0).normal(size=500)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("w", values, 0)
        bins = np.array(w.default_bins)
    assert bins[len(bins) // 2] == 0 and np.allclose(bins[len(bins) // 2 + 1], 1e-12)
    assert np.all(np.diff(bins) > 0) and bins[-1] < 1e20 <= bins[-1] * 1.1
    (_, v), = _values(tmp_path)
    limits, counts = np.array(v.histo.bucket_limit), np.array(v.histo.bucket)
    assert counts.sum() == 500 and counts[0] == 0 and np.isin(limits, bins).all()
    # bucket i counts the values in [limits[i-1], limits[i])
    inner = np.histogram(values, bins=limits)[0]
    assert np.array_equal(inner, counts[1:])
    assert v.histo.sum_squares == pytest.approx(float(values @ values))


def test_images_round_trip(tmp_path):
    chw = np.stack([np.linspace(0, 1, 12).reshape(3, 4),
                    np.full((3, 4), 0.5), np.full((3, 4), 1.2)])
    u8 = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)  # CHW, 2 channels: invalid
    rgba = np.random.default_rng(1).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    batch = fw.rand(5, 1, 2, 3)
    with SummaryWriter(tmp_path) as w:
        w.add_image("chw", chw, 0)
        w.add_image("hwc", rgba, 0, dataformats="HWC")
        w.add_image("hw", np.array([[0.0, 1.0]]), 0, dataformats="HW")
        w.add_images("grid", batch, 0)
        with pytest.raises(ShapeError, match="channels"):
            w.add_image("bad", u8)
    imgs = {v.tag: v.image for _, v in _values(tmp_path)}
    img = imgs["chw"]
    assert (img.height, img.width, img.colorspace) == (3, 4, 3)
    want = (chw.transpose(1, 2, 0).astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    assert np.array_equal(_decode_png(img.encoded_image_string), want)
    assert want[0, 0, 1] == 127 and want[0, 0, 2] == 255           # 0.5*255 truncated; clip
    assert np.array_equal(_decode_png(imgs["hwc"].encoded_image_string), rgba)
    assert imgs["hwc"].colorspace == 4
    assert _decode_png(imgs["hw"].encoded_image_string).tolist() == [[[0] * 3, [255] * 3]]
    grid = _decode_png(imgs["grid"].encoded_image_string)
    assert grid.shape == (2, 15, 3)                                   # 1 row of 5, gray RGB
    b = (batch.numpy() * 255).astype(np.uint8)
    assert np.array_equal(grid[:, 6:9, 0], b[2, 0]) and (grid[..., 0] == grid[..., 2]).all()


def test_add_images_grid_wraps_after_eight(tmp_path):
    batch = np.arange(10 * 3 * 1 * 1, dtype=np.uint8).reshape(10, 1, 1, 3)  # NHWC
    with SummaryWriter(tmp_path) as w:
        w.add_images("g", batch, 0, dataformats="NHWC")
    (_, v), = _values(tmp_path)
    grid = _decode_png(v.image.encoded_image_string)
    assert grid.shape == (2, 8, 3)
    assert grid[1, 1].tolist() == batch[9, 0, 0].tolist() and (grid[1, 2:] == 0).all()


def test_text_and_hparams(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "héllo **md**", 3)
        w.add_hparams({"lr": 0.1, "opt": "adam", "deep": True, "skip": None},
                      {"hp/acc": 0.75}, hparam_domain_discrete={"opt": ["adam", "sgd"]},
                      run_name="trial")
    (step, t), = _values(tmp_path / os.listdir(tmp_path)[0])
    assert step == 3 and t.tag == "notes/text_summary"
    assert t.metadata.plugin_data.plugin_name == "text"
    assert t.tensor.dtype == 7 and [d.size for d in t.tensor.tensor_shape.dim] == [1]
    assert t.tensor.string_val == ["héllo **md**".encode()]

    vals = _values(tmp_path / "trial")
    tags = [v.tag for _, v in vals]
    assert tags == ["_hparams_/experiment", "_hparams_/session_start_info",
                    "_hparams_/session_end_info", "hp/acc"]
    data = [decode("HParamsPluginData", v.metadata.plugin_data.content) for _, v in vals[:3]]
    assert all(v.metadata.plugin_data.plugin_name == "hparams" for _, v in vals[:3])
    exp = data[0].experiment
    assert [(i.name, i.type) for i in exp.hparam_infos] == [("lr", 3), ("opt", 1),
                                                            ("deep", 3)]
    assert [x.string_value for x in exp.hparam_infos[1].domain_discrete.values] == ["adam",
                                                                                   "sgd"]
    assert [m.name.tag for m in exp.metric_infos] == ["hp/acc"]
    hp = data[1].session_start_info.hparams
    assert hp["lr"].number_value == 0.1 and hp["opt"].string_value == "adam"
    assert hp["deep"].number_value == 1.0 and "skip" not in hp
    assert data[2].session_end_info.status == 1 and vals[3][1].simple_value == 0.75


def test_corrupted_bytes_are_detected(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("x", 1.0, 0)
    (path,) = tmp_path.iterdir()
    good = path.read_bytes()
    assert len(_events(path)) == 2
    first = 8 + 4 + struct.unpack("<Q", good[:8])[0] + 4   # start of the second record
    for where, msg in [(first + 14, "data CRC"), (first + 2, "length CRC"),
                       (len(good) - 1, "data CRC")]:
        bad = bytearray(good)
        bad[where] ^= 0x01
        path.write_bytes(bytes(bad))
        with pytest.raises(ArgumentError, match=msg):
            _events(path)
    path.write_bytes(good[:-3])
    with pytest.raises(ArgumentError, match="truncated"):
        _events(path)


def test_queue_flushes_at_max_queue_and_after_flush_secs(tmp_path):
    w = SummaryWriter(tmp_path / "q", max_queue=3, flush_secs=1000)
    path = next((tmp_path / "q").iterdir())
    assert len(_events(path)) == 1                       # the file_version event, flushed
    w.add_scalar("x", 1.0, 0)
    w.add_scalar("x", 2.0, 1)
    assert len(_events(path)) == 1                       # two pending
    w.add_scalar("x", 3.0, 2)
    assert len(_events(path)) == 4                       # the queue was full
    w.add_scalar("x", 4.0, 3)
    w.flush()
    assert len(_events(path)) == 5
    w.close()

    t = SummaryWriter(tmp_path / "t", flush_secs=0.05)
    t.add_scalar("y", 1.0, 0)
    path = next((tmp_path / "t").iterdir())
    deadline = time.time() + 5
    while len(_events(path)) < 2 and time.time() < deadline:
        time.sleep(0.02)
    assert len(_events(path)) == 2                       # the flushing thread wrote it
    t.close()
    assert not t.__dict__.get("all_writers")


def test_purge_step_close_reopen_and_default_log_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1", purge_step=42)
    (run,) = os.listdir(tmp_path / "runs")
    assert run.endswith("_" + socket.gethostname() + "_lr0.1")
    assert re.match(r"[A-Z][a-z]{2}\d{2}_\d{2}-\d{2}-\d{2}_", run)
    w.close()
    w.close()                                            # a second close does nothing
    events = _events(w.get_logdir())
    assert [(e.step, e.file_version, e.session_log.status) for e in events[1:]] == [
        (42, "brain.Event:2", 0), (42, "", 1)]
    w.add_scalar("after", 1.0, 1)                        # after close: a new file
    w.close()
    assert len(os.listdir(w.get_logdir())) == 2


def test_bad_input_raises_framework_errors(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ShapeError, match="one element"):
            w.add_scalar("v", fw.tensor([1.0, 2.0]))
        with pytest.raises(FwTypeError, match="str"):
            w.add_scalar("s", "1.0")
        with pytest.raises(ArgumentError, match="dataformats"):
            w.add_image("i", np.zeros((3, 2, 2)), dataformats="CHX")
        with pytest.raises(ShapeError, match="3-d"):
            w.add_image("i", np.zeros((2, 2)))
        with pytest.raises(ArgumentError, match="no element"):
            w.add_histogram("h", np.zeros(0))
        with pytest.raises(ArgumentError, match="no value falls inside"):
            w.add_histogram("h", np.array([5.0]), bins=[0, 1])
        with pytest.raises(FwTypeError, match="hparam 'f'"):
            w.add_hparams({"f": [1]}, {})
        with pytest.raises(NotImplementedError, match="add_graph.*GraphDef"):
            w.add_graph(None)
        with pytest.raises(AttributeError):
            w.add_nothing


def test_fw_utils_lazy_attribute():
    assert fw.utils.tensorboard.SummaryWriter is SummaryWriter


# ---------------------------------------------------------------- real protobuf, if present

def _protobuf_classes():
    """Event, Summary, HistogramProto classes built by the protobuf library from
    descriptors declared here, with the field numbers of TensorFlow's .proto files."""
    descriptor_pb2 = pytest.importorskip("google.protobuf.descriptor_pb2")
    from google.protobuf import descriptor_pool, message_factory
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="fw_tb_test.proto", package="fwtbtest",
                                             syntax="proto3")

    def message(name, fields, oneof=None):
        m = fdp.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for fname, number, ftype, extra in fields:
            f = m.field.add(name=fname, number=number, type=ftype,
                            label=F.LABEL_REPEATED if extra.get("rep") else F.LABEL_OPTIONAL)
            if "msg" in extra:
                f.type_name = ".fwtbtest." + extra["msg"]
            if extra.get("oneof"):
                f.oneof_index = 0

    o = {"oneof": True}
    message("Event", [("wall_time", 1, F.TYPE_DOUBLE, {}), ("step", 2, F.TYPE_INT64, {}),
                      ("file_version", 3, F.TYPE_STRING, o),
                      ("summary", 5, F.TYPE_MESSAGE, {"msg": "Summary", **o})], "what")
    message("Summary", [("value", 1, F.TYPE_MESSAGE, {"msg": "Value", "rep": True})])
    message("Value", [("tag", 1, F.TYPE_STRING, {}), ("simple_value", 2, F.TYPE_FLOAT, o),
                      ("image", 4, F.TYPE_MESSAGE, {"msg": "Image", **o}),
                      ("histo", 5, F.TYPE_MESSAGE, {"msg": "HistogramProto", **o}),
                      ("tensor", 8, F.TYPE_MESSAGE, {"msg": "TensorProto", **o}),
                      ("metadata", 9, F.TYPE_MESSAGE, {"msg": "SummaryMetadata"})], "value")
    message("Image", [("height", 1, F.TYPE_INT32, {}), ("width", 2, F.TYPE_INT32, {}),
                      ("colorspace", 3, F.TYPE_INT32, {}),
                      ("encoded_image_string", 4, F.TYPE_BYTES, {})])
    message("HistogramProto", [(n, i + 1, F.TYPE_DOUBLE, {}) for i, n in
                               enumerate(["min", "max", "num", "sum", "sum_squares"])]
            + [("bucket_limit", 6, F.TYPE_DOUBLE, {"rep": True}),
               ("bucket", 7, F.TYPE_DOUBLE, {"rep": True})])
    message("TensorProto", [("dtype", 1, F.TYPE_INT32, {}),
                            ("tensor_shape", 2, F.TYPE_MESSAGE, {"msg": "TensorShapeProto"}),
                            ("float_val", 5, F.TYPE_FLOAT, {"rep": True}),
                            ("string_val", 8, F.TYPE_BYTES, {"rep": True})])
    message("TensorShapeProto", [("dim", 2, F.TYPE_MESSAGE, {"msg": "Dim", "rep": True})])
    message("Dim", [("size", 1, F.TYPE_INT64, {}), ("name", 2, F.TYPE_STRING, {})])
    message("SummaryMetadata", [("plugin_data", 1, F.TYPE_MESSAGE, {"msg": "PluginData"})])
    message("PluginData", [("plugin_name", 1, F.TYPE_STRING, {}),
                           ("content", 2, F.TYPE_BYTES, {})])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    get = lambda n: message_factory.GetMessageClass(pool.FindMessageTypeByName("fwtbtest." + n))
    return get("Event"), get("HistogramProto")


def test_real_protobuf_reads_our_bytes_and_writes_the_same(tmp_path):
    Event, Histogram = _protobuf_classes()
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("loss", 0.0, 0, walltime=5.0)
        w.add_scalar("new", 2.0, -3, walltime=6.0, new_style=True)
        w.add_histogram("h", np.array([0.5, 1.5, 1.5]), 7, bins=[0, 1, 2], walltime=7.0)
        w.add_image("i", np.zeros((1, 2, 2)), 8, walltime=8.0)
        w.add_text("t", "txt", 9, walltime=9.0)
    (path,) = tmp_path.iterdir()
    from framework.utils.tensorboard._record import read_records
    records = list(read_records(path))
    parsed = [Event.FromString(r) for r in records]
    assert parsed[0].file_version == "brain.Event:2"
    loss, new, histo, img, txt = parsed[1:]
    assert loss.summary.value[0].HasField("simple_value") and loss.wall_time == 5.0
    assert new.step == -3 and list(new.summary.value[0].tensor.float_val) == [2.0]
    assert list(histo.summary.value[0].histo.bucket) == [0, 1, 2] and histo.step == 7
    assert img.summary.value[0].image.colorspace == 3 and img.summary.value[0].image.width == 2
    assert txt.summary.value[0].tensor.string_val == [b"txt"]
    for record, message in zip(records[1:], parsed[1:]):
        assert message.SerializeToString() == record      # byte for byte
    # and our decoder reads protobuf's own packed encoding
    h = Histogram(min=-1.0, num=3, bucket_limit=[1.0, 2.5], bucket=[0.0, 4.0])
    ours = decode("HistogramProto", h.SerializeToString())
    assert (ours.min, ours.max, ours.num, ours.bucket_limit, ours.bucket) == (
        -1.0, 0.0, 3.0, [1.0, 2.5], [0.0, 4.0])
