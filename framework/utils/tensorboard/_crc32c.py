"""CRC-32C (Castagnoli), the checksum TFRecord and TensorBoard event files use.

Pure Python and table-driven: one 256-entry table for the reflected polynomial
0x82F63B78, one lookup per byte. ``masked_crc32c`` applies TFRecord's rotate-and-add mask
(a CRC of data that itself holds CRCs is a weak check, so the stored value is disguised).
"""

_POLY = 0x82F63B78  # 0x1EDC6F41 bit-reversed: the CRC runs least significant bit first


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of ``data``; pass a previous result as ``crc`` to continue a running CRC."""
    table = _TABLE
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C a TFRecord stores: rotate right by 15 bits, add 0xa282ead8."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
