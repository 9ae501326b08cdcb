"""TFRecord framing and the event file writer.

A record is ``uint64 length | uint32 masked_crc32c(length bytes) | data | uint32
masked_crc32c(data)``, all little-endian; an event file is a sequence of records whose data
are serialized ``Event`` messages, the first one holding ``file_version="brain.Event:2"``.

``EventFileWriter`` keeps PyTorch's (TensorBoard's) observable behaviour with a simpler
mechanism: events are serialized at once and held in a pending list; the list goes to disk
when it reaches ``max_queue`` events, on ``flush()``/``close()``, and every ``flush_secs``
seconds from a daemon thread (so a quiet training loop still shows up in TensorBoard).
PyTorch hands each event to a writer thread through a bounded queue and flushes the file
every ``flush_secs``; either way an event is on disk at the latest ``flush_secs`` after it
was added, and everything is on disk after ``flush()``.
"""

import atexit
import itertools
import os
import socket
import struct
import threading
import time
import weakref

from ...errors import ArgumentError
from ._crc32c import masked_crc32c
from ._wire import encode

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
_uid = itertools.count()  # PyTorch's global counter: the last part of an event file name
_uid_lock = threading.Lock()
_open_writers = weakref.WeakSet()  # flushed at interpreter exit: pending events are not lost


def frame_record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord (length, its CRC, data, the data's CRC)."""
    length = struct.pack("<Q", len(data))
    return (length + _FOOTER.pack(masked_crc32c(length)) + data
            + _FOOTER.pack(masked_crc32c(data)))


def read_records(path) -> "iter[bytes]":
    """The data of each record in file ``path``, after checking both CRCs of each."""
    with open(path, "rb") as f:
        blob = f.read()
    pos, index = 0, 0
    while pos < len(blob):
        where = f"read_events: {os.fspath(path)!r}, record {index} at byte {pos}"
        if pos + _HEADER.size > len(blob):
            raise ArgumentError(f"{where}: truncated header")
        length, length_crc = _HEADER.unpack_from(blob, pos)
        if masked_crc32c(blob[pos:pos + 8]) != length_crc:
            raise ArgumentError(f"{where}: length CRC mismatch (corrupted file)")
        start = pos + _HEADER.size
        end = start + length
        if end + _FOOTER.size > len(blob):
            raise ArgumentError(f"{where}: truncated record ({length} bytes announced)")
        data = blob[start:end]
        (data_crc,) = _FOOTER.unpack_from(blob, end)
        if masked_crc32c(data) != data_crc:
            raise ArgumentError(f"{where}: data CRC mismatch (corrupted file)")
        yield data
        pos, index = end + _FOOTER.size, index + 1


class EventFileWriter:
    """Writes ``Event`` dicts to a new event file in ``logdir``: named
    ``events.out.tfevents.{int(time)}.{hostname}.{pid}.{counter}{filename_suffix}`` as
    TensorBoard's writer names it. See the module docstring for when data reach disk."""

    def __init__(self, logdir, max_queue: int = 10, flush_secs: float = 120,
                 filename_suffix: str = ""):
        self._logdir = str(logdir)
        os.makedirs(self._logdir, exist_ok=True)
        with _uid_lock:
            uid = next(_uid)
        name = (f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
                f"{os.getpid()}.{uid}{filename_suffix}")
        self.file_name = os.path.join(self._logdir, name)
        self._file = open(self.file_name, "wb")
        self._max_queue = max(int(max_queue), 1)
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._closed = False
        self._stop = threading.Event()
        self._thread = None
        if flush_secs > 0:  # flush_secs <= 0: every event goes to disk as it is added
            # The thread holds only a weak reference, so a writer nobody closes can still
            # be garbage collected (its __del__ closes the file).
            self._thread = threading.Thread(
                target=_flush_every, args=(weakref.ref(self), self._stop, flush_secs),
                name="fw-tensorboard-flush", daemon=True)
            self._thread.start()
        else:
            self._max_queue = 1
        _open_writers.add(self)
        self.add_event({"wall_time": time.time(), "file_version": "brain.Event:2"})
        self.flush()

    def get_logdir(self) -> str:
        """The directory the event file is in."""
        return self._logdir

    def add_event(self, event: dict) -> None:
        """Queue one ``Event`` (a dict of its fields); writes the queue out when full."""
        data = frame_record(encode("Event", event))
        with self._lock:
            if self._closed:
                raise ArgumentError(f"EventFileWriter: {self.file_name!r} is closed")
            self._pending.append(data)
            if len(self._pending) >= self._max_queue:
                self._write_pending()

    def _write_pending(self) -> None:  # called with the lock held
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending.clear()
        self._file.flush()

    def flush(self) -> None:
        """Write every queued event to disk."""
        with self._lock:
            if not self._closed:
                self._write_pending()

    def close(self) -> None:
        """Flush, stop the flushing thread and close the file (a second call does nothing)."""
        with self._lock:
            if self._closed:
                return
            self._write_pending()
            self._file.close()
            self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()

    def __del__(self):
        try:
            self.close()
        except Exception:  # a half-built writer, or interpreter shutdown
            pass


def _flush_every(writer_ref, stop: threading.Event, seconds: float) -> None:
    while not stop.wait(seconds):
        writer = writer_ref()
        if writer is None:
            return
        writer.flush()
        del writer


@atexit.register
def _flush_open_writers() -> None:
    for writer in list(_open_writers):
        writer.flush()
