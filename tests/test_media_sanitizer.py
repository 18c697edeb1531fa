"""media: real files are built in memory and the metadata is proven gone."""

from __future__ import annotations

import contextlib
import io
import logging
import struct
import warnings
import zipfile
import zlib

import mutagen.apev2
import mutagen.id3
import mutagen.mp3
import mutagen.mp4
import mutagen.ogg
import mutagen.oggopus
import pillow_heif
import pytest
from PIL import Image, ImageCms, PngImagePlugin, TiffImagePlugin
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from media import MAX_BYTES, CleanMedia, UnsupportedMedia, office, sanitize
from media.images import MAX_PIXELS
from media.pdf import MAX_PDF_PAGES

NAME = "Maria Worker"
SERIAL = "SN-4711-CAMERA"
COMPANY = "Factory Co"
GPS_TEXT = "+12.3456-045.6789/"
RED = (255, 0, 0)
BLUE = (0, 0, 255)


def assert_absent(data: bytes, *needles: str) -> None:
    for needle in needles:
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            assert needle.encode(encoding) not in data, needle


def assert_present(data: bytes, *needles: str) -> None:
    """The input really carries what the test later proves gone."""
    for needle in needles:
        assert needle.encode() in data, needle


# --------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------


def identifying_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "PhoneModel X"  # Model
    exif[0x013B] = NAME  # Artist
    exif[0x0112] = orientation
    exif_ifd = exif.get_ifd(0x8769)
    exif_ifd[0xA431] = SERIAL  # BodySerialNumber
    exif_ifd[0xA430] = NAME  # CameraOwnerName
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"  # GPSLatitudeRef
    gps[2] = (TiffImagePlugin.IFDRational(12), TiffImagePlugin.IFDRational(34), 56.78)
    gps[3] = "E"  # GPSLongitudeRef
    gps[4] = (TiffImagePlugin.IFDRational(45), TiffImagePlugin.IFDRational(6), 7.89)
    gps[0x1D] = "2024:05:01"  # GPSDateStamp
    return exif


def two_colour_image(width: int = 60, height: int = 30) -> Image.Image:
    """Left half red, right half blue."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def jpeg_with_metadata(orientation: int = 1, size: tuple[int, int] = (60, 30)) -> bytes:
    out = io.BytesIO()
    two_colour_image(*size).save(
        out,
        "JPEG",
        exif=identifying_exif(orientation),
        xmp=f"<x:xmpmeta><dc:creator>{NAME}</dc:creator></x:xmpmeta>".encode(),
        icc_profile=srgb_profile(),
        comment=f"taken by {NAME}",
    )
    data = out.getvalue()
    assert_present(data, NAME, SERIAL, "Exif", "ICC_PROFILE", "PhoneModel X")
    return data


def png_with_metadata() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", NAME)
    info.add_text("Location", "Dormitory 4, GPS 12.34 45.06", zip=True)
    info.add_itxt("Description", f"photo by {NAME}", lang="en")
    out = io.BytesIO()
    Image.new("RGBA", (20, 10), (10, 20, 30, 128)).save(
        out, "PNG", pnginfo=info, exif=identifying_exif(), icc_profile=srgb_profile()
    )
    data = out.getvalue()
    assert_present(data, "Author", NAME, "iCCP", "eXIf", "zTXt")
    return data


def pdf_with_metadata() -> bytes:
    writer = PdfWriter()
    page = writer.add_blank_page(200, 200)
    image = DecodedStreamObject()
    image.set_data(jpeg_with_metadata(size=(16, 16)))
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(16),
            NameObject("/Height"): NumberObject(16),
            NameObject("/ColorSpace"): NameObject("/DeviceRGB"),
            NameObject("/BitsPerComponent"): NumberObject(8),
            NameObject("/Filter"): NameObject("/DCTDecode"),
        }
    )
    contents = DecodedStreamObject()
    contents.set_data(b"q 100 0 0 100 50 50 cm /Im0 Do Q")
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)})}
    )
    page[NameObject("/Contents")] = writer._add_object(contents)
    javascript = DictionaryObject(
        {
            NameObject("/S"): NameObject("/JavaScript"),
            NameObject("/JS"): TextStringObject("alertMaria();"),
        }
    )
    page[NameObject("/AA")] = DictionaryObject({NameObject("/O"): javascript})
    page[NameObject("/PieceInfo")] = DictionaryObject(
        {NameObject("/Scanner"): TextStringObject(f"owner {NAME}")}
    )
    comment = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Text"),
            NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (10, 10, 30, 30)]),
            NameObject("/Contents"): TextStringObject("wages unpaid since March"),
            NameObject("/T"): TextStringObject(NAME),
            NameObject("/M"): TextStringObject("D:20240501120000Z"),
        }
    )
    attached = DecodedStreamObject()
    attached.set_data(b"annotation attachment text")
    attached[NameObject("/Type")] = NameObject("/EmbeddedFile")
    attachment = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/FileAttachment"),
            NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (40, 10, 60, 30)]),
            NameObject("/FS"): DictionaryObject(
                {
                    NameObject("/Type"): NameObject("/Filespec"),
                    NameObject("/F"): TextStringObject("AnnotationFileName"),
                    NameObject("/EF"): DictionaryObject(
                        {NameObject("/F"): writer._add_object(attached)}
                    ),
                }
            ),
        }
    )
    page[NameObject("/Annots")] = ArrayObject(
        [writer._add_object(comment), writer._add_object(attachment)]
    )
    writer.add_metadata(
        {"/Author": NAME, "/Creator": "Factory Scanner 3000", "/Producer": "SecretProducer"}
    )
    writer.xmp_metadata = (
        b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        b'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        b"<dc:creator><rdf:Seq><rdf:li>XmpCreatorMaria</rdf:li></rdf:Seq></dc:creator>"
        b'</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    )
    writer.add_attachment("PayslipMaria", b"hidden attachment text")
    writer._root_object[NameObject("/OpenAction")] = writer._add_object(javascript)
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    assert_present(
        data, NAME, "Factory Scanner", "SecretProducer", "XmpCreatorMaria", "PayslipMaria"
    )
    assert_present(data, "hidden attachment", "alertMaria", SERIAL, "/OpenAction")
    assert_present(data, "annotation attachment", "AnnotationFileName")
    return data


CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Default Extension="jpeg" ContentType="image/jpeg"/>
<Override PartName="/word/document.xml"
 ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>
<Override PartName="/word/comments.xml"
 ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.comments+xml"/>
<Override PartName="/word/settings.xml"
 ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml"/>
<Override PartName="/word/people.xml"
 ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.people+xml"/>
<Override PartName="/customXml/itemProps1.xml"
 ContentType="application/vnd.openxmlformats-officedocument.customXmlProperties+xml"/>
<Override PartName="/docProps/core.xml"
 ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>
<Override PartName="/docProps/app.xml"
 ContentType="application/vnd.openxmlformats-officedocument.extended-properties+xml"/>
<Override PartName="/docProps/custom.xml"
 ContentType="application/vnd.openxmlformats-officedocument.custom-properties+xml"/>
</Types>"""

ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties" Target="docProps/app.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/>
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>
<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties" Target="docProps/custom.xml"/>
<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail" Target="docProps/thumbnail.jpeg"/>
</Relationships>"""  # noqa: E501

DOCUMENT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/customXml" Target="../customXml/item1.xml"/>
<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/comments" Target="comments.xml"/>
<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/settings" Target="settings.xml"/>
<Relationship Id="rId4" Type="http://schemas.microsoft.com/office/2011/relationships/people" Target="people.xml"/>
<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image1.jpeg"/>
<Relationship Id="rId6" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink" Target="https://example.org/rights" TargetMode="External"/>
</Relationships>"""  # noqa: E501

