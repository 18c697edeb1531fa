"""Files are cleaned in child processes that hold no key, no database and no network.

Pillow, libheif, pypdf and mutagen parse whatever a stranger sends. Here they never run in the
bot's own process: :class:`CleaningSandbox` starts one child per file (``media.worker``), bounded
in memory, CPU time and wall-clock time, and at most ``workers`` at once, so one hostile file
costs one slot for at most ``timeout_seconds`` while the other files go on.

Why a fresh ``python -I -m media.worker`` per file, not :mod:`multiprocessing`:

* ``fork`` (and ``forkserver`` children forked from a server that was itself forked) copies the
  parent's memory, which holds the data-encryption and pseudonym keys and open database
  connections. An exec'd interpreter starts with none of that.
* ``spawn`` execs too, but passes the parent's environment (where ``WVB_SECRET_KEY`` may live)
  and re-imports the parent's ``__main__`` (for ``wvb`` that is the whole bot). Here the child
  gets an empty environment, only its three pipes, and imports ``media`` and nothing else.
* Every ``multiprocessing`` channel unpickles what the child sends: a parser exploited by a file
  could then run code in the parent that holds the keys. This parent reads one header line,
  checks it against a fixed list of types, and takes the rest as bytes.
* A :class:`concurrent.futures.ProcessPoolExecutor` whose worker is killed breaks the whole pool,
  failing the other workers' files with it.
* One file per process: nothing a file leaves behind (or an exploit plants) meets the next
  worker's file, and memory goes back to the system. Starting a child costs about 0.3 s of
  CPU (the interpreter and every module a parser may need).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from dataclasses import dataclass
from typing import Final

from media import MAX_BYTES
from media.result import CleanMedia, UnknownFileType, UnsupportedMedia

log = logging.getLogger(__name__)

__all__ = ["MAX_OUTPUT_BYTES", "CleaningSandbox", "SandboxLimits"]

MAX_OUTPUT_BYTES: Final = 4 * MAX_BYTES
"""Most bytes a clean file may have (a re-encoded image can outgrow its original)."""

_OUTPUTS: Final = frozenset(
    {
        ("image/jpeg", "jpg"), ("image/png", "png"), ("image/gif", "gif"),
        ("image/webp", "webp"), ("application/pdf", "pdf"),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
        ("audio/ogg", "ogg"), ("audio/mpeg", "mp3"), ("audio/mp4", "m4a"),
        ("video/mp4", "mp4"), ("video/quicktime", "mov"),
    }
)  # fmt: skip
"""Every type the cleaners produce; a child naming anything else is not believed."""

_REFUSAL: Final = re.compile(rb"R [a-z0-9 -]{1,60}\n")

# The child's whole environment. One malloc arena: threads of libheif must not reserve 64 MB of
# address space each, which RLIMIT_AS counts.
_CHILD_ENVIRONMENT: Final = {"MALLOC_ARENA_MAX": "1", "LC_ALL": "C.UTF-8"}


@dataclass(frozen=True)
class SandboxLimits:
    workers: int = 2
    """Files cleaned at the same time; more wait for a free slot."""
    memory_mb: int = 1536
    """Address space of one child (RLIMIT_AS), in MiB."""
    cpu_seconds: int = 20
    """CPU time one file may take (RLIMIT_CPU)."""
    timeout_seconds: float = 40.0
    """Wall-clock time one file may take before its child is killed."""


class FileRefused(UnsupportedMedia):
    """The sandbox refused the file: its child ran out of time or memory, or answered nonsense."""


class CleaningSandbox:
    """Cleans files in child processes; started lazily, closed by the composition root."""

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._slots: asyncio.Semaphore | None = None
        self._children: set[asyncio.subprocess.Process] = set()
        self._closed = False

    async def clean(self, data: bytes) -> CleanMedia:
        """``data`` without identifying metadata, or :class:`UnsupportedMedia` (its subclass
        :class:`UnknownFileType` when the type is not one the bot cleans)."""
        if len(data) > MAX_BYTES:
            raise FileRefused("file too large")
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limits.workers)
        async with self._slots:
            if self._closed:
                raise FileRefused("sandbox closed")
            child = await self._start()
            self._children.add(child)
            try:
                if self._closed:  # closed while the child was starting
                    raise FileRefused("sandbox closed")
                async with asyncio.timeout(self.limits.timeout_seconds):
                    return await self._exchange(child, data)
            except TimeoutError:
                raise FileRefused("took too long") from None
            finally:
                self._children.discard(child)
                await _end(child)

    async def close(self) -> None:
        """Kill the children still cleaning (their files are refused) and refuse new ones."""
        self._closed = True
        for child in list(self._children):
            await _end(child)

    async def _start(self) -> asyncio.subprocess.Process:
        limits = self.limits
        return await asyncio.create_subprocess_exec(
            sys.executable, "-I", "-B", "-m", "media.worker",
            str(limits.memory_mb * 1024 * 1024), str(limits.cpu_seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,  # a traceback may quote the file
            env=_CHILD_ENVIRONMENT,
            cwd="/",
        )  # fmt: skip

    async def _exchange(self, child: asyncio.subprocess.Process, data: bytes) -> CleanMedia:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            child.stdin.write(data)
            await child.stdin.drain()
            child.stdin.close()
            header = await child.stdout.readline()
        except (ConnectionError, OSError, ValueError):  # ValueError: a line over 64 KiB
            header = b""
        if header == b"U\n":
            raise UnknownFileType("unsupported file type")
        if _REFUSAL.fullmatch(header):
            raise FileRefused(header[2:-1].decode("ascii"))  # one of media's fixed reasons
        kind = header.decode("ascii", "replace").split()
        if len(kind) != 3 or kind[0] != "K" or (kind[1], kind[2]) not in _OUTPUTS:
            # A child killed by its limits (no answer), or one that answers nonsense.
            raise FileRefused("could not process file")
        clean = bytearray()
        while len(clean) <= MAX_OUTPUT_BYTES and (more := await child.stdout.read(1 << 20)):
            clean += more
        if len(clean) > MAX_OUTPUT_BYTES or await child.wait() != 0 or not clean:
            raise FileRefused("could not process file")
        return CleanMedia(bytes(clean), kind[1], kind[2])


#: How long to wait for a killed child to be reaped before going on without it.
REAP_SECONDS: Final = 5.0


async def _end(child: asyncio.subprocess.Process) -> None:
    """Kill ``child`` unless it has ended, and reap it (no zombie, no open pipe).

    The wait is bounded: SIGKILL cannot be ignored, so a child not reaped within seconds means
    the event loop's child watcher lost it, and a worker's turn (or the bot's shutdown) must not
    wait for it forever; asyncio's watcher still reaps it whenever it learns of the exit."""
    if child.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
    try:
        async with asyncio.timeout(REAP_SECONDS):
            await child.wait()
    except TimeoutError:
        log.warning("a killed sandbox child was not reaped within %s s; going on", REAP_SECONDS)
    if child.stdin is not None:
        child.stdin.close()
