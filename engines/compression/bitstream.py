"""The `.zsc` file format: a compact header, then the coder's payload.

Layout (version 2; integers little-endian, sizes as LEB128 varints):

    magic        3 bytes  b"ZSC"
    version      1 byte
    coder        1 byte   0 = fixed-length, 1 = masked-transformer range coding
    log2 K       1 byte   codebook size K = 2 ** value (16 ... 8192)
    passes       1 byte   transformer passes of the model coder (0 for fixed-length)
    prob device  1 byte   where the model coder's probabilities were computed (0 none)
    width        varint   image size in pixels, before padding
    height       varint
    model id     1 byte length + UTF-8
    model hash   8 bytes  fingerprint of the model weights the tokens belong to
    codebook id  4 bytes  CRC-32 of the K-means cluster map
    checksum     4 bytes  CRC-32 of the token grid
    K-means      1 byte   0 = plain, 1 = usage-weighted                     (version 2 only)
    usage id     8 bytes  fingerprint of the usage counts (usage-weighted only)
    payload      the rest

Version 1 files (no K-means byte: plain K-means) still decode.

Every byte counts toward the reported bits per pixel, header included.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .schedule import DEFAULT_PASSES

MAGIC = b"ZSC"
VERSION = 2
READABLE_VERSIONS = (1, 2)
CODER_IDS = {"fixed": 0, "model": 1}
KMEANS_IDS = {"plain": 0, "usage": 1}
DEVICE_IDS = {"": 0, "cpu": 1, "cuda": 2, "mps": 3}
FINGERPRINT_BYTES = 8
MAX_SIDE_IN_FILE = 2048  # the largest image the encoder takes (images.MAX_SIDE)
MIN_PATCH = 8  # no tokenizer we use has patches smaller than this
MAX_BITS_PER_TOKEN = 32  # range coding never spends more than this on a <= 16-bit token
MAX_PASSES = DEFAULT_PASSES
"""The most transformer passes a file may claim: each is one transformer run over the whole
grid when decoding, and the encoder writes DEFAULT_PASSES."""


@dataclass(frozen=True)
class ZscHeader:
    width: int
    height: int
    codebook_size: int
    coder: str
    model_id: str
    model_fingerprint: bytes
    codebook_id: int
    checksum: int
    passes: int = 0
    prob_device: str = ""
    kmeans: str = "plain"
    usage_fingerprint: bytes = b""  # 8 bytes for usage-weighted K-means, else empty

    @property
    def pixels(self) -> int:
        return self.width * self.height


def token_checksum(tokens: np.ndarray) -> int:
    """CRC-32 of a token grid, shape included, as the file stores it."""
    grid = np.ascontiguousarray(tokens, dtype="<u2")
    return zlib.crc32(struct.pack("<II", *grid.shape) + grid.tobytes())


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.offset = 0

    def take(self, count: int) -> bytes:
        if self.offset + count > len(self.data):
            raise InputError("The .zsc file is truncated: its header ends early.")
        chunk = self.data[self.offset : self.offset + count]
        self.offset += count
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 35:
                raise InputError("The .zsc file is corrupt: an image size field is malformed.")


def write_zsc(header: ZscHeader, payload: bytes) -> bytes:
    model_id = header.model_id.encode("utf-8")[:255]
    if len(header.model_fingerprint) != FINGERPRINT_BYTES:
        raise ValueError("model fingerprint must be 8 bytes")
    log2k = header.codebook_size.bit_length() - 1
    if 1 << log2k != header.codebook_size:
        raise ValueError("codebook size must be a power of two")
    usage = header.usage_fingerprint
    if len(usage) != (FINGERPRINT_BYTES if header.kmeans == "usage" else 0):
        raise ValueError("usage-weighted K-means needs its 8-byte usage fingerprint, plain none")
    return b"".join(
        [
            MAGIC,
            bytes(
                [
                    VERSION,
                    CODER_IDS[header.coder],
                    log2k,
                    header.passes,
                    DEVICE_IDS[header.prob_device],
                ]
            ),
            _varint(header.width),
            _varint(header.height),
            bytes([len(model_id)]),
            model_id,
            header.model_fingerprint,
            struct.pack("<II", header.codebook_id, header.checksum),
            bytes([KMEANS_IDS[header.kmeans]]),
            usage,
            payload,
        ]
    )


def read_zsc(data: bytes) -> tuple[ZscHeader, bytes]:
    """Parse a .zsc file; anything that is not a well-formed version-1 or -2 file is an
    InputError."""
    if not data:
        raise InputError("The .zsc file is empty.")
    if data[: len(MAGIC)] != MAGIC:
        raise InputError(
            "This is not a .zsc file (it does not start with the ZSC signature). Upload a file "
            "made by Zero-Shot Studio's compression tab or `zsstudio compress`."
        )
    reader = _Reader(data)
    reader.take(len(MAGIC))
    version = reader.byte()
    if version not in READABLE_VERSIONS:
        readable = " and ".join(map(str, READABLE_VERSIONS))
        raise InputError(
            f"This .zsc file uses format version {version}; this build reads versions "
            f"{readable}. Decode it with the Zero-Shot Studio version that wrote it."
        )
    coder_id, log2k, passes, device_id = reader.byte(), reader.byte(), reader.byte(), reader.byte()
    coders = {v: k for k, v in CODER_IDS.items()}
    devices = {v: k for k, v in DEVICE_IDS.items()}
    if coder_id not in coders or device_id not in devices:
        raise InputError("The .zsc file is corrupt: unknown coder or device field.")
    if not 4 <= log2k <= 16:
        raise InputError(f"The .zsc file is corrupt: codebook size 2^{log2k} is not offered.")
    width, height = reader.varint(), reader.varint()
    if not (0 < width <= MAX_SIDE_IN_FILE and 0 < height <= MAX_SIDE_IN_FILE):
        raise InputError(
            f"The .zsc file says its image is {width}x{height}; files are made from images of "
            f"1 to {MAX_SIDE_IN_FILE} px a side, so this one is damaged or not ours."
        )
    try:
        model_id = reader.take(reader.byte()).decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError("The .zsc file is corrupt: the model name is not text.") from err
    fingerprint = reader.take(FINGERPRINT_BYTES)
    codebook_id, checksum = struct.unpack("<II", reader.take(8))
    kmeans, usage = "plain", b""
    if version >= 2:
        kinds = {v: k for k, v in KMEANS_IDS.items()}
        kind_id = reader.byte()
        if kind_id not in kinds:
            raise InputError("The .zsc file is corrupt: unknown K-means kind.")
        kmeans = kinds[kind_id]
        if kmeans == "usage":
            usage = reader.take(FINGERPRINT_BYTES)
    coder = coders[coder_id]
    if (coder == "model") != (passes > 0):
        raise InputError("The .zsc file is corrupt: the coder and its pass count disagree.")
    if passes > MAX_PASSES:
        raise InputError(
            f"The .zsc file claims {passes} transformer passes; files are coded in at most "
            f"{MAX_PASSES}, so this one is damaged or not ours."
        )
    payload = data[reader.offset :]
    if len(payload) > max_payload_bytes(width, height):
        raise InputError(
            f"The .zsc file is corrupt: {len(payload)} bytes of tokens is more than a "
            f"{width}x{height} image can have."
        )
    header = ZscHeader(
        width=width,
        height=height,
        codebook_size=1 << log2k,
        coder=coder,
        model_id=model_id,
        model_fingerprint=fingerprint,
        codebook_id=codebook_id,
        checksum=checksum,
        passes=passes,
        prob_device=devices[device_id],
        kmeans=kmeans,
        usage_fingerprint=usage,
    )
    return header, payload


def max_payload_bytes(width: int, height: int) -> int:
    """An upper bound on a payload's size for an image of this size, whatever the tokenizer
    and coder: checked before anything is allocated for decoding."""
    tokens = -(-width // MIN_PATCH) * -(-height // MIN_PATCH)
    return tokens * MAX_BITS_PER_TOKEN // 8 + 64
