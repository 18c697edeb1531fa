"""Hostile evidence files: how long each takes and how it ends, before and after the sandbox.

    python -m bench.media_sandbox_bench                       # this checkout: the sandbox
    mkdir -p /tmp/main && git archive main media | tar -x -C /tmp/main
    python -m bench.media_sandbox_bench --before /tmp/main    # main: in-process media.sanitize

The files (built here, none is stored): the hostile .docx (settings opening ``<w:rsids>`` many
times, closed as ``</w:rsids >``) at 1.2 KB and 3.7 KB; an 88-megapixel black PNG of 257 KB; a
500-page PDF; a 38-byte WebP that decodes to 49 megapixels (legitimate under the pixel cap,
seconds of CPU); and, as a control, a small JPEG. ``--before`` runs
``media.sanitize`` from that tree in a fresh process per file, stopped after ``--give-up``
seconds; the default runs each file through :class:`media.sandbox.CleaningSandbox` with the
default limits, then the WebP again under ``WVB_SANDBOX_CPU_SECONDS=1`` to show the kill. Prints
a Markdown table for docs/BENCHMARKS.md and docs/SECURITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Final

from PIL import Image
from pypdf import PdfWriter

from media import UnknownFileType, UnsupportedMedia
from media.sandbox import CleaningSandbox, SandboxLimits
from tests.test_media_sanitizer import hostile_docx, png_chunk

_BEFORE_PROGRAM = """
import resource, sys, time
import media
data = open(sys.argv[1], "rb").read()
start = time.perf_counter()
try:
    media.sanitize(data)
    outcome = "cleaned"
except media.UnsupportedMedia as refusal:
    outcome = f"refused ({refusal})"
elapsed = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
status = open("/proc/self/status").read()  # VmHWM: this program's own peak, not its parent's
peak = int(status.split("VmHWM:")[1].split()[0]) // 1024
print(f"{elapsed:.2f}|{usage.ru_utime + usage.ru_stime:.2f}|{outcome}|{peak}")
"""


# Pillow's lossless WebP of a uniform 7000x7000 RGBA image (written once, kept as bytes so the
# bench process stays small: a child's peak memory counts its parent's at the time it started).
_WEBP_49_MP: Final = bytes.fromhex(
    "524946461e000000574542505650384c110000002f57dbd51607508f22d7a3808188e87f0000"
)


def png_of_zeros(width: int, height: int) -> bytes:
    """An RGB PNG of black pixels, compressed as far as zlib goes (about 1,000 to 1)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" + bytes(width * 3)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", data)
        + png_chunk(b"IEND", b"")
    )


def samples() -> dict[str, bytes]:
    pdf = PdfWriter()
    for _ in range(500):
        pdf.add_blank_page(width=200, height=200)
    pdf_bytes = io.BytesIO()
    pdf.write(pdf_bytes)
    jpeg = io.BytesIO()
    Image.new("RGB", (1600, 1200), "red").save(jpeg, "JPEG")
    return {
        "hostile .docx, 3,000 runs": hostile_docx(3_000),
        "hostile .docx, 20,000 runs": hostile_docx(20_000),
        "PNG, 11000x8000 black (88 MP)": png_of_zeros(11_000, 8_000),
        "PDF of 500 blank pages": pdf_bytes.getvalue(),
        "WebP, 7000x7000 RGBA (49 MP)": _WEBP_49_MP,
        "control: 1600x1200 JPEG": jpeg.getvalue(),
    }


def before(tree: Path, files: dict[str, bytes], give_up: float) -> list[tuple[str, ...]]:
    rows = []
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    for name, data in files.items():
        with tempfile.NamedTemporaryFile(suffix=".bin") as sample:
            sample.write(data)
            sample.flush()
            try:
                result = subprocess.run(  # noqa: S603 - this interpreter, our program
                    [sys.executable, "-P", "-c", _BEFORE_PROGRAM, sample.name],
                    capture_output=True, text=True, timeout=give_up, env=environment,
                    check=True,
                )  # fmt: skip
                elapsed, cpu, outcome, peak = result.stdout.strip().split("|")
                rows.append(
                    (name, f"{len(data):,}", f"{elapsed} s", f"{cpu} s", outcome, f"{peak} MB")
                )
            except subprocess.TimeoutExpired:
                rows.append((name, f"{len(data):,}", f"> {give_up:.0f} s", "?", "gave up", "?"))
    return rows


async def after(files: dict[str, bytes]) -> list[tuple[str, ...]]:
    rows = []
    runs = [(name, data, SandboxLimits()) for name, data in files.items()]
    webp = next(name for name in files if name.startswith("WebP"))
    runs.append((webp + ", CPU limit 1 s", files[webp], SandboxLimits(cpu_seconds=1)))
    for name, data, limits in runs:
        sandbox = CleaningSandbox(limits)
        start, cpu_before = time.perf_counter(), _children_cpu()
        try:
            await sandbox.clean(data)
            outcome = "cleaned"
        except UnknownFileType:
            outcome = "unknown type"
        except UnsupportedMedia as refusal:
            outcome = f"refused ({refusal})"
        finally:
            await sandbox.close()
        elapsed, cpu = time.perf_counter() - start, _children_cpu() - cpu_before
        rows.append((name, f"{len(data):,}", f"{elapsed:.2f} s", f"{cpu:.2f} s", outcome, "-"))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    rows.append(("(largest child of all runs)", "", "", "", "", f"{peak} MB"))
    return rows


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # children reaped so far
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a tree holding main's media/ package")
    parser.add_argument("--give-up", type=float, default=300.0, help="seconds, --before only")
    arguments = parser.parse_args()
    files = samples()
    if arguments.before:
        rows = before(arguments.before, files, arguments.give_up)
        title = f"before: media.sanitize in-process ({arguments.before})"
    else:
        rows = asyncio.run(after(files))
        title = "after: media.sandbox.CleaningSandbox, default limits"
    print(f"\n{title}, {os.cpu_count()} cores\n")
    print("| file | bytes | wall time | CPU time | outcome | peak memory |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
