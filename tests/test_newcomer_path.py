"""The newcomer's path, end to end on the embedded default, through real processes in an empty
folder: the README's first command opens the console chat, where a worker reports a problem and
leaves; staff find the case, reply and record a remediation from the CLI; the worker comes back
to the chat, finds the question "was it fixed?" waiting, answers No, and the case is reopened."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.test_console_e2e import ConsoleWorker, staff

ROOT = Path(__file__).resolve().parent.parent


def test_the_readmes_first_command_is_the_console_chat() -> None:
    """What this path runs as `wvb chat` is what the README's first command runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert first_block is not None
    assert first_block.group(1).split()[:2] == ["make", "chat"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^chat:.*\n\t(.*)$", makefile, re.MULTILINE)
    assert recipe is not None
    assert recipe.group(1) == "$(BIN)/wvb chat"


async def test_report_in_the_console_staff_remediate_the_worker_says_no_and_it_reopens(
    tmp_path: Path,
) -> None:
    worker = await ConsoleWorker.start(tmp_path)
    try:
        await worker.start_a_wages_report()  # English, accept, no broadcasts
        await worker.choose("No, or I don't know")  # a recruitment agency
        await worker.prompt()
        await worker.type("My wages for October were not paid.")
        await worker.choose("Done")
        await worker.choose("In the last 7 days")
        await worker.choose("A few workers")
        await worker.choose("No")  # in danger now
        await worker.choose("Keep it confidential")
        await worker.choose("Send the report")
        await worker.expect("Secret receipt code")
    finally:
        assert await worker.quit() == 0, worker.output[-1500:]

    [case] = json.loads((await staff(tmp_path, "cases", "list", "--json")).stdout)
    assert (case["status"], case["category"], case["language"]) == ("received", "wages", "en")
    reference = case["reference"]
    await staff(tmp_path, "cases", "reply", reference, "--text", "Which shift do you work?")
    remediated = await staff(tmp_path, "cases", "remediate", reference,
                             "--summary", "October was paid on 1 December.", "--json")  # fmt: skip
    assert json.loads(remediated.stdout)["status"] == "awaiting_validation"

    # The same worker comes back (`wvb chat` is the worker "local" until --as says otherwise).
    returning = await ConsoleWorker.start(tmp_path)
    try:
        await returning.expect("Which shift do you work?")
        await returning.expect("October was paid on 1 December.")
        await returning.choose("No, it was not fixed")
        await returning.expect("is open again")
    finally:
        assert await returning.quit() == 0, returning.output[-1500:]

    shown = json.loads((await staff(tmp_path, "cases", "show", reference, "--json")).stdout)
    assert shown["status"] == "reopened"
    assert shown["events"][-1]["action"] == "validation_no"
