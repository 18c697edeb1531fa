"""Strip identifying metadata from evidence files before they are stored.

Workers send photos, documents and voice notes. Anything that could identify them or where they
were (EXIF/GPS, camera serials, XMP, IPTC, ICC profiles, text chunks, document authors, audio
tags, container timestamps) is removed here, before storage.

The type is detected from the content's magic bytes; the declared type is never trusted. Every
supported format is rebuilt rather than patched in place where the libraries allow it, so data
hidden after the end of a file (a polyglot's second half) does not survive either:

* images (JPEG, PNG, WebP, GIF, HEIC) are decoded and re-encoded by Pillow with the EXIF
  orientation applied and no metadata written; HEIC becomes JPEG; animations keep their first
  frame only;
* PDFs are rebuilt page by page with pypdf: no document information, XMP, JavaScript, embedded
  files, open action, additional actions, annotation authors or page-piece data; EXIF and other
  APPn segments are cut from embedded JPEG images;
* Office Open XML (docx/xlsx/pptx) packages are rebuilt with neutral document properties, without
  custom properties, custom XML, thumbnails or the people list, and with comment / revision
  authors, revision session ids and local file paths blanked; embedded JPEG/PNG images lose their
  metadata and embedded Office packages are cleaned the same way; macro-enabled documents and
  documents with OLE objects are refused, and unpacking is capped (zip bombs);
* audio and video (Ogg Opus/Vorbis, MP3, MP4/M4A/MOV) lose all tags through mutagen; MP4 user data
  and metadata boxes (where the ``©xyz`` GPS atom lives) are blanked and the creation and
  modification times of the movie, tracks and media are zeroed. Audio and video are not
  re-encoded.

Everything here is a pure function of the input bytes: no I/O and no logging. Failures raise
:class:`UnsupportedMedia` with a short fixed reason that never contains file content. While a
file is processed no warning escapes and the Pillow and pypdf loggers are muted (they would quote
EXIF values and file bytes); since both are process-wide settings, one file is sanitized at a time
per process. The work is CPU-bound (up to a few seconds and about 1 GB of memory for the largest
photos): async callers should run it in a worker thread.
"""

from __future__ import annotations

import html
import io
import logging
import posixpath
import re
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

import mutagen.apev2
import mutagen.id3
import mutagen.mp3
import mutagen.mp4
import mutagen.ogg
import mutagen.oggopus
import mutagen.oggvorbis
import pillow_heif
from PIL import Image, ImageOps
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject, PdfObject, StreamObject

__all__ = ["MAX_BYTES", "CleanMedia", "UnsupportedMedia", "sanitize"]

MAX_BYTES: Final = 20 * 1024 * 1024
"""Telegram's getFile limit; anything larger is refused."""

MAX_ZIP_ENTRIES: Final = 5_000
"""Most entries an Office package (with its embedded packages) may have."""

MAX_ZIP_UNCOMPRESSED: Final = 100 * 1024 * 1024
"""Most bytes an Office package (with its embedded packages) may unpack to."""

JPEG_QUALITY: Final = 90

_FALLBACK_MAX_PIXELS: Final = 89_478_485  # Pillow's default, used if it was switched off


class UnsupportedMedia(Exception):
    """The file cannot be cleaned and must not be stored. The message is a short fixed reason."""


@dataclass(frozen=True)
class CleanMedia:
    data: bytes
    mime_type: str
    """The real type of ``data``, detected from content."""
    extension: str
    """File name extension without the dot, e.g. ``"jpg"``."""


def sanitize(data: bytes, *, declared_mime: str | None = None) -> CleanMedia:
    """Return ``data`` without identifying metadata, or raise :class:`UnsupportedMedia`.

    ``declared_mime`` (what the sender's client claims) is accepted for the caller's convenience
    but deliberately ignored: the type always comes from the content.
    """
    del declared_mime  # never trusted
    if len(data) > MAX_BYTES:
        raise UnsupportedMedia("file too large")
    if not data:
        raise UnsupportedMedia("empty file")
    data = bytes(data)  # a bytearray or memoryview must not change underneath the parsers
    handler = _HANDLERS[_detect(data)]
    with _contained():
        try:
            return handler(data)
        except UnsupportedMedia:
            raise
        except Exception:
            # A parser failed in a way its handler did not expect. The original exception may
            # quote file content, so it is not chained.
            raise UnsupportedMedia("could not process file") from None


