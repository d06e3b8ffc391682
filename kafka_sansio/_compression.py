"""Compression codecs for record batches, as a registry keyed by codec id.

A codec is a pair of functions: ``compress(data) -> bytes`` and
``decompress(data, limit) -> bytes``.  ``decompress`` must never produce (or
allocate) more than ``limit`` bytes: it raises :class:`DecompressionLimitError`
instead.  The built-in codecs use bounded or streaming APIs to keep that
promise:

======  ======  ==========================================================
id      name    implementation
======  ======  ==========================================================
0       none    identity
1       gzip    :mod:`zlib` (standard library), gzip wrapper, bounded output
2       snappy  ``cramjam`` raw snappy, xerial framing as Java writes it;
                the declared length of each block is checked first
3       lz4     ``lz4.frame`` (LZ4 frame format), bounded output
4       zstd    ``zstandard`` decompressobj fed in bounded slices
======  ======  ==========================================================

snappy, lz4 and zstd come with the ``compression`` extra and are imported only
when a batch needs them; a missing package raises
:class:`MissingCodecError`.  Any exception a codec library raises on bad input
is turned into :class:`CorruptRecordError`.  :func:`register_codec` adds or
replaces a codec.
"""

from __future__ import annotations

import importlib
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from ._errors import (
    CorruptRecordError,
    DecompressionLimitError,
    KafkaSansioError,
    LocalProtocolError,
    MissingCodecError,
)

__all__ = [
    "CODEC_NONE",
    "CODEC_GZIP",
    "CODEC_SNAPPY",
    "CODEC_LZ4",
    "CODEC_ZSTD",
    "DEFAULT_DECOMPRESS_LIMIT",
    "Codec",
    "register_codec",
    "get_codec",
    "codec_id_for",
    "compress",
    "decompress",
    "codec_available",
]

CODEC_NONE = 0
CODEC_GZIP = 1
CODEC_SNAPPY = 2
CODEC_LZ4 = 3
CODEC_ZSTD = 4

#: Default ceiling on the decompressed size of one batch (128 MiB).
DEFAULT_DECOMPRESS_LIMIT = 128 * 1024 * 1024

CompressFn = Callable[[bytes], bytes]
DecompressFn = Callable[[bytes, int], bytes]


@dataclass(frozen=True, slots=True)
class Codec:
    """One compression codec: its 3-bit id, its name and its two functions.

    ``decompress(data, limit)`` returns at most ``limit`` bytes or raises
    :class:`DecompressionLimitError`; ``extra`` names the package extra that
    provides its library (used in :class:`MissingCodecError`).
    """

    codec_id: int
    name: str
    compress: CompressFn
    decompress: DecompressFn
    extra: str = "compression"


_REGISTRY: dict[int, Codec] = {}
_BY_NAME: dict[str, int] = {}


def register_codec(
    codec_id: int,
    name: str,
    compress: CompressFn,
    decompress: DecompressFn,
    *,
    extra: str = "compression",
) -> Codec:
    """Register (or replace) the codec for ``codec_id`` (0-7, the 3 attribute bits).

    Changes the process-wide registry used by every decoder and encoder.
    ``decompress(data, limit)`` must refuse to produce more than ``limit``
    bytes by raising :class:`DecompressionLimitError`; the registry also checks
    the size of what it returns.  Returns the registered :class:`Codec`.
    """
    if not 0 <= codec_id <= 7:
        raise LocalProtocolError(f"codec id must be within 0-7, not {codec_id}")
    codec = Codec(codec_id, name, compress, decompress, extra)
    old = _REGISTRY.get(codec_id)
    if old is not None:
        _BY_NAME.pop(old.name, None)
    _REGISTRY[codec_id] = codec
    _BY_NAME[name] = codec_id
    return codec


def get_codec(codec_id: int) -> Codec:
    """Return the registered codec for ``codec_id``.

    Raises :class:`CorruptRecordError` for an id nothing is registered under
    (a batch naming an unknown codec is malformed as far as we can tell).
    """
    try:
        return _REGISTRY[codec_id]
    except KeyError:
        raise CorruptRecordError(f"unknown compression codec id {codec_id}") from None


