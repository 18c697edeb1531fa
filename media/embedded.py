"""Lossless metadata removal for JPEG and PNG images embedded in PDFs and Office documents.

Unlike :mod:`media.images`, nothing is decoded: metadata segments and chunks are cut out of the
encoded bytes and the image data is copied as it is. Malformed input raises :class:`ValueError`,
which the format modules turn into their own refusal.
"""

from __future__ import annotations

from typing import Final

__all__ = ["strip_jpeg_segments", "strip_png_chunks"]


def strip_jpeg_segments(data: bytes) -> bytes:
    """Drop APPn (EXIF, XMP, ICC, IPTC, MPF...) and COM segments; keep the image data as is.

    A minimal JFIF header (no thumbnail) and the Adobe colour-transform segment survive because
    decoders need them. Anything after the end-of-image marker is dropped.
    """
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out = bytearray(b"\xff\xd8")
    n = len(data)
    i = 2
    while i < n:
        if data[i] != 0xFF:
            raise ValueError("bad JPEG marker")
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            break
        marker = data[i]
        i += 1
        if marker == 0xD9:
            out += b"\xff\xd9"
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += bytes((0xFF, marker))
            continue
        if i + 2 > n:
            raise ValueError("truncated JPEG")
        length = int.from_bytes(data[i : i + 2], "big")
        end = i + length
        if length < 2 or end > n:
            raise ValueError("truncated JPEG")
        payload = data[i + 2 : end]
        if marker == 0xE0 and payload.startswith(b"JFIF\x00") and len(payload) >= 14:
            out += b"\xff\xe0\x00\x10" + payload[:12] + b"\x00\x00"
        elif marker == 0xEE and payload.startswith(b"Adobe") and len(payload) >= 12:
            out += b"\xff\xee\x00\x0e" + payload[:12]
        elif 0xE0 <= marker <= 0xEF or marker == 0xFE:
            pass  # APPn / COM: metadata
        else:
            out += bytes((0xFF, marker)) + data[i:end]
        i = end
        if marker == 0xDA:  # start of scan: copy entropy-coded data up to the next marker
            j = i
            while True:
                k = data.find(b"\xff", j)
                if k < 0 or k + 1 >= n:
                    out += data[i:]
                    i = n
                    break
                following = data[k + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    j = k + 2
                    continue
                out += data[i:k]
                i = k
                break
    out += b"\xff\xd9"  # no end-of-image marker: close the image ourselves
    return bytes(out)


_PNG_KEPT_CHUNKS: Final = frozenset(
    {
        b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT",
        b"bKGD", b"pHYs", b"cICP", b"acTL", b"fcTL", b"fdAT",
    }
)  # fmt: skip


def strip_png_chunks(data: bytes) -> bytes:
    """Keep only the chunks needed to render the image (no text, EXIF, ICC, time, private)."""
    signature = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(signature):
        raise ValueError("not a PNG")
    out = bytearray(signature)
    i = len(signature)
    while i + 12 <= len(data):
        length = int.from_bytes(data[i : i + 4], "big")
        chunk_type = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > len(data):
            break
        if chunk_type in _PNG_KEPT_CHUNKS:
            out += data[i:end]
        if chunk_type == b"IEND":
            return bytes(out)
        i = end
    raise ValueError("truncated PNG")
