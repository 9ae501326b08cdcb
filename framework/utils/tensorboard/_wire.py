"""A minimal protobuf (proto3) wire-format encoder and decoder, driven by message tables.

A message type is declared once, as a list of ``Field``s (``_messages.py``); the same table
drives ``encode`` (a dict in, bytes out) and ``decode`` (bytes in, a ``Message`` out), so
the two cannot disagree about a field number or type.

Wire format (https://protobuf.dev/programming-guides/encoding/): each field is a key
``field_number << 3 | wire_type`` (a varint) followed by its value: a varint (wire type 0:
int32/int64/uint64/bool/enum), 8 little-endian bytes (1: double), a length-prefixed
payload (2: string, bytes, sub-messages and packed repeated numbers) or 4 little-endian
bytes (5: float). proto3 leaves out singular fields holding their default value unless the
field is in a ``oneof`` (those have explicit presence and are always written when set).
"""

import struct
from dataclasses import dataclass

from ...errors import ArgumentError

VARINT, I64, LEN, I32 = 0, 1, 2, 5
_WIRE_TYPE = {"double": I64, "float": I32, "int64": VARINT, "int32": VARINT,
              "uint64": VARINT, "bool": VARINT, "enum": VARINT, "string": LEN,
              "bytes": LEN, "message": LEN, "map": LEN}
_PACKABLE = {"double", "float", "int64", "int32", "uint64", "bool", "enum"}
_DEFAULT = {"double": 0.0, "float": 0.0, "int64": 0, "int32": 0, "uint64": 0,
            "bool": False, "enum": 0, "string": "", "bytes": b""}
_FLOAT32_MAX = 3.4028234663852886e38


@dataclass(frozen=True)
class Field:
    """One field of a message type: its number, name and kind ("double", "float",
    "int64", "int32", "uint64", "bool", "enum", "string", "bytes", "message" or "map");
    ``message`` names the sub-message (for a map: its entry type, fields key=1, value=2)."""
    number: int
    name: str
    kind: str
    message: str | None = None
    repeated: bool = False
    oneof: bool = False  # explicit presence: written even when it holds the default


class MessageType:
    """A declared message type: a name and its fields, found by number or by name."""

    def __init__(self, name: str, fields: list[Field]):
        self.name = name
        self.fields = tuple(sorted(fields, key=lambda f: f.number))
        self.by_number = {f.number: f for f in self.fields}
        self.by_name = {f.name: f for f in self.fields}


MESSAGES: dict[str, MessageType] = {}


def declare(name: str, fields: list[Field]) -> None:
    """Register message type ``name`` (sub-messages are referred to by name, so types may
    refer to each other in any order)."""
    MESSAGES[name] = MessageType(name, fields)


# ---------------------------------------------------------------- encoding

def _varint(value: int) -> bytes:
    if value < 0:  # int32/int64/enum negatives: ten bytes of 64-bit two's complement
        value += 1 << 64
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _float32(value: float) -> bytes:
    value = float(value)
    if abs(value) > _FLOAT32_MAX and value == value and abs(value) != float("inf"):
        value = float("inf") if value > 0 else float("-inf")  # as a float32 cast rounds
    return struct.pack("<f", value)


def _scalar_payload(kind: str, value) -> bytes:
    """The bytes of one number (no key), for a singular field or a packed list."""
    if kind == "double":
        return struct.pack("<d", float(value))
    if kind == "float":
        return _float32(value)
    return _varint(int(value))


def _one(field: Field, value) -> bytes:
    kind = field.kind
    if kind in _PACKABLE:
        return _key(field.number, _WIRE_TYPE[kind]) + _scalar_payload(kind, value)
    if kind == "string":
        payload = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    elif kind == "bytes":
        payload = bytes(value)
    else:  # message
        payload = encode(field.message, value)
    return _key(field.number, LEN) + _varint(len(payload)) + payload


def encode(type_name: str, msg: dict) -> bytes:
    """Serialize ``msg`` (a dict of field name -> value; None or absent means unset) as
    message type ``type_name``. Repeated numbers are packed; map fields take a dict."""
    mtype = MESSAGES[type_name]
    unknown = set(msg) - set(mtype.by_name)
    if unknown:
        raise ArgumentError(f"protobuf encode: {type_name} has no field(s) {sorted(unknown)}")
    out = bytearray()
    for field in mtype.fields:
        value = msg.get(field.name)
        if value is None:
            continue
        if field.kind == "map":
            for key, item in value.items():
                entry = encode(field.message, {"key": key, "value": item})
                out += _key(field.number, LEN) + _varint(len(entry)) + entry
        elif field.repeated and field.kind in _PACKABLE:
            if len(value):
                payload = b"".join(_scalar_payload(field.kind, v) for v in value)
                out += _key(field.number, LEN) + _varint(len(payload)) + payload
        elif field.repeated:
            for item in value:
                out += _one(field, item)
        elif field.oneof or field.kind == "message" or value != _DEFAULT[field.kind]:
            out += _one(field, value)
    return bytes(out)


