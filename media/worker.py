"""The program a sandboxed child runs: clean one file, answer, exit.

Started by :class:`media.sandbox.CleaningSandbox` as ``python -I -m media.worker MEMORY CPU`` with
an empty environment and only three pipes. It reads the whole file from standard input, cleans
it with :func:`media.sanitize` and writes one answer on standard output:

* ``K <mime type> <extension>\\n`` followed by the clean bytes;
* ``U\\n``: the content is not a type the bot cleans;
* ``R <reason>\\n``: the file was refused (too large, too many pixels or pages, damaged...),
  with the short fixed reason of :class:`media.UnsupportedMedia`.

Before the file is read the process leaves the network (a new, empty network namespace, where
the kernel allows it), and limits itself: address space (``RLIMIT_AS``), CPU seconds
(``RLIMIT_CPU``: SIGXCPU, then SIGKILL a second later), no core dump and no file written. The
parent adds a wall-clock timeout and kills the process when it expires. One process cleans one
file, so no file ever shares a process with another worker's file.
"""

from __future__ import annotations

import ctypes
import resource
import sys
from typing import BinaryIO, Final

__all__ = ["isolate_network", "main"]

_CLONE_NEWUSER: Final = 0x10000000
_CLONE_NEWNET: Final = 0x40000000


def isolate_network() -> bool:
    """Move this (single-threaded) process into new user and network namespaces, where there is
    no interface but a loopback that is down. False where the kernel refuses (no unprivileged
    user namespaces, a container's seccomp profile): the other limits still apply."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0)
    except (OSError, AttributeError):
        return False


def limit_resources(memory_bytes: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash must not write the file to disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # nor may anything else
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(usage.ru_utime + usage.ru_stime) + 1  # start-up (imports) is not the file's
    resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds, spent + cpu_seconds + 1))


def main(argv: list[str], stdin: BinaryIO, stdout: BinaryIO) -> int:
    memory_bytes, cpu_seconds = int(argv[1]), int(argv[2])
    isolate_network()
    # Imported only now, inside the namespaces; every parser loads before the limits apply.
    import media
    from media.result import UnknownFileType, UnsupportedMedia

    media.load_parsers()
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
