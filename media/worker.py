"""The program a sandboxed child runs: clean one file, answer, exit.

Started by :class:`media.sandbox.CleaningSandbox` as ``python -I -m media.worker MEMORY CPU`` with
an empty environment and only three pipes. It reads the whole file from standard input, cleans
it with :func:`media.sanitize` and writes one answer on standard output:

* ``K <mime type> <extension>\\n`` followed by the clean bytes;
* ``U\\n``: the content is not a type the bot cleans;
* ``R <reason>\\n``: the file was refused (too large, too many pixels or pages, damaged...),
  with the short fixed reason of :class:`media.UnsupportedMedia`.

Before the file is read the process leaves the network (a new, empty network namespace, where
the kernel allows it) and the file system (its root becomes an empty tmpfs, once every parser
is imported), and limits itself: address space (``RLIMIT_AS``), CPU seconds
(``RLIMIT_CPU``: SIGXCPU, then SIGKILL a second later), no core dump and no file written. The
parent adds a wall-clock timeout and kills the process when it expires. One process cleans one
file, so no file ever shares a process with another worker's file.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import resource
import sys
from typing import BinaryIO, Final

__all__ = ["confine_filesystem", "isolate_network", "main", "preload"]

_CLONE_NEWUSER: Final = 0x10000000
_CLONE_NEWNET: Final = 0x40000000
_CLONE_NEWNS: Final = 0x00020000
_MS_REC: Final = 0x4000
_MS_PRIVATE: Final = 0x40000
# Packages whose modules the cleaners may import lazily, while a file is parsed: all are imported
# before the child shuts itself away from the file system. GUI and command-line modules are not.
_PRELOADED: Final = ("media", "PIL", "pypdf", "mutagen", "pillow_heif", "defusedxml", "xml",
                     "encodings")  # fmt: skip
_NOT_PRELOADED: Final = ("__main__", "_tools", "ImageTk", "ImageQt", "ImageShow", "ImageGrab",
                         "_tkinter_finder", "report", "lxml", "mbcs", "oem",
                         "_pycryptodome")  # fmt: skip


def isolate_network() -> bool:
    """Move this (single-threaded) process into new user, network and mount namespaces: no
    interface but a loopback that is down, and mounts of its own. False where the kernel
    refuses (no unprivileged user namespaces, a container's seccomp profile): the other limits
    still apply."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS) == 0)
    except (OSError, AttributeError):
        return False


def preload() -> None:
    """Import every module a cleaner might import while it works (see ``_PRELOADED``)."""
    import importlib
    import pkgutil

    import media

    media.load_parsers()
    quiet = contextlib.redirect_stdout(io.StringIO())  # standard output carries the answer
    for name in _PRELOADED:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not any(part in _NOT_PRELOADED for part in module.name.split(".")):
                with quiet, contextlib.suppress(Exception):
                    importlib.import_module(module.name)


def confine_filesystem() -> bool:
    """Make an empty, read-only tmpfs this process's root: no key file, no ``.env``, no
    database file can be opened any more. Only inside the namespaces of
    :func:`isolate_network`."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            return False
        if libc.mount(b"none", b"/tmp", b"tmpfs", 0, b"size=4k,mode=0555") != 0:
            return False
        os.chroot("/tmp")  # noqa: S108 - the empty tmpfs just mounted there, in our namespace
        os.chdir("/")
    except (OSError, AttributeError):
        return False
    return True


def limit_resources(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not write the file to disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # nor may anything else
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(usage.ru_utime + usage.ru_stime) + 1  # start-up (imports) is not the file's
    resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds, spent + cpu_seconds + 1))


def main(argv: list[str], stdin: BinaryIO, stdout: BinaryIO) -> int:
    memory_bytes, cpu_seconds = int(argv[1]), int(argv[2])
    isolated = isolate_network()
    # Imported only now, inside the namespaces; every parser loads before the limits apply and
    # before the file system goes away.
    preload()
    import media
    from media.result import UnknownFileType, UnsupportedMedia

    if isolated:
        confine_filesystem()
    limit_resources(memory_bytes, cpu_seconds)
    data = stdin.read(media.MAX_BYTES + 1)
    try:
        clean = media.sanitize(data)
    except UnknownFileType:
        answer = b"U\n"
    except UnsupportedMedia as refusal:
        answer = f"R {refusal}\n".encode("ascii", "replace")
    except (MemoryError, RecursionError):
        answer = b"R out of memory\n"
    else:
        header = f"K {clean.mime_type} {clean.extension}\n".encode("ascii")
        stdout.write(header)
        stdout.write(clean.data)
        stdout.flush()
        return 0
    stdout.write(answer)
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv, sys.stdin.buffer, sys.stdout.buffer))
