"""Files are cleaned in child processes with no keys, no inherited files, bounded memory, CPU and
time; one slow file does not hold up another, and no child outlives its job or the sandbox."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from media import UnknownFileType
from media.sandbox import CleaningSandbox, FileRefused, SandboxLimits

SECRET = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs"


@pytest.fixture(scope="module")
def slow_file() -> bytes:
    """A 38-byte WebP that decodes to 49 megapixels (under the pixel cap): about 3.5 s of CPU
    and 1.7 GB of memory to re-encode."""
    out = io.BytesIO()
    Image.new("RGBA", (7000, 7000), (200, 30, 30, 128)).save(out, "WEBP", lossless=True, method=0)
    return out.getvalue()


def small_jpeg() -> bytes:
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x013B] = "Thandar Htun"  # artist
    Image.new("RGB", (64, 48), "red").save(out, "JPEG", exif=exif)
    return out.getvalue()


def children() -> set[int]:
    """Processes whose parent is this one (the sandbox's children, while they live)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.add(int(stat.parent.name))
    return found


async def a_child_appears(before: set[int]) -> int:
    for _ in range(500):
        new = children() - before
        if new:
            return new.pop()
        await asyncio.sleep(0.01)
    raise AssertionError("no child process started")


async def test_a_file_is_cleaned_in_a_child_and_unknown_types_are_told_apart() -> None:
    sandbox = CleaningSandbox()
    try:
        clean = await sandbox.clean(small_jpeg())
        assert clean.mime_type == "image/jpeg"
        assert clean.extension == "jpg"
        assert b"Thandar" not in clean.data
        with pytest.raises(UnknownFileType):
            await sandbox.clean(b"MZ\x90\x00 an executable")
        with pytest.raises(FileRefused, match=r"^could not decode image$"):
            await sandbox.clean(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)  # damaged
    finally:
        await sandbox.close()
    assert children() == set()


async def test_the_child_holds_no_key_no_inherited_file_and_runs_under_limits(
    slow_file: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WVB_SECRET_KEY", SECRET)
    monkeypatch.setenv("WVB_ENCRYPTION_KEYS", SECRET)
    held_open = os.open("/dev/null", os.O_RDONLY)  # like a database file the bot has open
    limits = SandboxLimits(workers=1, memory_mb=4096, cpu_seconds=7, timeout_seconds=30)
    sandbox = CleaningSandbox(limits)
    before = children()
    job = asyncio.create_task(sandbox.clean(slow_file))
    try:
        pid = await a_child_appears(before)
        proc = Path(f"/proc/{pid}")
        address_space = f"Max address space         {4096 * 1024 * 1024}"
        for _ in range(1000):  # start-up: the limits are set before the file is read
            if address_space in (proc / "limits").read_text():
                break
            await asyncio.sleep(0.01)
        environment = (proc / "environ").read_bytes()
        assert b"WVB_" not in environment
        assert SECRET.encode() not in environment
        assert SECRET.encode() not in (proc / "cmdline").read_bytes()
        assert sorted(int(fd.name) for fd in (proc / "fd").iterdir()) == [0, 1, 2]
        limits_text = (proc / "limits").read_text()
        assert address_space in limits_text
        assert "Max core file size        0" in limits_text
        cpu_line = next(line for line in limits_text.splitlines() if "Max cpu time" in line)
        soft_cpu = int(cpu_line.split()[3])
        assert 7 < soft_cpu <= 7 + 5  # start-up time plus the file's budget
        if network_isolation_available():
            assert os.readlink(proc / "ns/net") != os.readlink("/proc/self/ns/net")
    finally:
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        os.close(held_open)
        await sandbox.close()
    assert children() == set()


def network_isolation_available() -> bool:
    probe = "from media.worker import isolate_network; print(isolate_network())"
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True
    )
    return result.stdout.strip() == "True"


def test_an_isolated_child_cannot_reach_the_network() -> None:
    if not network_isolation_available():
        return  # the kernel refuses user namespaces here; the other limits still hold
    probe = (
        "import socket\nfrom media.worker import isolate_network\nisolate_network()\n"
        "try:\n    socket.create_connection(('127.0.0.1', 6379), timeout=2)\n"
        "except OSError:\n    print('unreachable')\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "unreachable"


async def test_a_slow_file_does_not_stall_a_good_one_and_is_killed_at_its_cpu_limit(
    slow_file: bytes,
) -> None:
    sandbox = CleaningSandbox(
        SandboxLimits(workers=2, memory_mb=4096, cpu_seconds=1, timeout_seconds=60)
    )
    try:
        slow = asyncio.create_task(sandbox.clean(slow_file))
        good = asyncio.create_task(sandbox.clean(small_jpeg()))
        done, _ = await asyncio.wait({slow, good}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {good}
        assert (await good).mime_type == "image/jpeg"
        with pytest.raises(FileRefused):
            await slow  # SIGXCPU after one second of CPU: no answer, refused
    finally:
        await sandbox.close()
    assert children() == set()


async def test_a_file_over_the_wall_clock_limit_is_killed_and_the_next_file_is_cleaned(
    slow_file: bytes,
) -> None:
    sandbox = CleaningSandbox(
        SandboxLimits(workers=1, memory_mb=4096, cpu_seconds=60, timeout_seconds=2)
    )
    try:
        with pytest.raises(FileRefused, match="took too long"):
            await sandbox.clean(slow_file)
        assert children() == set()  # killed, and reaped
        sandbox.limits = SandboxLimits(workers=1)  # a loaded machine may take 2 s to start one
        assert (await sandbox.clean(small_jpeg())).mime_type == "image/jpeg"
    finally:
        await sandbox.close()


async def test_a_file_over_the_memory_limit_is_refused(slow_file: bytes) -> None:
    sandbox = CleaningSandbox(SandboxLimits(workers=1, memory_mb=400, timeout_seconds=60))
    try:
        with pytest.raises(FileRefused):
            await sandbox.clean(slow_file)  # about 1.7 GB to re-encode
    finally:
        await sandbox.close()


async def test_closing_the_sandbox_kills_a_file_in_progress(slow_file: bytes) -> None:
    sandbox = CleaningSandbox()
    before = children()
    job = asyncio.create_task(sandbox.clean(slow_file))
    await a_child_appears(before)
    await sandbox.close()
    with pytest.raises(FileRefused):
        await job
    assert children() == set()
    with pytest.raises(FileRefused):
        await sandbox.clean(small_jpeg())


async def test_the_hostile_docx_is_cleaned_well_within_a_cpu_budget() -> None:
    # With regular expressions this file needed over a minute of CPU, and was killed here.
    from tests.test_media_sanitizer import hostile_docx, unzip

    sandbox = CleaningSandbox(SandboxLimits(workers=1, cpu_seconds=3, timeout_seconds=60))
    try:
        clean = await sandbox.clean(hostile_docx(20_000))
    finally:
        await sandbox.close()
    assert clean.extension == "docx"
    assert b"rsid" not in unzip(clean.data)["word/settings.xml"]


async def test_every_format_is_cleaned_inside_the_confined_child() -> None:
    """Every parser path works once the child has no file system: whatever a cleaner imports
    while it works was imported before (``media.worker.preload``)."""
    from tests import test_media_sanitizer as samples

    files = {
        "jpg": samples.jpeg_with_metadata(),
        "png": samples.png_with_metadata(),
        "gif": samples.picture("GIF"),
        "webp": samples.picture("WEBP"),
        "heic": samples.picture("HEIC"),
        "pdf": samples.pdf_with_metadata(),
        "jpx": samples.pdf_with_jpx_image(),
        "docx": samples.docx_with_metadata(),
        "tiff": samples.docx_with_parts(
            {"word/media/a.tiff": (samples.picture("TIFF"), "image/tiff")}
        ),
        "ogg": samples.opus_with_tags(),
        "mp3": samples.mp3_with_tags(),
        "m4a": samples.mp4_with_metadata(),
    }
    sandbox = CleaningSandbox(SandboxLimits(workers=2))
    try:
        cleaned = await asyncio.gather(*(sandbox.clean(data) for data in files.values()))
    finally:
        await sandbox.close()
    extensions = [clean.extension for clean in cleaned]
    assert extensions == [
        "jpg", "png", "gif", "webp", "jpg", "pdf", "pdf", "docx", "docx", "ogg", "mp3", "m4a",
    ]  # fmt: skip
    for clean in cleaned:
        assert b"Maria Worker" not in clean.data


def test_a_confined_child_cannot_open_any_file() -> None:
    if not network_isolation_available():
        return  # no user namespaces here: the child keeps the bot user's view of the disk
    probe = (
        "from media.worker import confine_filesystem, isolate_network, preload\n"
        "assert isolate_network()\npreload()\nassert confine_filesystem()\n"
        f"try:\n    open({str(Path(__file__).resolve())!r}, 'rb')\n"
        "except OSError:\n    print('unreadable')\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "unreadable"


async def test_ending_a_child_the_loop_never_reaps_does_not_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real child whose exit the event loop never learns of (its wait() is held back, as when
    a child watcher loses a pid): ending it goes on after a bounded wait instead of forever."""
    from media import sandbox

    monkeypatch.setattr(sandbox, "REAP_SECONDS", 0.5, raising=False)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", stdin=asyncio.subprocess.PIPE
    )
    never = asyncio.Event()

    async def lost_wait() -> int:
        await never.wait()
        return 0

    real_wait = child.wait
    monkeypatch.setattr(child, "wait", lost_wait)
    async with asyncio.timeout(10):
        await sandbox._end(child)
    assert child.stdin is not None
    assert child.stdin.is_closing()
    assert await asyncio.wait_for(real_wait(), 10) == -9  # it was killed all the same
