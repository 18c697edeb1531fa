"""Photos: decoded and re-encoded, so that no metadata block or trailing data can survive.

JPEG, PNG, WebP and GIF images are decoded and re-encoded by Pillow with the EXIF orientation
applied and no metadata written; HEIC (pillow-heif) becomes JPEG; animations keep their first
frame only. Every written image is opened again and refused if it carries metadata after all.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Final

import pillow_heif
from PIL import Image, ImageOps

from media.result import CleanMedia, UnsupportedMedia
from media.sniff import detect

__all__ = [
    "JPEG_QUALITY",
    "MAX_PIXELS",
    "image_handler",
    "is_raster_image",
    "reencode_jpeg2000",
    "reencode_picture",
    "sanitize_heic",
]

JPEG_QUALITY: Final = 90

MAX_PIXELS: Final = 8192 * 6144
"""The largest image decoded: 50.3 megapixels, the biggest phone sensor's full resolution.

Checked from the header, before any pixel is decoded. Pillow's own limit (89.5 megapixels) let
an 88-megapixel PNG of 257 KB take 7 s and about 1 GB; at this size a re-encode needs up to
about 1.7 GB (RGBA) and a few seconds of CPU, which the sandbox's limits allow."""

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
    limit = Image.MAX_IMAGE_PIXELS  # media.quiet lowers Pillow's own limit to ours while cleaning
    return MAX_PIXELS if limit is None else min(MAX_PIXELS, int(limit))


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UnsupportedMedia("could not decode image")
    if width * height > _max_pixels():
        raise UnsupportedMedia("image too large")


def image_handler(kind: str) -> Callable[[bytes], CleanMedia]:
    pil_format = _PIL_FORMATS[kind]

    def handle(data: bytes) -> CleanMedia:
        return _encode_image(_decode(data, [pil_format]), pil_format)

    return handle


def _decode(data: bytes, formats: list[str]) -> Image.Image:
    """The upright pixels of an image in one of ``formats``, refused over the pixel cap before
    any pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data), formats=formats) as opened:
            _check_pixels(opened.size)
            opened.load()
            return ImageOps.exif_transpose(opened)
    except UnsupportedMedia:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnsupportedMedia("image too large") from None
    except Exception:
        raise UnsupportedMedia("could not decode image") from None


_EMBEDDED_PICTURE_FORMATS: Final = ["GIF", "TIFF", "WEBP", "BMP"]


def is_raster_image(data: bytes) -> bool:
    """A picture :func:`reencode_picture` can decode: GIF, TIFF, WebP, BMP or HEIC."""
    return (
        data[:6] in (b"GIF87a", b"GIF89a")
        or data[:4] in (b"II*\x00", b"MM\x00*")
        or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")
        or data[:2] == b"BM"
        or _is_heic(data)
    )


def reencode_picture(data: bytes) -> CleanMedia:
    """A picture inside a document, decoded and written again without metadata: as PNG, or as
    JPEG for a HEIC photo. Nothing of the original encoding (EXIF, XMP, TIFF tags) survives."""
    if _is_heic(data):
        return sanitize_heic(data)
    return _encode_image(_decode(data, _EMBEDDED_PICTURE_FORMATS), "PNG")


def reencode_jpeg2000(data: bytes) -> CleanMedia:
    """A JPEG 2000 image (a PDF's JPX stream) as a JPEG without metadata, grey or RGB."""
    image = _decode(data, ["JPEG2000"])
    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode in ("1", "I", "I;16", "F", "LA") else "RGB")
    return _encode_image(image, "JPEG")


def _is_heic(data: bytes) -> bool:
    try:
        return detect(data) == "heic"
    except UnsupportedMedia:
        return False


def sanitize_heic(data: bytes) -> CleanMedia:
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