# --------------------------------------------------------------------------------------------
# Type detection
# --------------------------------------------------------------------------------------------

_HEIC_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
)
_MP4_BRANDS: Final = frozenset(
    {
        b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1",
        b"dash", b"M4A ", b"M4B ", b"M4V ", b"MSNV", b"mmp4", b"qt  ",
    }
)  # fmt: skip


def _detect(data: bytes) -> str:
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
    raise UnsupportedMedia("unsupported file type")


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


# --------------------------------------------------------------------------------------------
# Warnings and library logging
# --------------------------------------------------------------------------------------------

_QUIET_LOCK: Final = threading.Lock()
# Pillow logs EXIF tag values at DEBUG level and pypdf quotes raw file bytes in its warnings.
_SILENCED_LOGGERS: Final = ("PIL", "pypdf")


@contextmanager
def _contained() -> Iterator[None]:
    """Nothing about the file leaves ``sanitize`` through warnings or library log records.

    Every warning is swallowed, except a decompression-bomb warning, which becomes an exception.
    The loggers of Pillow and pypdf (and their children) are switched off for the duration.
    Warning filters and logger levels are process-wide in Python 3.11, so the change is
    serialized with a lock: a process sanitizes one file at a time.
    """
    with _QUIET_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        loggers = [logging.getLogger(name) for name in _SILENCED_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------

_PIL_FORMATS: Final = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP"}
_IMAGE_OUTPUT: Final = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}
_METADATA_INFO_KEYS: Final = frozenset(
    {"exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "adobe"}
)


def _max_pixels() -> int:
    limit = Image.MAX_IMAGE_PIXELS
    return _FALLBACK_MAX_PIXELS if limit is None else int(limit)


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UnsupportedMedia("could not decode image")
    if width * height > _max_pixels():
        raise UnsupportedMedia("image too large")


def _image_handler(kind: str) -> Callable[[bytes], CleanMedia]:
    pil_format = _PIL_FORMATS[kind]

    def handle(data: bytes) -> CleanMedia:
        try:
            with Image.open(io.BytesIO(data), formats=[pil_format]) as opened:
                _check_pixels(opened.size)
                opened.load()
                image = ImageOps.exif_transpose(opened)
        except UnsupportedMedia:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UnsupportedMedia("image too large") from None
        except Exception:
            raise UnsupportedMedia("could not decode image") from None
        return _encode_image(image, pil_format)

    return handle


def _sanitize_heic(data: bytes) -> CleanMedia:
    try:
        heif = pillow_heif.open_heif(io.BytesIO(data))
        width, height = heif.size
        _check_pixels((int(width), int(height)))
        # libheif applies the container's rotation/mirroring while decoding, so the pixels are
        # already upright and the EXIF orientation must not be applied a second time.
        image = heif.to_pillow()
        image.load()
    except UnsupportedMedia:
        raise
    except Exception:
        raise UnsupportedMedia("could not decode image") from None
    return _encode_image(image, "JPEG")


def _encode_image(image: Image.Image, pil_format: str) -> CleanMedia:
    _check_pixels(image.size)
    image = _normalized_mode(image, pil_format)
    # A fresh image carries no ``info`` (EXIF, XMP, ICC profile, comments, text chunks) that a
    # Pillow encoder could fall back to.
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    out = io.BytesIO()
    if pil_format == "JPEG":
        clean.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif pil_format == "WEBP":
        clean.save(out, "WEBP", quality=JPEG_QUALITY)
    else:
        clean.save(out, pil_format)
    result = out.getvalue()
    _verify_image(result, pil_format)
    mime_type, extension = _IMAGE_OUTPUT[pil_format]
    return CleanMedia(result, mime_type, extension)


def _normalized_mode(image: Image.Image, pil_format: str) -> Image.Image:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        if pil_format == "PNG" and mode.startswith("I;16"):
            return image.convert("I;16")
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode not in ("1", "L", "LA", "RGB", "RGBA"):
        has_alpha = "A" in mode or "a" in mode
        image = image.convert("RGBA" if has_alpha else "RGB")

    if pil_format == "JPEG":
        if image.mode in ("RGBA", "LA"):
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
            image = background
        elif image.mode == "1":
            image = image.convert("L")
    elif pil_format == "WEBP" and image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    return image


def _verify_image(data: bytes, pil_format: str) -> None:
    """Fail closed if the encoder wrote any metadata after all."""
    with Image.open(io.BytesIO(data), formats=[pil_format]) as written:
        leaked = _METADATA_INFO_KEYS.intersection(written.info)
        text = getattr(written, "text", None) if pil_format == "PNG" else None
        if leaked or text or len(written.getexif()):
            raise UnsupportedMedia("could not remove image metadata")


# --------------------------------------------------------------------------------------------
# Lossless metadata removal for images embedded in documents
# --------------------------------------------------------------------------------------------


def _strip_jpeg_segments(data: bytes) -> bytes:
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


def _strip_png_chunks(data: bytes) -> bytes:
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


# --------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------

_PDF_DROPPED_KEYS: Final = (
    "/Metadata",  # XMP
    "/PieceInfo",  # application-private data
    "/LastModified",
    "/AA",  # additional actions (JavaScript triggers)
    "/OpenAction",
    "/JS",
    "/JavaScript",
    "/EmbeddedFiles",
    "/EF",  # embedded file streams of a file specification
    "/RF",
    "/Thumb",
    "/B",  # article beads, which lead to thread information dictionaries
)
_PDF_SAFE_ACTIONS: Final = frozenset({"/GoTo", "/URI", "/Named"})
_PDF_DROPPED_ANNOTATIONS: Final = frozenset(
    {"/FileAttachment", "/Sound", "/Movie", "/Screen", "/RichMedia", "/3D"}
)
_PDF_ANNOTATION_PERSONAL_KEYS: Final = ("/T", "/M", "/CreationDate")


def _sanitize_pdf(data: bytes) -> CleanMedia:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UnsupportedMedia("encrypted pdf")
        pages = list(reader.pages)
        if not pages:
            raise UnsupportedMedia("pdf has no pages")
        # Clean the source objects first: the writer copies only what stays reachable.
        _scrub_pdf_objects(pages)
        writer = PdfWriter()
        for page in pages:
            writer.add_page(page)
        writer.metadata = None  # no /Info, not even pypdf's /Producer
        out = io.BytesIO()
        writer.write(out)
        result = out.getvalue()
    except UnsupportedMedia:
        raise
    except Exception:
        raise UnsupportedMedia("could not read pdf") from None
    _verify_pdf(result, len(pages))
    return CleanMedia(result, "application/pdf", "pdf")


def _scrub_pdf_objects(roots: Sequence[DictionaryObject]) -> None:
    visited: dict[int, PdfObject] = {}  # keeps the objects alive, so no id() is reused
    stack: list[PdfObject] = list(roots)
    while stack:
        obj = stack.pop().get_object()
        if id(obj) in visited:
            continue
        if isinstance(obj, DictionaryObject):
            visited[id(obj)] = obj
            _scrub_pdf_dict(obj)
            stack.extend(obj.values())
        elif isinstance(obj, ArrayObject):
            visited[id(obj)] = obj
            stack.extend(obj)


def _scrub_pdf_dict(obj: DictionaryObject) -> None:
    for key in _PDF_DROPPED_KEYS:
        if key in obj:
            del obj[key]
    action = obj.get("/A")
    if action is not None:
        action = action.get_object()
        if not isinstance(action, DictionaryObject) or action.get("/S") not in _PDF_SAFE_ACTIONS:
            del obj["/A"]
    if obj.get("/S") is not None and "/Next" in obj:
        del obj["/Next"]  # chained actions
    value = obj.get("/V")
    if value is not None and isinstance(value.get_object(), DictionaryObject):
        del obj["/V"]  # a signature dictionary: signer name, certificate, signing time
    annotations = obj.get("/Annots")
    if annotations is not None:
        _scrub_pdf_annotations(obj, annotations.get_object())
    if obj.get("/Subtype") == "/Image" and isinstance(obj, StreamObject):
        filters = obj.get("/Filter")
        if filters is not None:
            filters = filters.get_object()
        if filters == "/DCTDecode" or (
            isinstance(filters, ArrayObject) and filters == ["/DCTDecode"]
        ):
            # DCT data is the JPEG file itself; cut its EXIF/XMP/ICC segments, keep the pixels.
            # The base-class accessors read and write the raw (encoded) stream bytes.
            StreamObject.set_data(obj, _strip_jpeg_segments(StreamObject.get_data(obj)))


def _scrub_pdf_annotations(page: DictionaryObject, annotations: PdfObject) -> None:
    if not isinstance(annotations, ArrayObject):
        del page["/Annots"]
        return
    kept = ArrayObject()
    for reference in annotations:
        annotation = reference.get_object()
        if not isinstance(annotation, DictionaryObject):
            continue
        subtype = annotation.get("/Subtype")
        if subtype in _PDF_DROPPED_ANNOTATIONS:
            continue
        if subtype == "/Widget":
            # The interactive form is not copied; the widget's appearance is what remains.
            for key in ("/Parent", "/M"):
                if key in annotation:
                    del annotation[key]
        else:
            for key in _PDF_ANNOTATION_PERSONAL_KEYS:  # the author and times of a comment
                if key in annotation:
                    del annotation[key]
        kept.append(reference)
    annotations.clear()
    annotations.extend(kept)


_PDF_FORBIDDEN_KEYS: Final = frozenset(
    {"/Metadata", "/JS", "/JavaScript", "/EmbeddedFiles", "/EF", "/OpenAction", "/AA", "/Info"}
)


def _verify_pdf(data: bytes, page_count: int) -> None:
    """Fail closed unless the rebuilt file is readable and has none of the removed features."""
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        ok = len(reader.pages) == page_count and "/Info" not in reader.trailer
        visited: dict[int, PdfObject] = {}
        stack: list[PdfObject] = [reader.trailer]
        while ok and stack:
            obj = stack.pop().get_object()
            if obj is None or id(obj) in visited:
                continue
            visited[id(obj)] = obj
            if isinstance(obj, DictionaryObject):
                if obj is not reader.trailer and _PDF_FORBIDDEN_KEYS.intersection(obj):
                    ok = False
                if obj.get("/Type") == "/EmbeddedFile":
                    ok = False
                action_type = obj.get("/S")
                if isinstance(action_type, NameObject) and action_type in _UNSAFE_ACTIONS:
                    ok = False
                stack.extend(obj.values())
            elif isinstance(obj, ArrayObject):
                stack.extend(obj)
    except Exception:
        ok = False
    if not ok:
        raise UnsupportedMedia("could not sanitize pdf")


_UNSAFE_ACTIONS: Final = frozenset(
    {"/JavaScript", "/Launch", "/ImportData", "/SubmitForm", "/GoToE", "/GoToR", "/Rendition"}
)


# --------------------------------------------------------------------------------------------
# Office Open XML
# --------------------------------------------------------------------------------------------

_OOXML_TYPES: Final = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "pptx",
    ),
}
_NEUTRAL_CORE: Final = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    b'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
)
_NEUTRAL_APP: Final = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'docPropsVTypes"/>'
)
# Relationship types (by suffix) whose targets are dropped from the package.
_DROPPED_RELATIONSHIPS: Final = (
    "/custom-properties",
    "/metadata/thumbnail",
    "/customXml",
    "/people",  # Word's list of comment and revision authors with their account ids
    "/revisionInfo",  # PowerPoint's editing-client ids and times
    "/classificationlabels",  # sensitivity labels naming the organisation's tenant
)
_DROPPED_PARTS: Final = ("docProps/custom.xml", "word/people.xml", "ppt/revisionInfo.xml")
_DROPPED_FOLDERS: Final = ("customXml/", "docProps/thumbnail", "docMetadata/")
_ZIP_EPOCH: Final = (1980, 1, 1, 0, 0, 0)
_NEUTRAL_AUTHOR: Final = "Author"
_SAFE_EXTERNAL_SCHEMES: Final = ("http:", "https:", "mailto:", "ftp:", "tel:", "#")