def codec_id_for(codec: int | str) -> int:
    """Map a codec name (``"gzip"``) or id to its registered id; LocalProtocolError if unknown."""
    if isinstance(codec, str):
        try:
            return _BY_NAME[codec.lower()]
        except KeyError:
            raise LocalProtocolError(f"unknown compression codec {codec!r}") from None
    if codec not in _REGISTRY:
        raise LocalProtocolError(f"unknown compression codec id {codec}")
    return codec


def codec_available(codec: int | str) -> bool:
    """True if the codec is registered and its library can be imported."""
    try:
        c = _REGISTRY[codec_id_for(codec)]
        c.decompress(c.compress(b"probe"), 16)
    except (MissingCodecError, LocalProtocolError):
        return False
    return True


def compress(codec_id: int, data: bytes) -> bytes:
    """Compress ``data`` with the codec registered under ``codec_id``."""
    codec = get_codec(codec_id)
    try:
        return codec.compress(data)
    except KafkaSansioError:
        raise
    except Exception as exc:
        raise LocalProtocolError(f"{codec.name} compression failed: {exc!r}") from exc


def decompress(codec_id: int, data: bytes, limit: int = DEFAULT_DECOMPRESS_LIMIT) -> bytes:
    """Decompress ``data``; at most ``limit`` bytes come out.

    Raises :class:`DecompressionLimitError` if the output would exceed
    ``limit``, :class:`MissingCodecError` if the codec's package is not
    installed, :class:`CorruptRecordError` for anything the codec rejects.
    """
    codec = get_codec(codec_id)
    try:
        out = codec.decompress(data, limit)
    except KafkaSansioError:
        raise
    except MemoryError:
        raise DecompressionLimitError(limit) from None
    except Exception as exc:
        raise CorruptRecordError(f"{codec.name} decompression failed: {exc!r}") from exc
    if len(out) > limit:
        raise DecompressionLimitError(limit)
    if not isinstance(out, bytes):
        out = bytes(out)
    return out


