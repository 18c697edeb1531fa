"""The staff web console (`wvb console`): Starlette pages over the same services as the CLI and
the staff chat, opened through the one composition root (`bot.app.open_app`)."""