SETTINGS_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/attachedTemplate" Target="file:///C:\\Users\\maria.worker\\AppData\\Roaming\\Microsoft\\Templates\\Normal.dotm" TargetMode="External"/>
</Relationships>"""  # noqa: E501

W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOCUMENT = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document {W_NS}><w:body>
<w:p w:rsidR="00A1B2C3" w:rsidRDefault="00A1B2C3">
<w:r><w:t>The supervisor withheld wages.</w:t></w:r>
<w:ins w:id="1" w:author="{NAME}" w:date="2024-05-01T10:00:00Z"><w:r><w:t>Added.</w:t></w:r></w:ins>
</w:p></w:body></w:document>"""

COMMENTS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:comments {W_NS}><w:comment w:id="0" w:author="{NAME}" w:date="2024-05-01T10:00:00Z"
 w:initials="MW"><w:p><w:r><w:t>Overtime not paid.</w:t></w:r></w:p></w:comment></w:comments>"""

SETTINGS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:settings {W_NS} xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<w:attachedTemplate r:id="rId1"/><w:docVars><w:docVar w:name="owner" w:val="{NAME}"/></w:docVars>
<w:rsids><w:rsidRoot w:val="00A1B2C3"/><w:rsid w:val="00A1B2C3"/></w:rsids>
<w15:docId xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml"
 w15:val="{{7E1D00C5-0D1D-4F7A-9A57-DOC1D0000001}}"/></w:settings>"""

PEOPLE = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w15:people xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml">
<w15:person w15:author="{NAME}"><w15:presenceInfo w15:providerId="AD"
 w15:userId="S::maria.worker@factory.example::1234"/></w15:person></w15:people>"""

CORE = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties
 xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<dc:title>Complaint</dc:title><dc:creator>{NAME}</dc:creator>
<cp:lastModifiedBy>{NAME}</cp:lastModifiedBy>
<dcterms:created xsi:type="dcterms:W3CDTF">2024-05-01T10:00:00Z</dcterms:created>
</cp:coreProperties>"""

APP = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">
<Template>Normal.dotm</Template><Company>{COMPANY}</Company><Manager>Boss Name</Manager>
</Properties>"""

CUSTOM = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/custom-properties"
 xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes">
<property fmtid="{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}" pid="2" name="EmployeeId">
<vt:lpwstr>EMP-998877 {NAME}</vt:lpwstr></property></Properties>"""


def docx_with_metadata() -> bytes:
    parts = {
        "[Content_Types].xml": CONTENT_TYPES,
        "_rels/.rels": ROOT_RELS,
        "word/document.xml": DOCUMENT,
        "word/_rels/document.xml.rels": DOCUMENT_RELS,
        "word/comments.xml": COMMENTS,
        "word/settings.xml": SETTINGS,
        "word/_rels/settings.xml.rels": SETTINGS_RELS,
        "word/people.xml": PEOPLE,
        "word/media/image1.jpeg": jpeg_with_metadata(),
        "customXml/item1.xml": f"<employee><name>{NAME}</name></employee>",
        "customXml/itemProps1.xml": "<ds:datastoreItem/>",
        "docProps/core.xml": CORE,
        "docProps/app.xml": APP,
        "docProps/custom.xml": CUSTOM,
        "docProps/thumbnail.jpeg": jpeg_with_metadata(),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.comment = NAME.encode()
        for name, content in parts.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 1, 10, 0, 0))
            info.comment = b"created on MARIA-LAPTOP"
            archive.writestr(info, content)
    return out.getvalue()


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def ogg_page(serial: int, sequence: int, packets: list[bytes], position: int, flags: str) -> bytes:
    page = mutagen.ogg.OggPage()
    page.serial = serial
    page.sequence = sequence
    page.packets = packets
    page.position = position
    page.first = "first" in flags
    page.last = "last" in flags
    return page.write()