_ATTRIBUTES = r"(?:\s+[^\s=<>/]+\s*=\s*(?:\"[^\"]*\"|'[^']*'))*"
_START_TAG: Final = re.compile(rf"<([A-Za-z_][\w.:-]*)({_ATTRIBUTES})(\s*/?)>")
_ATTRIBUTE: Final = re.compile(r"(\s+)([^\s=<>/]+)(\s*=\s*)(\"[^\"]*\"|'[^']*')")
_RELATIONSHIP: Final = re.compile(
    rf"<(?:[\w.-]+:)?Relationship\b({_ATTRIBUTES})\s*(?:/>|>\s*</(?:[\w.-]+:)?Relationship>)"
)
_OVERRIDE: Final = re.compile(rf"<(?:[\w.-]+:)?Override\b({_ATTRIBUTES})\s*/>")
_CONTENT_TYPE: Final = re.compile(r"ContentType\s*=\s*[\"']([^\"']*)[\"']")
_AUTHOR_ELEMENT: Final = re.compile(
    r"(<(?:[\w.-]+:)?author(?:\s[^>]*)?>)[^<]*(</(?:[\w.-]+:)?author>)"
)
# Revision-session ids, document ids, document variables and the author's local template.
_WORD_SETTINGS_DROPPED: Final = re.compile(
    r"<w:(?:rsids|docVars|attachedTemplate)\b[^>]*/>|<w1[45]:docId\b[^>]*/>"
    r"|<w:(rsids|docVars)\b[^>]*>.*?</w:\1>",
    re.DOTALL,
)


