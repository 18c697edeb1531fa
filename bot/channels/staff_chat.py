"""Staff commands in a private chat with the bot: thin callers of the staff services.

Messenger-agnostic: a runtime hands over (channel, user id, command, arguments) for a command in
a private chat, and sends back the parts of the answer (``protect_content``). Only registered
staff (``wvb staff add``) get an answer; a staff command from anyone else does nothing visible
and is logged and audited. A viewer may look but not change. Runtimes route only private chats
here, and only a command typed as a message's text (not a caption, not a forwarded message).

What a worker wrote never goes into the messenger's cloud from here: /case shows the summary and
how much is in the file; the content is read in `wvb cases show` (admin and case handler roles).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from conversations.categories import CATEGORIES
from domain.errors import NotFound, Refusal
from services.broadcasts import BroadcastService, topic_texts
from services.casework import CaseworkService, Remediation
from services.staff import StaffService
from services.staff_accounts import Staff, StaffAccounts

log = logging.getLogger(__name__)

Handler = Callable[[Staff, str], Awaitable[str]]
USAGE = {
    "cases": "/cases [status]",
    "case": "/case REFERENCE",
    "ack": "/ack REFERENCE",
    "note": "/note REFERENCE text",
    "assign": "/assign REFERENCE staff-name",
    "reply": "/reply REFERENCE text",
    "remediate": "/remediate REFERENCE summary",
    "close": "/close REFERENCE [unvalidated reason]",
    "broadcast": "/broadcast TOPIC [SEGMENT] (add 'dry' first to only count: /broadcast dry pay)",
    "bstatus": "/bstatus ID",
}


class StaffChat:
    def __init__(
        self,
        accounts: StaffAccounts,
        staff: StaffService,
        casework: CaseworkService,
        broadcasts: BroadcastService | None = None,
        console_url: str | None = None,
    ) -> None:
        self.console_url = console_url.rstrip("/") if console_url else None
        self.accounts = accounts
        self.staff = staff
        self.casework = casework
        self.broadcasts = broadcasts
        # The services check each member's role (services/access.py), as for every surface.
        self.handlers: dict[str, Handler] = {
            "cases": self.cases,
            "case": self.case,
            "ack": self.ack,
            "note": self.note,
            "assign": self.assign,
            "reply": self.reply,
            "remediate": self.remediate,
            "close": self.close,
        }
        if broadcasts is not None:
            self.handlers["broadcast"] = self.broadcast
            self.handlers["bstatus"] = self.broadcast_status

    @property
    def names(self) -> tuple[str, ...]:
        """The command names (without the slash) a runtime routes here."""
        return tuple(self.handlers)

    async def answer(self, channel: str, user_id: int | str, name: str, args: str) -> str | None:
        """The answer to ``/name args`` from ``user_id`` (the runtime's sender splits it);
        None when nothing may be said (the sender is not staff)."""
        name = name.lower()
        member = await self.accounts.by_messenger_id(channel, user_id)
        if member is None:
            await self.accounts.refused("unregistered", name, "not a registered staff member")
            return None
        try:
            answer = await self.handlers[name](member, args.strip())
        except Refusal as refusal:
            answer = self.refused(name, refusal)
        return answer

    @staticmethod
    def refused(name: str, refusal: Refusal) -> str:
        """A service's refusal in the chat's words: the field as the command's usage names it,
        the reason, and the usage when what was typed is at fault."""
        if refusal.field is None or isinstance(refusal, NotFound):
            return f"Refused: {refusal.reason}"
        field = refusal.field.replace("_", " ")
        return f"Refused: {field}: {refusal.reason}\nUsage: {USAGE[name]}"

    @staticmethod
    def _reference_and_text(name: str, args: str) -> tuple[str, str]:
        reference, _, text = args.partition(" ")
        if not reference:
            raise Refusal("reference", "missing")
        return reference, text.strip()

    async def cases(self, member: Staff, args: str) -> str:
        cases = await self.staff.list_cases(member.actor, args or None)
        if not cases:
            return "No cases."
        return "\n".join(
            f"{c.reference} · {c.status} · {c.category} · {c.language}"
            + (" · URGENT" if c.urgent else "")
            for c in cases[-50:]
        )

    async def case(self, member: Staff, args: str) -> str:
        reference, _ = self._reference_and_text("case", args)
        overview = await self.staff.case_overview(member.actor, reference)
        case = overview.summary
        return "\n".join(
            [
                f"{case.reference} · {case.status}" + (" · URGENT" if case.urgent else ""),
                "about: " + ", ".join(CATEGORIES.get(c, c) for c in case.categories),
                f"received {case.created_at:%Y-%m-%d} · acknowledge by "
                f"{case.acknowledge_due_at:%Y-%m-%d} · respond by {case.response_due_at:%Y-%m-%d}",
                f"in the file: {overview.texts} message(s), {overview.files} file(s)",
                # What the worker wrote is never posted into a messenger: the link opens the
                # case page, behind the console's login.
                f"Open it in the staff console: {self.console_url}/cases/{case.reference}"
                if self.console_url
                else f"Read it on the server: wvb cases show {case.reference}",
            ]
        )

    async def ack(self, member: Staff, args: str) -> str:
        reference, _ = self._reference_and_text("ack", args)
        return f"{reference}: {await self.casework.acknowledge(member.actor, reference)}"

    async def note(self, member: Staff, args: str) -> str:
        reference, text = self._reference_and_text("note", args)
        await self.casework.add_note(member.actor, reference, text)
        return f"{reference}: note added"

    async def assign(self, member: Staff, args: str) -> str:
        reference, name = self._reference_and_text("assign", args)
        await self.casework.assign(member.actor, reference, name)
        return f"{reference}: assigned to {name or 'nobody'}"

    async def reply(self, member: Staff, args: str) -> str:
        reference, text = self._reference_and_text("reply", args)
        await self.casework.reply(member.actor, reference, text)
        return f"{reference}: message queued for the worker"

    async def remediate(self, member: Staff, args: str) -> str:
        reference, text = self._reference_and_text("remediate", args)
        status = await self.casework.remediate(member.actor, reference, Remediation(text, {}))
        return f"{reference}: {status}; the worker is asked to confirm"

    async def close(self, member: Staff, args: str) -> str:
        reference, rest = self._reference_and_text("close", args)
        word, _, reason = rest.partition(" ")
        unvalidated = word.lower() == "unvalidated"
        status = await self.casework.close(
            member.actor, reference, unvalidated=unvalidated, reason=reason or None
        )
        return f"{reference}: {status}"

    async def broadcast(self, member: Staff, args: str) -> str:
        assert self.broadcasts is not None
        words = args.split(maxsplit=1)
        dry = bool(words) and words[0].lower() == "dry"
        if dry:
            words = words[1].split(maxsplit=1) if len(words) > 1 else []
        if not words:
            raise Refusal("topic", "missing")
        topic, segment_text = words[0], (words[1] if len(words) > 1 else "all")
        texts = topic_texts(topic)
        segment = await self.broadcasts.parse_segment(segment_text)
        if dry:
            preview = await self.broadcasts.preview(member.actor, texts, segment)
            languages = ", ".join(f"{code} {n}" for code, n in preview["languages"].items())
            return f"Would reach {preview['total']} worker(s): {languages or 'nobody'}."
        created = await self.broadcasts.create(member.actor, texts, segment, topic=topic)
        return (
            f"Broadcast {created['id']} created for {created['total']} worker(s). "
            f"Check it with /bstatus {created['id']}."
        )

    async def broadcast_status(self, member: Staff, args: str) -> str:
        assert self.broadcasts is not None
        if not args.strip().isdecimal():
            raise Refusal("id", "must be a broadcast's number")
        status = await self.broadcasts.status(member.actor, int(args))
        line = (
            f"Broadcast {status['id']}: {status['state']} · {status['sent']}/{status['total']} "
            f"sent · {status['failed']} failed ({status['blocked']} blocked) · "
            f"{status['pending']} pending"
        )
        return line + (f"\n{status['note']}" if "note" in status else "")
