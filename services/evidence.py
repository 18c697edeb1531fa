"""A worker's file, from the channel's download to clean bytes: the one path both intake and
casework take. The file is parsed only in the sandbox's child processes, never here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from conversations.messages import FetchMedia
from conversations.ports import EvidenceOutcome, MediaTooLarge, MediaUnavailable
from media import MAX_BYTES, CleanMedia, UnknownFileType, UnsupportedMedia
from media.sandbox import CleaningSandbox

log = logging.getLogger(__name__)

# The parsers log what they find at DEBUG level (Pillow prints every EXIF tag: the owner's name,
# the GPS position). They run in the sandbox's children, whose output goes nowhere; should
# anything in this process ever use them on a worker's file, their lines still never reach a
# log, whatever level the operator sets.
for _parser in ("PIL", "pypdf", "mutagen"):
    logging.getLogger(_parser).setLevel(logging.WARNING)


async def fetch_and_clean(
    fetch: FetchMedia,
    sandbox: CleaningSandbox | None,
    *,
    admit: Callable[[int], Awaitable[bool]] | None = None,
) -> CleanMedia | EvidenceOutcome:
    """The clean file, or why there is none. Without a sandbox nothing is parsed (refused).
    ``admit`` is asked with the downloaded size whether the worker's daily quota has room."""
    try:
        data = await fetch()
    except MediaTooLarge:
        return EvidenceOutcome.TOO_LARGE
    except MediaUnavailable as error:
        log.warning("could not fetch a file from the channel: %s", error)
        return EvidenceOutcome.UNAVAILABLE
    if len(data) > MAX_BYTES:
        return EvidenceOutcome.TOO_LARGE
    if admit is not None and not await admit(len(data)):
        return EvidenceOutcome.OVER_QUOTA
    if sandbox is None:
        return EvidenceOutcome.REFUSED
    try:
        return await sandbox.clean(data)
    except UnknownFileType:
        return EvidenceOutcome.UNSUPPORTED
    except UnsupportedMedia as refusal:
        log.info("a file was refused: %s", refusal)  # a fixed reason, never file content
        return EvidenceOutcome.REFUSED
