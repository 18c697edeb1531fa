"""Rights education: the anonymous "Was this helpful?" counters after a lesson.

Only counters per topic and language are kept; nothing says who answered.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from locales import LANGUAGES
from locales.education import TOPICS
from storage.database import Database
from storage.models import LessonFeedback, utc_now


class LearningService:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def record_feedback(self, topic: str, language: str, helpful: bool) -> None:
        if topic not in TOPICS or language not in LANGUAGES:
            raise ValueError("unknown lesson topic or language")
        column = LessonFeedback.helpful_count if helpful else LessonFeedback.unhelpful_count
        for attempt in range(3):
            try:
                async with self.database.transaction() as session:
                    # An increment in the database, so concurrent answers are never lost.
                    result = await session.execute(
                        update(LessonFeedback)
                        .where(LessonFeedback.topic == topic, LessonFeedback.language == language)
                        .values({column: column + 1, LessonFeedback.updated_at: utc_now()})
                    )
                    if getattr(result, "rowcount", 0) == 0:
                        session.add(
                            LessonFeedback(
                                topic=topic,
                                language=language,
                                helpful_count=int(helpful),
                                unhelpful_count=int(not helpful),
                            )
                        )
                return
            except IntegrityError:
                # Another process inserted the same row a moment ago; the retry updates it.
                if attempt == 2:
                    raise

    async def feedback(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(topic, language) -> (helpful, not helpful), for staff reports and tests."""
        async with self.database.sessions() as session:
            rows = await session.scalars(select(LessonFeedback))
            return {
                (row.topic, row.language): (row.helpful_count, row.unhelpful_count) for row in rows
            }