def opus_with_tags() -> bytes:
    """A valid Ogg Opus stream (1 s of silence) tagged with mutagen."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 7) + b"libopus" + struct.pack("<I", 0)
    silence = b"\xf8\xff\xfe"  # one 20 ms CELT frame
    pages = [
        ogg_page(7, 0, [head], 0, "first"),
        ogg_page(7, 1, [tags], 0, ""),
        ogg_page(7, 2, [silence] * 50, 312 + 50 * 960, "last"),
    ]
    buffer = io.BytesIO(b"".join(pages))
    audio = mutagen.oggopus.OggOpus(buffer)
    audio["ARTIST"] = [NAME]
    audio["LOCATION"] = [GPS_TEXT]
    audio["COMMENT"] = ["recorded in dormitory 4"]
    buffer.seek(0)
    audio.save(buffer)
    data = buffer.getvalue()
    assert_present(data, NAME, GPS_TEXT)
    return data


def mp3_with_tags() -> bytes:
    """MPEG-1 layer III frames (128 kbit/s, 44.1 kHz, mono) with ID3v2, ID3v1 and APEv2 tags."""
    frame = b"\xff\xfb\x90\xc0" + bytes(413)
    buffer = io.BytesIO(frame * 40)
    tags = mutagen.id3.ID3()
    tags.add(mutagen.id3.TPE1(encoding=3, text=[NAME]))
    tags.add(mutagen.id3.COMM(encoding=3, lang="eng", desc="", text=[f"{SERIAL} phone"]))
    tags.add(mutagen.id3.TXXX(encoding=3, desc="location", text=[GPS_TEXT]))
    tags.save(buffer, v1=2)
    ape = mutagen.apev2.APEv2()
    ape["Artist"] = "ApeMaria"
    buffer.seek(0)
    ape.save(buffer)
    data = buffer.getvalue()
    assert_present(data, NAME, SERIAL, GPS_TEXT, "ApeMaria", "TAG")
    return data


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, payload: bytes, version: int = 0) -> bytes:
    return box(kind, bytes((version, 0, 0, 0)) + payload)


IDENTITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
CREATED = 3_797_000_000  # 2024 in seconds since 1904


def mp4_with_metadata(handler: bytes = b"soun", brand: bytes = b"M4A ") -> bytes:
    """A minimal MP4: one (empty) track, QuickTime GPS in udta/©xyz and moov/meta, iTunes tags."""
    mvhd = full_box(
        b"mvhd",
        struct.pack(">IIIIIH10x", CREATED, CREATED + 1, 1000, 1000, 0x10000, 0x100)
        + IDENTITY_MATRIX
        + bytes(24)
        + struct.pack(">I", 2),
    )
    tkhd = full_box(
        b"tkhd",
        struct.pack(">IIIII8xHHHH", CREATED, CREATED + 1, 1, 0, 1000, 0, 0, 0x100, 0)
        + IDENTITY_MATRIX
        + struct.pack(">II", 0, 0),
    )
    mdhd = full_box(b"mdhd", struct.pack(">IIIIHH", CREATED, CREATED + 1, 44100, 44100, 0, 0))
    hdlr = full_box(b"hdlr", struct.pack(">I4s12x", 0, handler) + b"Handler\x00")
    sample_entry = box(
        b"mp4a",
        bytes(6)
        + struct.pack(">HII HHHH I", 1, 0, 0, 1, 16, 0, 0, 44100 << 16)
        + box(b"btrt", bytes(12)),
    )
    stbl = box(
        b"stbl",
        full_box(b"stsd", struct.pack(">I", 1) + sample_entry)
        + full_box(b"stts", struct.pack(">I", 0))
        + full_box(b"stsc", struct.pack(">I", 0))
        + full_box(b"stsz", struct.pack(">II", 0, 0))
        + full_box(b"stco", struct.pack(">I", 0)),
    )
    dinf = box(b"dinf", full_box(b"dref", struct.pack(">I", 1) + box(b"url ", b"\x00\x00\x00\x01")))
    minf = box(b"minf", full_box(b"smhd", bytes(4)) + dinf + stbl)
    trak = box(b"trak", tkhd + box(b"mdia", mdhd + hdlr + minf))
    location = GPS_TEXT.encode()
    udta = box(b"udta", box(b"\xa9xyz", struct.pack(">HH", len(location), 0x15C7) + location))
    key = b"com.apple.quicktime.location.ISO6709"
    quicktime_meta = full_box(
        b"meta",
        full_box(b"hdlr", struct.pack(">I4s12x", 0, b"mdta") + b"\x00")
        + full_box(b"keys", struct.pack(">I", 1) + struct.pack(">I", 8 + len(key)) + b"mdta" + key)
        + box(
            b"ilst", box(struct.pack(">I", 1), box(b"data", struct.pack(">II", 1, 0) + location))
        ),
    )
    moov = box(b"moov", mvhd + trak + udta + quicktime_meta)
    ftyp = box(b"ftyp", brand + bytes(4) + brand + b"isommp42")
    data = ftyp + moov + box(b"mdat", bytes(64))
    buffer = io.BytesIO(data)
    tagged = mutagen.mp4.MP4(buffer)
    tagged["\xa9nam"] = ["statement"]
    tagged["\xa9ART"] = [NAME]
    buffer.seek(0)
    tagged.save(buffer)
    data = buffer.getvalue()
    assert_present(data, NAME, GPS_TEXT, "com.apple.quicktime.location")
    return data


def mp4_times(data: bytes) -> list[bytes]:
    """The creation/modification time fields of every mvhd, tkhd and mdhd box."""
    times = []
    for kind in (b"mvhd", b"tkhd", b"mdhd"):
        start = data.index(kind) + 4
        assert data[start] == 0  # version 0: two 32-bit times after version and flags
        times.append(data[start + 4 : start + 12])
    return times


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def test_jpeg_loses_exif_gps_serial_xmp_icc_and_comment() -> None:
    clean = sanitize(jpeg_with_metadata())

    assert (clean.mime_type, clean.extension) == ("image/jpeg", "jpg")
    assert_absent(clean.data, NAME, SERIAL, "PhoneModel", "PhoneMaker", "Exif", "ICC_PROFILE")
    assert b"http://ns.adobe.com/xap" not in clean.data
    assert b"xmpmeta" not in clean.data
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.format == "JPEG"
        exif = image.getexif()
        assert len(exif) == 0
        assert len(exif.get_ifd(0x8825)) == 0  # GPS IFD
        assert not {"exif", "icc_profile", "xmp", "comment"} & set(image.info)
        image.load()


def test_jpeg_orientation_is_applied_to_the_pixels() -> None:
    clean = sanitize(jpeg_with_metadata(orientation=6))  # "rotate 90° clockwise to display"

    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.size == (30, 60)
        # The left (red) half is now on top, the right (blue) half at the bottom.
        red, _, blue = image.convert("RGB").getpixel((15, 5))
        assert red > 200
        assert blue < 60
        red, _, blue = image.convert("RGB").getpixel((15, 55))
        assert blue > 200
        assert red < 60
        assert image.getexif().get(0x0112) is None


def test_png_loses_text_chunks_exif_and_icc() -> None:
    clean = sanitize(png_with_metadata())

    assert (clean.mime_type, clean.extension) == ("image/png", "png")
    assert_absent(clean.data, NAME, "Author", "Dormitory", "Description")
    for chunk in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"iCCP", b"tIME"):
        assert chunk not in clean.data
    with Image.open(io.BytesIO(clean.data)) as image:
        image.load()
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0)) == (10, 20, 30, 128)
        assert image.text == {}
        assert len(image.getexif()) == 0


@pytest.mark.parametrize("image_format", ["GIF", "WEBP"])
def test_gif_and_webp_are_reencoded_without_metadata(image_format: str) -> None:
    out = io.BytesIO()
    image = two_colour_image()
    if image_format == "GIF":
        image.save(out, "GIF", comment=f"by {NAME}".encode())
    else:
        image.save(out, "WEBP", exif=identifying_exif(), xmp=f"<x>{NAME}</x>".encode())
    assert_present(out.getvalue(), NAME)

    clean = sanitize(out.getvalue())

    assert clean.mime_type == f"image/{image_format.lower()}"
    assert_absent(clean.data, NAME, SERIAL)
    with Image.open(io.BytesIO(clean.data)) as reopened:
        assert reopened.format == image_format
        assert reopened.size == (60, 30)
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(reopened.info)


def test_heic_becomes_a_clean_upright_jpeg() -> None:
    out = io.BytesIO()
    heif = pillow_heif.from_pillow(two_colour_image(64, 32))
    # pillow-heif stores EXIF orientation 6 as the container's rotation, as phones do.
    heif.save(out, quality=90, exif=identifying_exif(orientation=6).tobytes())
    assert_present(out.getvalue(), SERIAL)

    clean = sanitize(out.getvalue(), declared_mime="image/heic")

    assert (clean.mime_type, clean.extension) == ("image/jpeg", "jpg")
    assert_absent(clean.data, NAME, SERIAL, "Exif")
    with Image.open(io.BytesIO(clean.data)) as image:
        assert image.size == (32, 64)
        red, _, blue = image.convert("RGB").getpixel((16, 5))
        assert red > 200
        assert blue < 60
        assert len(image.getexif()) == 0


def test_appended_payload_after_an_image_does_not_survive() -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as hidden:
        hidden.writestr("names.txt", NAME)
    polyglot = jpeg_with_metadata() + archive.getvalue()

    clean = sanitize(polyglot)

    assert clean.mime_type == "image/jpeg"
    assert b"PK\x03\x04" not in clean.data
    assert_absent(clean.data, NAME, "names.txt")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def test_decompression_bomb_is_rejected_without_a_warning() -> None:
    # A PNG whose header claims 30000 x 30000 pixels (10x Pillow's limit) with no real data.
    ihdr = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b""))
    png += png_chunk(b"IEND", b"")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UnsupportedMedia, match="image too large"):
            sanitize(png)
    assert caught == []


@pytest.mark.parametrize("side", [40, 100])  # 1.6x (Pillow warns) and 10x (Pillow raises)
def test_images_over_the_pixel_limit_are_rejected(
    side: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.BytesIO()
    Image.new("RGB", (side, side)).save(out, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UnsupportedMedia, match="image too large"):
            sanitize(out.getvalue())
    assert caught == []


def test_gif_frame_larger_than_its_screen_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    # Logical screen 10x10 (under the limit) but the first frame extends to 60x60, which makes
    # Pillow grow the image and emit its DecompressionBombWarning while opening.
    frame = b"," + struct.pack("<HHHHB", 0, 0, 60, 60, 0) + b"\x02\x02\x4c\x01\x00"
    gif = b"GIF89a" + struct.pack("<HHBBB", 10, 10, 0x80, 0, 0) + bytes(6) + frame + b";"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2_000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(UnsupportedMedia, match="image too large"):
            sanitize(gif)
    assert caught == []


def test_an_88_megapixel_png_of_a_few_bytes_is_refused_before_decoding() -> None:
    # Under Pillow's own limit (89.5 MP), this used to be decoded: 7 s and about 1 GB.
    ihdr = struct.pack(">IIBBBBB", 11_000, 8_000, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b""))
    png += png_chunk(b"IEND", b"")
    assert MAX_PIXELS < 11_000 * 8_000
    with pytest.raises(UnsupportedMedia, match="image too large"):
        sanitize(png)
    assert Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's limit is lowered only while cleaning


def blank_pdf(pages: int) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_over_the_page_limit_is_refused_and_one_at_the_limit_is_cleaned() -> None:
    assert len(PdfReader(io.BytesIO(sanitize(blank_pdf(MAX_PDF_PAGES)).data)).pages) == 50
    with pytest.raises(UnsupportedMedia, match="too many pages"):
        sanitize(blank_pdf(MAX_PDF_PAGES + 1))


# --------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------


def test_pdf_loses_info_xmp_javascript_attachments_and_image_exif() -> None:
    clean = sanitize(pdf_with_metadata())

    assert (clean.mime_type, clean.extension) == ("application/pdf", "pdf")
    assert_absent(clean.data, NAME, "Factory Scanner", "SecretProducer", "XmpCreatorMaria", "pypdf")
    assert_absent(clean.data, "PayslipMaria", "hidden attachment", "alertMaria", SERIAL, "Exif")
    assert_absent(clean.data, "annotation attachment", "AnnotationFileName")
    for key in (b"/OpenAction", b"/JavaScript", b"/EmbeddedFile", b"/Metadata", b"/AA"):
        assert key not in clean.data

    reader = PdfReader(io.BytesIO(clean.data))
    assert reader.metadata is None
    assert reader.xmp_metadata is None
    assert "/Info" not in reader.trailer
    assert "/Names" not in reader.trailer["/Root"]
    assert len(reader.pages) == 1
    page = reader.pages[0]
    assert "/PieceInfo" not in page
    (comment,) = (annotation.get_object() for annotation in page["/Annots"])
    assert comment["/Contents"] == "wages unpaid since March"  # the content stays
    assert "/T" not in comment  # its author
    assert "/M" not in comment  # and when it was written
    image_stream = page["/Resources"]["/XObject"]["/Im0"].get_object()
    with Image.open(io.BytesIO(image_stream.get_data())) as image:
        image.load()
        assert image.size == (16, 16)
        assert len(image.getexif()) == 0


def test_encrypted_pdf_is_rejected() -> None:
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt("secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)

    with pytest.raises(UnsupportedMedia, match="encrypted pdf"):
        sanitize(out.getvalue())


# --------------------------------------------------------------------------------------------
# Office Open XML
# --------------------------------------------------------------------------------------------


def test_docx_loses_authors_company_custom_properties_and_paths() -> None:
    original = docx_with_metadata()

    clean = sanitize(original, declared_mime="application/octet-stream")

    assert clean.mime_type == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    assert clean.extension == "docx"
    parts = unzip(clean.data)
    everything = clean.data + b"".join(parts.values())
    assert_absent(everything, NAME, COMPANY, "Boss Name", "Normal.dotm", "maria.worker")
    assert_absent(everything, "EMP-998877", "MARIA-LAPTOP", "00A1B2C3", "2024-05-01", SERIAL)
    assert_absent(everything, "DOC1D0000001")
    assert "docProps/custom.xml" not in parts
    assert "word/people.xml" not in parts
    assert not [name for name in parts if name.startswith(("customXml/", "docProps/thumb"))]
    assert b"custom.xml" not in parts["[Content_Types].xml"]
    assert b"customXml" not in parts["[Content_Types].xml"]
    assert b"<dc:creator" not in parts["docProps/core.xml"]
    assert b"Company" not in parts["docProps/app.xml"]

    # The content and the comment text stay, the package stays consistent.
    assert b"The supervisor withheld wages." in parts["word/document.xml"]
    assert b"Overtime not paid." in parts["word/comments.xml"]
    assert b'w:author="Author"' in parts["word/comments.xml"]
    assert b"https://example.org/rights" in parts["word/_rels/document.xml.rels"]
    for rels in ("_rels/.rels", "word/_rels/document.xml.rels"):
        for target in (b"custom.xml", b"thumbnail", b"customXml", b"people.xml"):
            assert target not in parts[rels]
    with zipfile.ZipFile(io.BytesIO(clean.data)) as archive:
        assert archive.comment == b""
        for info in archive.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.comment == b""
    with Image.open(io.BytesIO(parts["word/media/image1.jpeg"])) as image:
        image.load()
        assert len(image.getexif()) == 0


def test_xlsx_comment_authors_and_file_path_are_removed() -> None:
    main = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Override PartName="/xl/workbook.xml" ContentType="{main}"/></Types>'
        ),
        "xl/workbook.xml": (
            '<workbook xmlns:x15ac="http://schemas.microsoft.com/office/spreadsheetml/2010/11/ac">'
            '<x15ac:absPath url="C:\\Users\\maria.worker\\Documents\\"/><sheets/>'
            f'<fileSharing userName="{NAME}"/></workbook>'
        ),
        "xl/comments1.xml": (
            f"<comments><authors><author>{NAME}</author></authors><commentList/></comments>"
        ),
        "xl/persons/person.xml": (
            f'<personList><person displayName="{NAME}" id="{{1}}" userId="maria@x.example"'
            ' providerId="AD"/></personList>'
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in parts.items():
            archive.writestr(name, content)

    clean = sanitize(buffer.getvalue())

    assert clean.extension == "xlsx"
    cleaned = unzip(clean.data)
    assert_absent(b"".join(cleaned.values()), NAME, "maria")
    assert b"<author>Author</author>" in cleaned["xl/comments1.xml"]


def test_pptx_comment_authors_times_and_revision_clients_are_removed() -> None:
    main = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    revision_type = "http://schemas.microsoft.com/office/2015/10/relationships/revisionInfo"
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Override PartName="/ppt/presentation.xml" ContentType="{main}"/>'
            '<Override PartName="/ppt/revisionInfo.xml" ContentType="application/xml"/></Types>'
        ),
        "ppt/presentation.xml": "<p:presentation/>",
        "ppt/_rels/presentation.xml.rels": (
            "<Relationships>"
            f'<Relationship Id="rId9" Type="{revision_type}" Target="revisionInfo.xml"/>'
            "</Relationships>"
        ),
        "ppt/revisionInfo.xml": '<p1510:revInfo><p1510:client id="{C1-MARIA}"/></p1510:revInfo>',
        "ppt/commentAuthors.xml": (
            f'<p:cmAuthorLst><p:cmAuthor id="1" name="{NAME}" initials="MW" lastIdx="1"'
            ' clrIdx="0"/></p:cmAuthorLst>'
        ),
        "ppt/comments/comment1.xml": (
            '<p:cmLst><p:cm authorId="1" dt="2024-05-01T10:00:00.000" idx="1">'
            "<p:text>no water</p:text></p:cm></p:cmLst>"
        ),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in parts.items():
            archive.writestr(name, content)

    clean = sanitize(buffer.getvalue())

    assert clean.extension == "pptx"
    cleaned = unzip(clean.data)
    assert_absent(b"".join(cleaned.values()), NAME, "MW", "MARIA", "2024-05-01", "revisionInfo")
    assert "ppt/revisionInfo.xml" not in cleaned
    assert b"<p:text>no water</p:text>" in cleaned["ppt/comments/comment1.xml"]


def test_macro_enabled_document_is_rejected() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<Types><Override PartName="/word/document.xml" '
            'ContentType="application/vnd.ms-word.document.macroEnabled.main+xml"/></Types>',
        )
        archive.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0")

    with pytest.raises(UnsupportedMedia, match="macro"):
        sanitize(buffer.getvalue())


def test_zip_bomb_is_rejected() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("word/document.xml", DOCUMENT)
        archive.writestr("word/media/filler.bin", bytes(office.MAX_ZIP_UNCOMPRESSED))
    assert len(buffer.getvalue()) < MAX_BYTES

    with pytest.raises(UnsupportedMedia, match="too large when unpacked"):
        sanitize(buffer.getvalue())


def test_zip_with_too_many_entries_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(office, "MAX_ZIP_ENTRIES", 10)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        for number in range(20):
            archive.writestr(f"word/part{number}.xml", "<x/>")

    with pytest.raises(UnsupportedMedia, match="too many parts"):
        sanitize(buffer.getvalue())


# --------------------------------------------------------------------------------------------
# Audio and video
# --------------------------------------------------------------------------------------------


def test_ogg_opus_voice_note_loses_its_tags() -> None:
    clean = sanitize(opus_with_tags(), declared_mime="audio/ogg")

    assert (clean.mime_type, clean.extension) == ("audio/ogg", "ogg")
    assert_absent(clean.data, NAME, GPS_TEXT, "dormitory")
    audio = mutagen.oggopus.OggOpus(io.BytesIO(clean.data))
    assert audio.tags is not None
    assert dict(audio.tags) == {}
    assert audio.info.length == pytest.approx(1.0)


def test_mp3_loses_id3v2_id3v1_and_ape_tags() -> None:
    clean = sanitize(mp3_with_tags())

    assert (clean.mime_type, clean.extension) == ("audio/mpeg", "mp3")
    assert_absent(clean.data, NAME, SERIAL, GPS_TEXT, "ApeMaria", "APETAGEX")
    assert not clean.data.startswith(b"ID3")
    assert b"TAG" not in clean.data[-128:]
    audio = mutagen.mp3.MP3(io.BytesIO(clean.data))
    assert audio.tags is None
    assert audio.info.sample_rate == 44100


@pytest.mark.parametrize(
    ("handler", "brand", "expected"),
    [
        (b"soun", b"M4A ", ("audio/mp4", "m4a")),
        (b"vide", b"isom", ("video/mp4", "mp4")),
        (b"vide", b"qt  ", ("video/quicktime", "mov")),
    ],
)
def test_mp4_loses_tags_gps_atoms_and_timestamps(
    handler: bytes, brand: bytes, expected: tuple[str, str]
) -> None:
    original = mp4_with_metadata(handler, brand)
    assert all(times != bytes(8) for times in mp4_times(original))

    clean = sanitize(original)

    assert (clean.mime_type, clean.extension) == expected
    assert_absent(clean.data, NAME, GPS_TEXT, "com.apple.quicktime")
    assert b"\xa9xyz" not in clean.data
    assert b"udta" not in clean.data
    assert mp4_times(clean.data) == [bytes(8)] * 3
    audio = mutagen.mp4.MP4(io.BytesIO(clean.data))
    assert not audio.tags


def test_unparseable_audio_is_rejected() -> None:
    with pytest.raises(UnsupportedMedia):
        sanitize(b"OggS" + b"\x00" * 100)
    with pytest.raises(UnsupportedMedia):
        sanitize(b"ID3\x04\x00\x00\x00\x00\x00\x05" + NAME.encode() + b"garbage")


# --------------------------------------------------------------------------------------------
# Detection and limits
# --------------------------------------------------------------------------------------------


def test_no_file_content_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    # At DEBUG level Pillow logs EXIF values and pypdf quotes the bytes around a broken object.
    jpeg = jpeg_with_metadata(orientation=6)
    broken = pdf_with_metadata().replace(b"/T (Maria", b"/T \xed(Maria")
    caplog.set_level(logging.DEBUG)
    levels = {name: logging.getLogger(name).level for name in ("PIL", "pypdf")}

    sanitize(jpeg)
    with contextlib.suppress(UnsupportedMedia):
        sanitize(broken)

    assert NAME not in caplog.text
    assert [r for r in caplog.records if r.name.split(".")[0] in ("PIL", "pypdf")] == []
    # Restored afterwards to whatever they were (services.cases holds them at WARNING for good).
    assert {name: logging.getLogger(name).level for name in levels} == levels


def test_declared_mime_is_ignored_when_content_differs() -> None:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), RED).save(out, "PNG")

    clean = sanitize(out.getvalue(), declared_mime="application/pdf")

    assert clean == CleanMedia(clean.data, "image/png", "png")
    with pytest.raises(UnsupportedMedia, match="unsupported file type"):
        sanitize(b"MZ\x90\x00\x03" + bytes(200), declared_mime="image/jpeg")


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.exe", b"MZ")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"MZ\x90\x00" + bytes(100), id="exe"),
        pytest.param(b"<!DOCTYPE html><html><script>x()</script></html>", id="html"),
        pytest.param(b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', id="svg"),
        pytest.param(b"\x7fELF" + bytes(100), id="elf"),
        pytest.param(plain_zip(), id="zip-not-office"),
        pytest.param(b"junk before the header %PDF-1.7\n", id="pdf-not-at-start"),
        pytest.param(b"GIF89a<script>alert(1)</script>", id="gif-js-polyglot"),
        pytest.param(b"\xff\xd8\xff\xe0" + NAME.encode() * 10, id="jpeg-magic-garbage"),
        pytest.param(bytes(range(256)) * 4, id="random"),
    ],
)
def test_unknown_and_polyglot_files_are_rejected(data: bytes) -> None:
    with pytest.raises(UnsupportedMedia) as raised:
        sanitize(data, declared_mime="image/jpeg")
    assert NAME not in str(raised.value)
    assert len(str(raised.value)) < 60


def test_oversize_input_is_rejected_before_parsing() -> None:
    data = jpeg_with_metadata()
    too_big = data + bytes(MAX_BYTES + 1 - len(data))

    with pytest.raises(UnsupportedMedia, match="file too large"):
        sanitize(too_big)
    with pytest.raises(UnsupportedMedia, match="empty file"):
        sanitize(b"")


def test_exact_size_limit_is_accepted() -> None:
    data = jpeg_with_metadata()
    assert sanitize(data + bytes(MAX_BYTES - len(data))).mime_type == "image/jpeg"


# --------------------------------------------------------------------------------------------
# Fail closed on embedded parts the bot cannot strip in place
# --------------------------------------------------------------------------------------------


def picture(image_format: str) -> bytes:
    """A small picture in ``image_format`` that names its author in its metadata."""
    out = io.BytesIO()
    image = two_colour_image(16, 8)
    if image_format == "HEIC":
        pillow_heif.from_pillow(image).save(out, exif=identifying_exif().tobytes())
    elif image_format == "TIFF":
        image.save(out, "TIFF", tiffinfo={0x013B: NAME, 0x010E: f"photo by {NAME}"})
    elif image_format == "GIF":
        image.save(out, "GIF", comment=f"photo by {NAME}")
    else:
        image.save(out, image_format, exif=identifying_exif())
    assert_present(out.getvalue(), NAME if image_format != "HEIC" else SERIAL)
    return out.getvalue()


VECTOR_PICTURES = {
    "svg": f'<svg xmlns="http://www.w3.org/2000/svg"><metadata>{NAME}</metadata></svg>'.encode(),
    # An EMF header record (type 1) with " EMF" at offset 40, then a description naming the author.
    "emf": struct.pack("<II", 1, 108) + bytes(32) + b" EMF" + bytes(64) + NAME.encode("utf-16-le"),
    "wmf": b"\xd7\xcd\xc6\x9a" + bytes(18) + b"\x01\x00\x09\x00" + NAME.encode(),
}


def docx_with_parts(parts: dict[str, tuple[bytes, str]]) -> bytes:
    """A .docx whose document refers to ``parts`` (name -> content, declared content type)."""
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    image_type = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"
    defaults = "".join(
        f'<Default Extension="{name.rsplit(".", 1)[1]}" ContentType="{content_type}"/>'
        for name, (_, content_type) in parts.items()
    )
    relationships = "".join(
        f'<Relationship Id="rId{i}" Type="{image_type}" Target="{name.removeprefix("word/")}"/>'
        for i, name in enumerate(parts, start=10)
    )
    files = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'{defaults}<Override PartName="/word/document.xml" ContentType="{main}"/></Types>'
        ).encode(),
        "word/document.xml": b"<w:document><w:body><w:p/></w:body></w:document>",
        "word/_rels/document.xml.rels": f"<Relationships>{relationships}</Relationships>".encode(),
        **{name: content for name, (content, _) in parts.items()},
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


@pytest.mark.parametrize(
    ("image_format", "extension", "new_type"),
    [
        ("TIFF", "tiff", "image/png"),
        ("GIF", "gif", "image/png"),
        ("WEBP", "webp", "image/png"),
        ("HEIC", "heic", "image/jpeg"),
    ],
)
def test_pictures_inside_office_files_are_reencoded_not_passed_through(
    image_format: str, extension: str, new_type: str
) -> None:
    name = f"word/media/image1.{extension}"
    original = picture(image_format)

    clean = sanitize(docx_with_parts({name: (original, f"image/{extension}")}))

    parts = unzip(clean.data)
    assert_absent(b"".join(parts.values()), NAME, SERIAL)
    with Image.open(io.BytesIO(parts[name])) as image:
        assert image.format == new_type.removeprefix("image/").upper()
        assert image.size == (16, 8)
        assert len(image.getexif()) == 0
    # The package says what the part now is, so Office opens it.
    assert f'PartName="/{name}" ContentType="{new_type}"'.encode() in parts["[Content_Types].xml"]
    assert b"image1." + extension.encode() in parts["word/_rels/document.xml.rels"]


@pytest.mark.parametrize("extension", sorted(VECTOR_PICTURES))
def test_vector_pictures_inside_office_files_become_a_blank_placeholder(extension: str) -> None:
    name = f"word/media/image1.{extension}"
    content_type = {"svg": "image/svg+xml", "emf": "image/x-emf", "wmf": "image/x-wmf"}[extension]

    clean = sanitize(docx_with_parts({name: (VECTOR_PICTURES[extension], content_type)}))

    parts = unzip(clean.data)
    assert_absent(b"".join(parts.values()), NAME)
    with Image.open(io.BytesIO(parts[name])) as image:
        assert (image.format, image.size) == ("PNG", (1, 1))
    assert f'PartName="/{name}" ContentType="image/png"'.encode() in parts["[Content_Types].xml"]


def test_unknown_binary_parts_inside_office_files_are_dropped_with_their_relationships() -> None:
    printer = b"\x00\x00MARIA-PC\\HR-PRINTER\x00" + NAME.encode("utf-16-le")
    clean = sanitize(
        docx_with_parts({"word/printerSettings/printerSettings1.bin": (printer, "application/x")})
    )

    parts = unzip(clean.data)
    assert "word/printerSettings/printerSettings1.bin" not in parts
    assert b"printerSettings" not in parts["word/_rels/document.xml.rels"]
    assert_absent(clean.data + b"".join(parts.values()), NAME, "MARIA-PC")


def pdf_with_jpx_image() -> bytes:
    jpx = io.BytesIO()
    two_colour_image(16, 8).save(jpx, "JPEG2000", comment=f"scanned by {NAME}".encode())
    assert_present(jpx.getvalue(), NAME)
    writer = PdfWriter()
    page = writer.add_blank_page(width=100, height=100)
    image = StreamObject()
    image.set_data(jpx.getvalue())  # the raw JPX codestream, as a PDF holds it
    image.update(
        {
            NameObject("/Type"): NameObject("/XObject"),
            NameObject("/Subtype"): NameObject("/Image"),
            NameObject("/Width"): NumberObject(16),
            NameObject("/Height"): NumberObject(8),
            NameObject("/Filter"): NameObject("/JPXDecode"),
        }
    )
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)})}
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_jpeg_2000_images_in_a_pdf_are_reencoded_as_jpeg() -> None:
    clean = sanitize(pdf_with_jpx_image())

    assert_absent(clean.data, NAME)
    page = PdfReader(io.BytesIO(clean.data)).pages[0]
    image = page["/Resources"]["/XObject"]["/Im0"].get_object()
    assert image["/Filter"] == "/DCTDecode"
    assert image["/ColorSpace"] == "/DeviceRGB"
    with Image.open(io.BytesIO(image.get_data())) as decoded:
        assert (decoded.format, decoded.size) == ("JPEG", (16, 8))


def test_a_jpeg_2000_image_that_cannot_be_decoded_fails_closed() -> None:
    data = pdf_with_jpx_image().replace(b"\xff\x4f\xff\x51", b"\x00\x4f\x00\x51", 1)
    with pytest.raises(UnsupportedMedia, match="could not"):
        sanitize(data)


def hostile_docx(repeats: int) -> bytes:
    """A well-formed .docx whose settings open ``<w:rsids>`` many times and close each one as
    ``</w:rsids >`` (legal XML): the regular expression this replaced scanned to the end of the
    part from every opening, quadratic in its length (a 906-byte file took 12.5 s)."""
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    namespace = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Override PartName="/word/document.xml" ContentType="{main}"/></Types>'
        ),
        "word/document.xml": f"<w:document {namespace}><w:body/></w:document>",
        "word/settings.xml": (
            f'<w:settings {namespace}><w:zoom w:percent="100"/>'
            + '<w:rsids><w:rsidRoot w:val="00A1B2C3"/></w:rsids >' * repeats
            + "</w:settings>"
        ),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return out.getvalue()


def test_the_hostile_docx_is_parsed_as_xml_and_loses_its_revision_ids() -> None:
    data = hostile_docx(5_000)
    assert len(data) < 2_000

    clean = sanitize(data)

    settings = unzip(clean.data)["word/settings.xml"]
    assert b"rsid" not in settings
    assert b'<w:zoom w:percent="100"/>' in settings


@pytest.mark.parametrize(
    "part",
    [
        b'<!DOCTYPE x [<!ENTITY a "aaaa">]><w:settings>&a;</w:settings>',  # entities
        b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><w:settings/>',  # external reference
        b"<w:settings><w:rsids></w:settings>",  # malformed
    ],
)
def test_office_xml_with_a_dtd_or_malformed_is_refused(part: bytes) -> None:
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            f'<Types><Override PartName="/word/document.xml" ContentType="{main}"/></Types>',
        )
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/settings.xml", part)
    with pytest.raises(UnsupportedMedia, match="malformed document"):
        sanitize(out.getvalue())