# ---------------------------------------------------------------- decoding

class Message:
    """A decoded message: fields read as attributes (``event.summary.value[0].tag``); an
    unset field reads as its proto3 default, as with generated protobuf classes."""

    def __init__(self, type_name: str, fields: dict):
        self._type = MESSAGES[type_name]
        self._fields = fields

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        field = self._type.by_name.get(name)
        if field is None:
            raise AttributeError(f"{self._type.name} has no field {name!r}")
        if name in self._fields:
            return self._fields[name]
        if field.kind == "map":
            return {}
        if field.repeated:
            return []
        if field.kind == "message":
            return Message(field.message, {})
        return _DEFAULT[field.kind]

    def HasField(self, name: str) -> bool:
        """Whether field ``name`` was present in the bytes (protobuf's spelling)."""
        if name not in self._type.by_name:
            raise ArgumentError(f"HasField: {self._type.name} has no field {name!r}")
        return name in self._fields

    def to_dict(self) -> dict:
        """The fields that were present, sub-messages as dicts too."""
        def plain(v):
            if isinstance(v, Message):
                return v.to_dict()
            if isinstance(v, list):
                return [plain(x) for x in v]
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            return v
        return {k: plain(v) for k, v in self._fields.items()}

    def __eq__(self, other):
        return (isinstance(other, Message) and self._type is other._type
                and self._fields == other._fields)

    __hash__ = None

    def __repr__(self):
        return f"{self._type.name}({self.to_dict()!r})"


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ArgumentError("protobuf decode: truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ArgumentError("protobuf decode: varint longer than 10 bytes")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _number(kind: str, raw) -> int | float | bool:
    if kind == "double":
        return struct.unpack("<d", raw)[0]
    if kind == "float":
        return struct.unpack("<f", raw)[0]
    if kind == "bool":
        return bool(raw)
    if kind == "uint64":
        return raw
    return _signed64(raw)  # int32 and enum negatives are sign-extended to 64 bits too


def _unpack(kind: str, payload: bytes) -> list:
    """The numbers of a packed repeated field."""
    if kind in ("double", "float"):
        size, fmt = (8, "d") if kind == "double" else (4, "f")
        if len(payload) % size:
            raise ArgumentError(f"protobuf decode: packed {kind} payload of {len(payload)} "
                                "bytes")
        return list(struct.unpack(f"<{len(payload) // size}{fmt}", payload))
    values, pos = [], 0
    while pos < len(payload):
        raw, pos = _read_varint(payload, pos)
        values.append(_number(kind, raw))
    return values


def _read_field(data: bytes, pos: int) -> tuple[int, int, object, int]:
    """(field number, wire type, raw value, next position) of the field at ``pos``."""
    key, pos = _read_varint(data, pos)
    number, wire = key >> 3, key & 7
    if wire == VARINT:
        raw, pos = _read_varint(data, pos)
        return number, wire, raw, pos
    size = {I64: 8, I32: 4}.get(wire)
    if size is None:
        if wire != LEN:
            raise ArgumentError(f"protobuf decode: unsupported wire type {wire} "
                                f"(field {number})")
        size, pos = _read_varint(data, pos)
    if pos + size > len(data):
        raise ArgumentError(f"protobuf decode: field {number} runs past the end of the data")
    return number, wire, data[pos:pos + size], pos + size


def decode(type_name: str, data: bytes) -> Message:
    """Parse ``data`` as message type ``type_name``. Unknown fields are skipped; repeated
    numbers are accepted packed or not (as the protobuf spec asks of parsers)."""
    mtype = MESSAGES[type_name]
    fields: dict = {}
    pos = 0
    while pos < len(data):
        number, wire, raw, pos = _read_field(data, pos)
        field = mtype.by_number.get(number)
        if field is None:
            continue
        if wire != _WIRE_TYPE[field.kind] and not (field.repeated and wire == LEN):
            raise ArgumentError(f"protobuf decode: {type_name}.{field.name} has wire type "
                                f"{wire}, expected {_WIRE_TYPE[field.kind]}")
        if field.kind == "map":
            entry = decode(field.message, raw)
            fields.setdefault(field.name, {})[entry.key] = entry.value
            continue
        if field.kind in _PACKABLE:
            values = _unpack(field.kind, raw) if wire == LEN else [_number(field.kind, raw)]
        elif field.kind == "string":
            values = [raw.decode("utf-8")]
        elif field.kind == "bytes":
            values = [bytes(raw)]
        else:
            values = [decode(field.message, raw)]
        if field.repeated:
            fields.setdefault(field.name, []).extend(values)
        else:
            fields[field.name] = values[-1]
    return Message(type_name, fields)
