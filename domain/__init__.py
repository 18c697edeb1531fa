"""The project's words, typed: case statuses, the workers' answers, button payloads, report
categories, the reference format and refusals.

This is the ground floor. It imports nothing but the standard library, so every other room —
conversations, services, storage, the scheduler, the CLI and the channels — can speak it without
pulling in a database driver, a messenger library or gettext. The values of its enums are the
strings stored in the database and carried in buttons: never change one without a migration.
"""
