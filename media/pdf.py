"""PDFs: rebuilt page by page with pypdf, keeping only what is needed to show the pages.

No document information, XMP, JavaScript, embedded files, open action, additional actions,
annotation authors or page-piece data survive; EXIF and other APPn segments are cut from embedded
JPEG images, and JPEG 2000 (JPX) images are decoded and written again as JPEG. The rebuilt file
is read again and refused if any of that is still reachable. More than :data:`MAX_PDF_PAGES`
pages are refused.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Final

from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    PdfObject,
    StreamObject,
)

from media.embedded import strip_jpeg_segments
from media.images import reencode_jpeg2000
from media.result import CleanMedia, UnsupportedMedia

__all__ = ["MAX_PDF_PAGES", "sanitize_pdf"]

MAX_PDF_PAGES: Final = 50
"""Most pages a PDF may have: a contract, payslips or a handbook chapter fit; a PDF that makes
pypdf walk thousands of pages (seconds each hundred, and memory) is refused."""

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


def sanitize_pdf(data: bytes) -> CleanMedia:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise UnsupportedMedia("encrypted pdf")
        declared = reader.root_object.get("/Pages", DictionaryObject()).get_object().get("/Count")
        if isinstance(declared, int) and declared > MAX_PDF_PAGES:
            raise UnsupportedMedia("pdf has too many pages")  # before the page tree is walked
        if len(reader.pages) > MAX_PDF_PAGES:
            raise UnsupportedMedia("pdf has too many pages")
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
        if isinstance(filters, ArrayObject) and len(filters) == 1:
            filters = filters[0]
        if filters == "/DCTDecode":
            # DCT data is the JPEG file itself; cut its EXIF/XMP/ICC segments, keep the pixels.
            # The base-class accessors read and write the raw (encoded) stream bytes.
            StreamObject.set_data(obj, strip_jpeg_segments(StreamObject.get_data(obj)))
        elif filters == "/JPXDecode" or (
            isinstance(filters, ArrayObject) and "/JPXDecode" in filters
        ):
            _reencode_jpx(obj)


def _reencode_jpx(image: StreamObject) -> None:
    """A JPEG 2000 image carries its own metadata boxes (XML, UUID/XMP, comments): it is decoded
    and written again as a plain JPEG, or the file is refused."""
    filters = image.get("/Filter")
    if isinstance(filters, ArrayObject) and len(filters) != 1:
        raise UnsupportedMedia("could not clean an embedded image")  # JPX behind other filters
    raw = StreamObject.get_data(image)
    clean = reencode_jpeg2000(raw)
    StreamObject.set_data(image, clean.data)
    gray = clean.mime_type == "image/jpeg" and _is_gray_jpeg(clean.data)
    image[NameObject("/Filter")] = NameObject("/DCTDecode")
    image[NameObject("/ColorSpace")] = NameObject("/DeviceGray" if gray else "/DeviceRGB")
    image[NameObject("/BitsPerComponent")] = NumberObject(8)
    for key in ("/DecodeParms", "/SMaskInData", "/Decode"):
        if key in image:
            del image[key]


def _is_gray_jpeg(data: bytes) -> bool:
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as written:
        return written.mode == "L"


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
