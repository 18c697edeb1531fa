"""The Telegram channel on python-telegram-bot 22 (``WVB_TELEGRAM_RUNTIME=ptb``): the same
behaviour as the aiogram runtime in ``bot/channels/telegram/``, whose library-free modules
(``rendering``, ``updates``, ``shared``) both runtimes use."""

import os

# PTB 22 moves time periods (a 429's ``retry_after`` among them) from seconds to timedelta and,
# until a process opts in, warns each time one is read, also inside PTB when it raises
# ``RetryAfter``: every 429 would print a warning. This runtime is written for the timedelta.
os.environ["PTB_TIMEDELTA"] = "true"