@dataclass
class _ZipBudget:
    entries: int
    size: int


def _sanitize_ooxml(data: bytes) -> CleanMedia:
    budget = _ZipBudget(entries=MAX_ZIP_ENTRIES, size=MAX_ZIP_UNCOMPRESSED)
    mime_type, extension, result = _clean_package(data, budget, depth=0)
    return CleanMedia(result, mime_type, extension)


def _clean_package(data: bytes, budget: _ZipBudget, *, depth: int) -> tuple[str, str, bytes]:
    parts = _read_zip(data, budget)
    content_types = parts.get("[Content_Types].xml")
    if content_types is None:
        raise UnsupportedMedia("unsupported file type")
    declared = _CONTENT_TYPE.findall(_decode_xml(content_types))
    kinds = [_OOXML_TYPES[t] for t in declared if t in _OOXML_TYPES]
    if any("macroenabled" in t.lower() or "vba" in t.lower() for t in declared) or any(
        name.lower().endswith("vbaproject.bin") for name in parts
    ):
        raise UnsupportedMedia("macro-enabled documents are not supported")
    if len(kinds) != 1:
        raise UnsupportedMedia("unsupported file type")
    mime_type, extension = kinds[0]

    relationships = {
        name: _relationships(name, content)
        for name, content in parts.items()
        if name.endswith(".rels")
    }
    rewritten: dict[str, bytes] = {}
    dropped = {
        name for name in parts if name in _DROPPED_PARTS or name.startswith(_DROPPED_FOLDERS)
    }
    for rels in relationships.values():
        for rel in rels:
            if rel.internal_target is None:
                continue
            if rel.type.endswith("/metadata/core-properties"):
                rewritten[rel.internal_target] = _NEUTRAL_CORE
            elif rel.type.endswith("/extended-properties"):
                rewritten[rel.internal_target] = _NEUTRAL_APP
            elif rel.type.endswith(_DROPPED_RELATIONSHIPS):
                dropped.add(rel.internal_target)
    dropped.update(_relationships_part(name) for name in list(dropped))
    rewritten.setdefault("docProps/core.xml", _NEUTRAL_CORE)
    rewritten.setdefault("docProps/app.xml", _NEUTRAL_APP)

    cleaned: list[tuple[str, bytes]] = []
    for name, content in parts.items():
        if name in dropped:
            continue
        if name in rewritten:
            cleaned.append((name, rewritten[name]))
        elif name.endswith(".rels"):
            cleaned.append((name, _clean_relationships(content, relationships[name], dropped)))
        elif name == "[Content_Types].xml":
            cleaned.append((name, _clean_content_types(content, dropped)))
        elif name.endswith((".xml", ".vml")):
            cleaned.append((name, _scrub_xml_part(name, content)))
        else:
            cleaned.append((name, _clean_binary_part(content, budget, depth=depth)))
    return mime_type, extension, _write_zip(cleaned)


