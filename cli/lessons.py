"""`wvb lessons`: the rights-education lessons, their check, and what workers said of them."""

from __future__ import annotations

import typer

from cli.common import call_app, print_json
from cli.usage import JSON_OPTION, CommandGroup, usage_error
from locales import LANGUAGES
from locales.education import TOPICS, check_shipped, lesson_preview

lessons_app = CommandGroup(help="Rights-education lessons in every language.")


@lessons_app.command("list")
def lessons_list(as_json: bool = JSON_OPTION) -> None:
    """The topics (usable with `wvb broadcast create --topic`), with workers' "Was this helpful?"
    answers summed over languages."""
    counts = call_app(lambda app: app.learning.feedback())
    rows = []
    for topic in TOPICS:
        helpful = sum(yes for (name, _), (yes, _no) in counts.items() if name == topic)
        unhelpful = sum(no for (name, _), (_yes, no) in counts.items() if name == topic)
        title = lesson_preview(topic, "en")[0]
        rows.append({"topic": topic, "title": title, "helpful": helpful, "unhelpful": unhelpful})
    if as_json:
        print_json(rows)
        return
    for row in rows:
        typer.echo(f"{row['topic']}\t👍 {row['helpful']}\t👎 {row['unhelpful']}\t{row['title']}")


@lessons_app.command("check")
def lessons_check(
    language: list[str] = typer.Option(  # noqa: B008
        [], "--language", metavar="LL", help="Only these languages (repeatable); default all."
    ),
) -> None:
    """Check every lesson file: present, well-formed, within the page size, title translated."""
    unknown = [code for code in language if code not in LANGUAGES]
    if unknown:
        usage_error(f"--language: unknown {', '.join(unknown)}; one of {', '.join(LANGUAGES)}")
    problems = [problem for code in (language or LANGUAGES) for problem in check_shipped(code)]
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{len(language or LANGUAGES) * len(TOPICS)} lessons fine", err=True)
