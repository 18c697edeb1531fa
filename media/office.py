"""Office Open XML (docx/xlsx/pptx): packages rebuilt part by part with the authors blanked.

Packages are rebuilt with neutral document properties, without custom properties, custom XML,
thumbnails or the people list, and with comment / revision authors, revision session ids and
local file paths blanked; embedded JPEG/PNG images lose their metadata and embedded Office
packages are cleaned the same way; macro-enabled documents and documents with OLE objects are
refused, and unpacking is capped (zip bombs). The XML parts are edited as text with regular
expressions.
"""

from __future__ import annotations

import html
import io
import posixpath
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote

from media.embedded import strip_jpeg_segments, strip_png_chunks
from media.result import CleanMedia, UnknownFileType, UnsupportedMedia

__all__ = ["MAX_ZIP_ENTRIES", "MAX_ZIP_UNCOMPRESSED", "sanitize_ooxml"]

MAX_ZIP_ENTRIES: Final = 5_000
"""Most entries an Office package (with its embedded packages) may have."""

MAX_ZIP_UNCOMPRESSED: Final = 100 * 1024 * 1024
"""Most bytes an Office package (with its embedded packages) may unpack to."""


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


def sanitize_ooxml(data: bytes) -> CleanMedia:
    budget = _ZipBudget(entries=MAX_ZIP_ENTRIES, size=MAX_ZIP_UNCOMPRESSED)
    mime_type, extension, result = _clean_package(data, budget, depth=0)
    return CleanMedia(result, mime_type, extension)


def _clean_package(data: bytes, budget: _ZipBudget, *, depth: int) -> tuple[str, str, bytes]:
    parts = _read_zip(data, budget)
    content_types = parts.get("[Content_Types].xml")
    if content_types is None:
        raise UnknownFileType("unsupported file type")
    declared = _CONTENT_TYPE.findall(_decode_xml(content_types))
    kinds = [_OOXML_TYPES[t] for t in declared if t in _OOXML_TYPES]
    if any("macroenabled" in t.lower() or "vba" in t.lower() for t in declared) or any(
        name.lower().endswith("vbaproject.bin") for name in parts
    ):
        raise UnknownFileType("macro-enabled documents are not supported")
    if len(kinds) != 1:
        raise UnknownFileType("unsupported file type")
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
        raise UnknownFileType("unsupported file type") from None
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
            return strip_jpeg_segments(content)
        if content.startswith(b"\x89PNG\r\n\x1a\n"):
            return strip_png_chunks(content)
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
