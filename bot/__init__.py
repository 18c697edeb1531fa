"""Channel adapters (Telegram, console) and the composition root that wires the bot together."""
