"""A minimal PNG encoder (zlib + struct) for 8-bit grayscale, gray+alpha, RGB and RGBA.

Layout (PNG spec, https://www.w3.org/TR/png/): the 8-byte signature, then chunks of
``uint32 length | 4-byte type | data | uint32 CRC-32 of type and data`` (big-endian; the
CRC is zlib's ordinary CRC-32, not CRC-32C): IHDR (width, height, bit depth 8, colour type,
compression 0, filter 0, interlace 0), one IDAT holding the zlib stream of the scanlines,
each preceded by its filter-type byte (0, "None"), and an empty IEND.
"""

import struct
import zlib

import numpy as np

from ...errors import DTypeError, ShapeError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a ``uint8`` image of shape (H, W) or (H, W, C) with C in 1..4."""
    if image.dtype != np.uint8:
        raise DTypeError(f"encode_png: expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in COLOR_TYPE or 0 in image.shape[:2]:
        raise ShapeError(f"encode_png: expected (H, W) or (H, W, C) with C in 1..4 and "
                         f"H, W > 0, got shape {tuple(image.shape)}")
    height, width, channels = image.shape
    rows = np.ascontiguousarray(image).reshape(height, width * channels)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPE[channels], 0, 0, 0)
    return (SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)) + _chunk(b"IEND", b""))
