"""``read_events``: read event files back (a framework extra; PyTorch has no reader, and
TensorBoard's needs TensorFlow or tensorboard's protobuf classes)."""

import os

from ._record import read_records
from ._wire import decode


def _event_files(path) -> list[str]:
    if os.path.isdir(path):
        return sorted(os.path.join(path, n) for n in os.listdir(path) if "tfevents" in n)
    return [os.fspath(path)]


def read_events(path):
    """Yield each Event of an event file (or of every ``*tfevents*`` file directly in a
    directory, by name) as a ``Message``: ``event.step``, ``event.wall_time``,
    ``event.summary.value[0].simple_value`` ..., with protobuf's defaults for unset fields
    and ``HasField``. Both CRCs of every record are checked: a corrupted file raises
    ``ArgumentError`` naming the record."""
    for name in _event_files(path):
        for data in read_records(name):
            yield decode("Event", data)
