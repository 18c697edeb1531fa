"""Voice notes and videos: every tag removed through mutagen, the sound itself left as it is.

Ogg Opus/Vorbis, MP3 and MP4/M4A/MOV lose all tags; MP4 user data and metadata boxes (where the
``©xyz`` GPS atom lives) are blanked and the creation and modification times of the movie, tracks
and media are zeroed. Audio and video are not re-encoded: blanked boxes keep their sizes, so no
offset in the file moves.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Final

import mutagen.apev2
import mutagen.id3
import mutagen.mp3
import mutagen.mp4
import mutagen.ogg
import mutagen.oggopus
import mutagen.oggvorbis

from media.result import CleanMedia, UnsupportedMedia

__all__ = ["sanitize_mp3", "sanitize_mp4", "sanitize_ogg"]


def sanitize_ogg(data: bytes) -> CleanMedia:
    buffer = io.BytesIO(data)
    try:
        serials = set()
        first_packet = b""
        while buffer.tell() < len(data):
            page = mutagen.ogg.OggPage(buffer)  # type: ignore[no-untyped-call]
            serials.add(page.serial)
            if not first_packet and page.packets:
                first_packet = page.packets[0]
    except Exception:
        raise UnsupportedMedia("could not read audio") from None
    if len(serials) != 1:
        # Chained or multiplexed streams: only the first one's tags would be removed.
        raise UnsupportedMedia("unsupported audio layout")
    audio_type: type[mutagen.oggopus.OggOpus] | type[mutagen.oggvorbis.OggVorbis]
    if first_packet.startswith(b"OpusHead"):
        audio_type = mutagen.oggopus.OggOpus
    elif first_packet.startswith(b"\x01vorbis"):
        audio_type = mutagen.oggvorbis.OggVorbis
    else:
        raise UnsupportedMedia("unsupported audio codec")
    buffer.seek(0)
    try:
        audio_type(buffer).delete(buffer)
        _reopen(audio_type, buffer)
    except Exception:
        raise UnsupportedMedia("could not read audio") from None
    return CleanMedia(buffer.getvalue(), "audio/ogg", "ogg")


def sanitize_mp3(data: bytes) -> CleanMedia:
    buffer = io.BytesIO(data)
    try:
        mutagen.mp3.MP3(buffer)  # type: ignore[no-untyped-call]
        # An APEv2 tag may sit before or after an ID3v1 tag at the end: strip until stable.
        for _ in range(4):
            before = buffer.getvalue()
            buffer.seek(0)
            mutagen.apev2.delete(buffer)
            buffer.seek(0)
            mutagen.id3.delete(buffer, delete_v1=True, delete_v2=True)
            if buffer.getvalue() == before:
                break
        else:
            raise UnsupportedMedia("could not remove audio tags")
        _reopen(mutagen.mp3.MP3, buffer)
    except Exception:
        raise UnsupportedMedia("could not read audio") from None
    return CleanMedia(buffer.getvalue(), "audio/mpeg", "mp3")


def sanitize_mp4(data: bytes) -> CleanMedia:
    buffer = io.BytesIO(data)
    try:
        mutagen.mp4.MP4(buffer).delete(buffer)  # type: ignore[no-untyped-call]
        scrubbed = bytearray(buffer.getvalue())
        has_video = _scrub_mp4_boxes(scrubbed)
        buffer = io.BytesIO(bytes(scrubbed))
        _reopen(mutagen.mp4.MP4, buffer)
    except Exception:
        raise UnsupportedMedia("could not read audio or video") from None
    if scrubbed[8:12] == b"qt  ":
        mime_type, extension = "video/quicktime", "mov"
    elif has_video:
        mime_type, extension = "video/mp4", "mp4"
    else:
        mime_type, extension = "audio/mp4", "m4a"
    return CleanMedia(bytes(scrubbed), mime_type, extension)


def _reopen(audio_type: Callable[[io.BytesIO], mutagen.FileType], buffer: io.BytesIO) -> None:
    buffer.seek(0)
    tags = audio_type(buffer).tags
    if tags:
        raise UnsupportedMedia("could not remove audio tags")


_MP4_BLANKED: Final = frozenset({b"udta", b"meta", b"uuid", b"free", b"skip", b"wide", b"XMP_"})
_MP4_TIMESTAMPED: Final = frozenset({b"mvhd", b"tkhd", b"mdhd"})
_MP4_CONTAINERS: Final = frozenset({b"moov", b"trak", b"mdia"})


def _mp4_boxes(buf: bytearray, start: int, end: int) -> Iterator[tuple[bytes, int, int, int]]:
    """Yield (type, box start, payload start, box end) for the boxes in ``buf[start:end]``."""
    i = start
    while i < end:
        if i + 8 > end:
            raise ValueError("truncated box")
        size = int.from_bytes(buf[i : i + 4], "big")
        box_type = bytes(buf[i + 4 : i + 8])
        header = 8
        if size == 1:
            if i + 16 > end:
                raise ValueError("truncated box")
            size = int.from_bytes(buf[i + 8 : i + 16], "big")
            header = 16
        elif size == 0:
            size = end - i
        if size < header or i + size > end:
            raise ValueError("bad box size")
        yield box_type, i, i + header, i + size
        i += size


def _scrub_mp4_boxes(buf: bytearray, start: int = 0, end: int | None = None) -> bool:
    """Blank metadata boxes in place (same sizes, so no offsets move); return True if video."""
    has_video = False
    for box_type, box_start, payload, box_end in _mp4_boxes(
        buf, start, len(buf) if end is None else end
    ):
        if box_type in _MP4_BLANKED:
            # "free" keeps the layout; zeros replace tags, GPS (©xyz), XMP and vendor data.
            buf[box_start + 4 : box_start + 8] = b"free"
            buf[payload:box_end] = bytes(box_end - payload)
        elif box_type in _MP4_TIMESTAMPED and payload < box_end:
            width = 8 if buf[payload] == 1 else 4
            times = slice(payload + 4, payload + 4 + 2 * width)
            if times.stop > box_end:
                raise ValueError("bad header box")
            buf[times] = bytes(2 * width)  # creation and modification time
        elif box_type == b"hdlr" and buf[payload + 8 : payload + 12] == b"vide":
            has_video = True
        elif box_type in _MP4_CONTAINERS:
            has_video = _scrub_mp4_boxes(buf, payload, box_end) or has_video
    return has_video
