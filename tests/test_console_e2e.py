"""The console is a full channel: `wvb chat` on the embedded default, driven as a newcomer would
type into it, while staff act from `wvb` commands in another process on the same folder.

A staff reply, an acknowledgement and a validation prompt reach the console worker without the
worker asking (the chat process runs the relays); the worker's "No" reopens the case.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from pathlib import Path

from tests.bot_driver import REFERENCE, CommandResult

WVB = str(Path(sys.executable).parent / "wvb")
WAIT_SECONDS = 30.0
MENU_LINE = re.compile(r"^\s+(\d+)\. (.*)$", re.MULTILINE)
#: Where the bot asks for words, its choices are bullets: the worker types the label.
BULLET_LINE = re.compile(r"^\s+• (.*)$", re.MULTILINE)


def embedded_environment() -> dict[str, str]:
    """The newcomer's environment: no WVB_ settings at all (SQLite file, generated keys)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WVB_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class ConsoleWorker:
    """A `wvb chat` process: type lines, wait for what it prints."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.output = ""
        self.seen = 0  # what has been looked at already
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, folder: Path, env: dict[str, str] | None = None) -> ConsoleWorker:
        """`wvb chat` in ``folder``, on the embedded default unless ``env`` names settings."""
        process = await asyncio.create_subprocess_exec(
            WVB, "chat", cwd=folder, env=env or embedded_environment(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while chunk := await self.process.stdout.read(4096):
            self.output += chunk.decode()

    async def expect(self, text: str) -> str:
        """Wait until ``text`` is printed after what was seen; return what came with it."""
        deadline = time.monotonic() + WAIT_SECONDS
        while text not in self.output[self.seen :]:
            if time.monotonic() > deadline:
                raise AssertionError(f"never printed {text!r}; last output:\n{self.output[-1500:]}")
            await asyncio.sleep(0.05)
        start = self.seen
        self.seen = self.output.index(text, self.seen) + len(text)
        return self.output[start : self.seen]

    async def prompt(self) -> str:
        """Everything up to the next prompt."""
        return await self.expect("\n> ")

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        await self.process.stdin.drain()

    async def choose(self, label: str) -> None:
        """Type the number of the choice whose label contains ``label`` in the next menu, or
        on a step that asks for words (choices as bullets), that choice's label."""
        screen = await self.prompt()
        numbers = [number for number, text in MENU_LINE.findall(screen) if label in text]
        if numbers:
            await self.type(numbers[-1])
            return
        bullets = [text for text in BULLET_LINE.findall(screen) if label in text]
        assert bullets, f"no choice {label!r} in:\n{screen}"
        await self.type(bullets[-1])

    async def start_a_wages_report(self) -> None:
        """A newcomer: English, accept the notice, no broadcasts, then /report about wages,
        workplace not said; the bot next asks about a recruitment agency."""
        await self.choose("English")
        await self.choose("I understand")
        await self.choose("No, thank you")
        await self.prompt()
        await self.type("/report")
        await self.choose("Wages")
        await self.choose("Done")
        await self.choose("prefer not to say")

    async def send_a_wages_report(self, details: str) -> str:
        """``start_a_wages_report``, no agency, ``details``, then the usual answers and send;
        returns the receipt as printed (reference and secret receipt code)."""
        await self.start_a_wages_report()
        await self.prompt()
        await self.type("No")  # where the bot asks for words, a choice is typed as its word
        await self.prompt()
        await self.type(details)
        await self.prompt()
        await self.type("Done")
        await self.choose("In the last 7 days")
        await self.choose("A few workers")
        await self.choose("No")
        await self.choose("Keep it confidential")
        await self.choose("Send the report")
        return await self.expect("Secret receipt code") + await self.expect("Write both down")

    async def quit(self) -> int:
        await self.type("/quit")
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = await asyncio.wait_for(self.process.wait(), WAIT_SECONDS)
        await self._reader
        return code


async def staff(folder: Path, *args: str) -> CommandResult:
    process = await asyncio.create_subprocess_exec(
        WVB, *args, cwd=folder, env=embedded_environment(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    result = CommandResult(process.returncode, stdout.decode(), stderr.decode())
    assert result.returncode == 0, result.stderr
    return result


async def test_the_console_worker_reports_hears_from_staff_and_a_no_reopens_the_case(
    tmp_path: Path,
) -> None:
    worker = await ConsoleWorker.start(tmp_path)
    try:
        receipt = await worker.send_a_wages_report("My wages for October were not paid.")
        found = REFERENCE.search(receipt)
        assert found is not None, receipt
        reference = found.group(1)

        await staff(tmp_path, "cases", "acknowledge", reference)
        await worker.expect("has been read by our staff")

        await staff(tmp_path, "cases", "reply", reference, "--text", "Which shift do you work?")
        followup = await worker.expect("Which shift do you work?")
        assert "Message from our staff" in followup

        await staff(tmp_path, "cases", "remediate", reference, "--summary", "October was paid.")
        await worker.expect("October was paid.")
        await worker.choose("No, it was not fixed")
        await worker.expect("is open again")
        await worker.prompt()
        await worker.type("Skip")

        shown = json.loads((await staff(tmp_path, "cases", "show", reference, "--json")).stdout)
        assert shown["status"] == "reopened"
        assert [e["action"] for e in shown["events"]][-1] == "validation_no"
    finally:
        code = await worker.quit()
    assert code == 0, worker.output[-1500:]


async def test_where_the_bot_asks_for_words_a_typed_number_is_words_in_the_console(
    tmp_path: Path,
) -> None:
    worker = await ConsoleWorker.start(tmp_path)
    try:
        await worker.start_a_wages_report()
        await worker.prompt()
        await worker.type("No")  # no agency: the button's word, typed
        describing = await worker.prompt()
        assert "Tell us what happened" in describing
        assert not MENU_LINE.search(describing), "no numbers where a number would be words"
        await worker.type("3")  # three months unpaid, not the third button
        added = await worker.prompt()
        assert "Added" in added, added
        assert "Main menu" not in added
        await worker.type("Done")
        await worker.choose("In the last 7 days")
        await worker.choose("A few workers")
        await worker.choose("No")
        await worker.choose("Keep it confidential")
        review = await worker.expect("Send the report")
        assert "“3”" in review, review
    finally:
        code = await worker.quit()
    assert code == 0, worker.output[-1500:]
