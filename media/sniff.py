"""The file's type, from its magic bytes: what the sender's client declares is never trusted.

:func:`detect` names the format module that will rebuild the file (``"jpeg"``, ``"pdf"``,
``"ooxml"``...) or refuses it. It only compares bytes and runs no parser library.
"""

from __future__ import annotations

from typing import Final

from media.result import UnknownFileType

__all__ = ["detect"]

_HEIC_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
)
_MP4_BRANDS: Final = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
        b"dash", b"M4A ", b"M4B ", b"M4V ", b"MSNV", b"mmp4", b"qt  ",
    }
)  # fmt: skip


def detect(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return "ooxml"
    if data.startswith(b"OggS"):
        return "ogg"
    if data[4:8] == b"ftyp":
        brands = _ftyp_brands(data)
        if brands & _HEIC_BRANDS:
            return "heic"
        if brands & _MP4_BRANDS:
            return "mp4"
    if data.startswith(b"ID3") or _is_mpeg_audio_frame(data):
        return "mp3"
    raise UnknownFileType("unsupported file type")


def _ftyp_brands(data: bytes) -> set[bytes]:
    size = int.from_bytes(data[0:4], "big")
    if size < 16 or size > len(data) or size % 4:
        return set()
    brands = {data[8:12]}
    brands.update(data[i : i + 4] for i in range(16, size, 4))
    return brands


def _is_mpeg_audio_frame(data: bytes) -> bool:
    # 11 sync bits, a valid MPEG version, a layer (AAC/ADTS has layer 00) and a bitrate index.
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    version, layer, bitrate = (data[1] >> 3) & 3, (data[1] >> 1) & 3, data[2] >> 4
    return version != 1 and layer != 0 and bitrate not in (0, 15)
