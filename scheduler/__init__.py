"""Timed work: APScheduler 3 in the bot process (outbox relay, prompts, reminders, clocks)."""
