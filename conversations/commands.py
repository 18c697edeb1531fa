"""The worker commands of CONTRACT.md, with the one-line descriptions shown in menus and /help."""

from __future__ import annotations

from locales import N_

#: Command name -> description (translated where shown). Order is the order menus list them.
WORKER_COMMANDS: dict[str, str] = {
    "start": N_("Start: choose language, privacy, menu"),
    "menu": N_("Show the main menu"),
    "language": N_("Change language"),
    "learn": N_("Learn your rights"),
    "report": N_("Report a problem, anonymously"),
    "status": N_("Check a case with its reference and code"),
    "stop": N_("Stop receiving updates"),
    "subscribe": N_("Receive updates again"),
    "forget": N_("Erase the link between this chat and your reports"),
    "help": N_("How this service works"),
}