def _import(name: str, codec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingCodecError(codec, "compression") from None


# -- none ---------------------------------------------------------------------


def _none_compress(data: bytes) -> bytes:
    return bytes(data)


def _none_decompress(data: bytes, limit: int) -> bytes:
    if len(data) > limit:
        raise DecompressionLimitError(limit)
    return bytes(data)


# -- gzip ---------------------------------------------------------------------


def _gzip_compress(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    return c.compress(data) + c.flush()


def _gzip_decompress(data: bytes, limit: int) -> bytes:
    parts: list[bytes] = []
    budget = limit
    rest = data
    while True:
        d = zlib.decompressobj(47)  # gzip or zlib header, detected
        out = d.decompress(rest, budget + 1)
        if len(out) > budget:
            raise DecompressionLimitError(limit)
        if not d.eof:
            raise CorruptRecordError("gzip data is truncated")
        parts.append(out)
        budget -= len(out)
        rest = d.unused_data
        # Concatenated gzip members are read like Java's GZIPInputStream does;
        # anything else after the first member is ignored.
        if not rest.startswith(b"\x1f\x8b"):
            break
    return parts[0] if len(parts) == 1 else b"".join(parts)


# -- snappy (xerial framing, or raw) -----------------------------------------

_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = _XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024
_INT32 = struct.Struct(">i")


def _snappy_compress(data: bytes) -> bytes:
    snappy = _import("cramjam", "snappy").snappy
    out = [_XERIAL_HEADER]
    for start in range(0, len(data), _XERIAL_BLOCK):
        block = bytes(snappy.compress_raw(data[start : start + _XERIAL_BLOCK]))
        out.append(_INT32.pack(len(block)))
        out.append(block)
    return b"".join(out)


def _snappy_raw(snappy: ModuleType, block: bytes, budget: int, limit: int) -> bytes:
    declared = int(snappy.decompress_raw_len(block))
    if declared > budget:
        raise DecompressionLimitError(limit)
    out = bytes(snappy.decompress_raw(block))
    if len(out) != declared:
        raise CorruptRecordError("snappy block length does not match its header")
    return out


def _snappy_decompress(data: bytes, limit: int) -> bytes:
    snappy = _import("cramjam", "snappy").snappy
    if not data.startswith(_XERIAL_MAGIC):
        return _snappy_raw(snappy, data, limit, limit)
    if len(data) < 16:
        raise CorruptRecordError("truncated xerial snappy header")
    parts: list[bytes] = []
    budget = limit
    pos, end = 16, len(data)
    while pos < end:
        if pos + 4 > end:
            raise CorruptRecordError("truncated xerial snappy block length")
        (size,) = _INT32.unpack_from(data, pos)
        pos += 4
        if size < 0 or pos + size > end:
            raise CorruptRecordError("xerial snappy block overruns its data")
        out = _snappy_raw(snappy, data[pos : pos + size], budget, limit)
        budget -= len(out)
        parts.append(out)
        pos += size
    return b"".join(parts)


# -- lz4 (frame format) --------------------------------------------------------


def _lz4_compress(data: bytes) -> bytes:
    frame = _import("lz4.frame", "lz4")
    out: bytes = frame.compress(
        data,
        block_size=frame.BLOCKSIZE_MAX64KB,
        block_linked=False,
        content_checksum=False,
        store_size=False,
    )
    return out


def _lz4_decompress(data: bytes, limit: int) -> bytes:
    frame = _import("lz4.frame", "lz4")
    d = frame.LZ4FrameDecompressor()
    out: bytes = d.decompress(data, max_length=limit + 1)
    if len(out) > limit:
        raise DecompressionLimitError(limit)
    if not d.eof:
        raise CorruptRecordError("lz4 frame is truncated")
    return out


# -- zstd ----------------------------------------------------------------------


def _zstd_compress(data: bytes) -> bytes:
    zstd = _import("zstandard", "zstd")
    out: bytes = zstd.ZstdCompressor(level=3).compress(data)
    return out


# A zstd block holds at most 128 KiB and takes at least 4 compressed bytes (an
# RLE block), so one input byte yields at most 32 KiB of output.  Feeding the
# decoder slices of ``budget // _ZSTD_MAX_RATIO`` bytes (and at least 64)
# bounds what one call can return to the budget plus a couple of blocks.
_ZSTD_MAX_RATIO = 32 * 1024


def _zstd_decompress(data: bytes, limit: int) -> bytes:
    zstd = _import("zstandard", "zstd")
    dctx = zstd.ZstdDecompressor()
    parts: list[bytes] = []
    size = 0
    view = memoryview(data)
    pos, end = 0, len(data)
    while pos < end:  # one zstd frame per round
        declared = zstd.frame_content_size(view[pos:])
        if declared > limit - size:
            raise DecompressionLimitError(limit)
        obj = dctx.decompressobj()
        while not obj.eof:
            if pos >= end:
                raise CorruptRecordError("zstd frame is truncated")
            step = max(64, (limit - size) // _ZSTD_MAX_RATIO)
            piece = view[pos : pos + step]
            pos += len(piece)
            chunk: bytes = obj.decompress(piece)
            size += len(chunk)
            if size > limit:
                raise DecompressionLimitError(limit)
            parts.append(chunk)
        pos -= len(obj.unused_data)
    return b"".join(parts)


register_codec(CODEC_NONE, "none", _none_compress, _none_decompress)
register_codec(CODEC_GZIP, "gzip", _gzip_compress, _gzip_decompress)
register_codec(CODEC_SNAPPY, "snappy", _snappy_compress, _snappy_decompress)
register_codec(CODEC_LZ4, "lz4", _lz4_compress, _lz4_decompress)
register_codec(CODEC_ZSTD, "zstd", _zstd_compress, _zstd_decompress)