def _read_zip(data: bytes, budget: _ZipBudget) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise UnsupportedMedia("unsupported file type") from None
    parts: dict[str, bytes] = {}
    with archive:
        infos = archive.infolist()
        budget.entries -= len(infos)
        if budget.entries < 0:
            raise UnsupportedMedia("document has too many parts")
        if sum(info.file_size for info in infos) > budget.size:
            raise UnsupportedMedia("document too large when unpacked")
        for info in infos:
            if info.flag_bits & 0x1:
                raise UnsupportedMedia("encrypted document")
            if info.filename in parts:
                raise UnsupportedMedia("malformed document")
            if info.is_dir():
                continue
            try:
                with archive.open(info) as member:
                    content = member.read(budget.size + 1)
            except Exception:
                raise UnsupportedMedia("malformed document") from None
            budget.size -= len(content)
            if budget.size < 0:
                raise UnsupportedMedia("document too large when unpacked")
            parts[info.filename] = content
    return parts


def _write_zip(parts: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts:
            # Fixed timestamps, no extra fields, no comments: nothing about the sender's machine.
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return out.getvalue()


def _decode_xml(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnsupportedMedia("unsupported document encoding") from None


def _encode_xml(original: bytes, text: str) -> bytes:
    prefix = b"\xef\xbb\xbf" if original.startswith(b"\xef\xbb\xbf") else b""
    return prefix + text.encode("utf-8")


@dataclass(frozen=True)
class _Relationship:
    type: str
    target: str
    internal_target: str | None
    """The package part the relationship points at, or None for an external target."""


def _attributes(text: str) -> dict[str, str]:
    return {m.group(2): html.unescape(m.group(4)[1:-1]) for m in _ATTRIBUTE.finditer(text)}


def _relationships(rels_name: str, content: bytes) -> list[_Relationship]:
    # "word/_rels/document.xml.rels" describes "word/document.xml": targets are relative to "word".
    base = posixpath.dirname(posixpath.dirname(rels_name))
    found = []
    for match in _RELATIONSHIP.finditer(_decode_xml(content)):
        attrs = _attributes(match.group(1))
        target = attrs.get("Target", "")
        internal: str | None = None
        if attrs.get("TargetMode", "Internal") != "External":
            path = unquote(target)
            path = path[1:] if path.startswith("/") else posixpath.join(base, path)
            internal = posixpath.normpath(path)
        found.append(_Relationship(attrs.get("Type", ""), target, internal))
    return found


def _relationships_part(part: str) -> str:
    """Where the relationships of ``part`` are stored ("a/b.xml" -> "a/_rels/b.xml.rels")."""
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


def _clean_relationships(content: bytes, rels: list[_Relationship], dropped: set[str]) -> bytes:
    text = _decode_xml(content)
    by_target = iter(rels)

    def replace(match: re.Match[str]) -> str:
        rel = next(by_target)
        if rel.internal_target in dropped or rel.type.endswith("/attachedTemplate"):
            return ""
        if rel.internal_target is None and not rel.target.lower().startswith(
            _SAFE_EXTERNAL_SCHEMES
        ):
            # A local path ("file:///C:/Users/<name>/...") names the sender's account.
            return _ATTRIBUTE.sub(_blank_attribute("Target"), match.group(0))
        return match.group(0)

    return _encode_xml(content, _RELATIONSHIP.sub(replace, text))


def _blank_attribute(name: str) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        if match.group(2) != name:
            return match.group(0)
        return f'{match.group(1)}{match.group(2)}{match.group(3)}""'

    return replace


def _clean_content_types(content: bytes, dropped: set[str]) -> bytes:
    def replace(match: re.Match[str]) -> str:
        part = _attributes(match.group(1)).get("PartName", "")
        return "" if posixpath.normpath(unquote(part).lstrip("/")) in dropped else match.group(0)

    return _encode_xml(content, _OVERRIDE.sub(replace, _decode_xml(content)))


def _scrub_xml_part(name: str, content: bytes) -> bytes:
    text = _decode_xml(content)
    text = _START_TAG.sub(_scrub_start_tag, text)
    text = _AUTHOR_ELEMENT.sub(rf"\g<1>{_NEUTRAL_AUTHOR}\g<2>", text)
    if name == "word/settings.xml":
        text = _WORD_SETTINGS_DROPPED.sub("", text)
    return _encode_xml(content, text)


def _scrub_start_tag(tag: re.Match[str]) -> str:
    tag_local = tag.group(1).rpartition(":")[2]

    def attribute(match: re.Match[str]) -> str:
        space, name, equals, _value = match.groups()
        local = name.rpartition(":")[2]
        if (
            local.startswith("rsid")  # revision-session ids link documents to one machine
            or name in ("w:date", "w16cex:dateUtc")  # when a change or comment was made
            or (local == "dt" and tag_local == "cm")  # when a slide comment was made
        ):
            return ""
        if (
            local in ("author", "userName")
            or (local == "displayName" and tag_local == "person")
            or (local == "name" and tag_local in ("cmAuthor", "author", "userInfo"))
        ):
            replacement = _NEUTRAL_AUTHOR
        elif local == "initials":
            replacement = _NEUTRAL_AUTHOR[0]
        elif local in ("userId", "providerId") or (local == "url" and tag_local == "absPath"):
            replacement = ""
        else:
            return match.group(0)
        return f'{space}{name}{equals}"{replacement}"'

    return f"<{tag.group(1)}{_ATTRIBUTE.sub(attribute, tag.group(2))}{tag.group(3)}>"


def _clean_binary_part(content: bytes, budget: _ZipBudget, *, depth: int) -> bytes:
    try:
        if content.startswith(b"\xff\xd8\xff"):
            return _strip_jpeg_segments(content)
        if content.startswith(b"\x89PNG\r\n\x1a\n"):
            return _strip_png_chunks(content)
    except ValueError:
        raise UnsupportedMedia("could not clean an embedded image") from None
    if content.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # OLE objects (legacy embeddings, packaged files) keep their own metadata.
        raise UnsupportedMedia("documents with embedded objects are not supported")
    if content.startswith(b"PK\x03\x04"):
        if depth >= 1:
            raise UnsupportedMedia("documents with embedded objects are not supported")
        return _clean_package(content, budget, depth=depth + 1)[2]
    return content


# --------------------------------------------------------------------------------------------
# Audio and video
# --------------------------------------------------------------------------------------------


def _sanitize_ogg(data: bytes) -> CleanMedia:
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


def _sanitize_mp3(data: bytes) -> CleanMedia:
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


def _sanitize_mp4(data: bytes) -> CleanMedia:
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


# --------------------------------------------------------------------------------------------

_HANDLERS: Final[dict[str, Callable[[bytes], CleanMedia]]] = {
    "jpeg": _image_handler("jpeg"),
    "png": _image_handler("png"),
    "gif": _image_handler("gif"),
    "webp": _image_handler("webp"),
    "heic": _sanitize_heic,
    "pdf": _sanitize_pdf,
    "ooxml": _sanitize_ooxml,
    "ogg": _sanitize_ogg,
    "mp3": _sanitize_mp3,
    "mp4": _sanitize_mp4,
}
