"""``framework.utils.tensorboard``: ``torch.utils.tensorboard`` without TensorBoard or
protobuf installed. ``SummaryWriter`` writes real event files (TFRecord framing with
CRC-32C, hand-encoded ``tensorflow.Event`` protobufs, PNG images) that TensorBoard reads;
``read_events`` (a framework extra) reads them back.

Modules: ``_crc32c`` (checksum), ``_wire`` (protobuf wire format from message tables),
``_messages`` (the tables, with TensorFlow's field numbers), ``_record`` (record framing and
the event file writer), ``_png`` (PNG encoder), ``summary`` (Summary builders), ``writer``
(``SummaryWriter``, ``FileWriter``), ``reader`` (``read_events``).
"""

from . import _messages  # noqa: F401  (declares the message types)
from .reader import read_events
from .writer import FileWriter, SummaryWriter

__all__ = ["FileWriter", "SummaryWriter", "read_events"]
