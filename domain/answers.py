"""What a worker answers when asked whether a fix really happened, or a yes-or-no question.

The values are stored (``validations.answer``, CHECK constraint in migration 0003) and carried in
buttons (``domain/payloads.py``).
"""

from __future__ import annotations

from enum import StrEnum


class Answer(StrEnum):
    YES = "yes"
    PARTLY = "partly"
    NO = "no"
    UNSURE = "unsure"


#: The answers to "was it really fixed?", in the order the buttons show them.
VALIDATION_ANSWERS: tuple[Answer, ...] = (Answer.YES, Answer.PARTLY, Answer.NO, Answer.UNSURE)
#: The answers to a yes-or-no question ("has anyone treated you badly?", "was this helpful?").
YES_NO: tuple[Answer, ...] = (Answer.YES, Answer.NO)
