"""Quotas per worker: how many reports, urgent staff alerts, evidence bytes and updates one
account may cause, so one account (or a script driving it) cannot flood staff or the server.

Counters live where the conversation state lives (memory or Redis), under a blinded name of the
worker (``storage.rate_limits.Blinder``), in fixed windows: a day starts with the first report,
alert or file of that worker, a minute with their first update.

What happens at each limit (docs/SECURITY.md, "One account flooding the bot"):

- reports: a worker at the limit is told, before writing anything, when they can report again,
  with the emergency contacts; a report already being written is always accepted;
- urgent alerts: the case is stored urgent as always, but beyond the limit staff get no further
  alert message about this worker's cases until the day ends; the last alert says so;
- evidence bytes: a file beyond the limit is refused (not fetched when the limit is already
  reached), the report goes on;
- updates a minute: the first update over the limit is answered once with "slow down", the rest
  of that minute's are dropped before any state or database work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from storage.rate_limits import AttemptCounter

DAY = 24 * 3600
MINUTE = 60


@dataclass(frozen=True)
class QuotaPolicy:
    reports_per_day: int = 5
    urgent_alerts_per_day: int = 1
    evidence_bytes_per_day: int = 100 * 1024 * 1024
    updates_per_minute: int = 120


class AlertVerdict(Enum):
    ALERT = "alert"  # alert staff
    LAST_ALERT = "last_alert"  # alert staff, saying later urgent cases of this worker won't be
    COLLAPSED = "collapsed"  # no new staff message: the earlier alert stands for this one too


class UpdateVerdict(Enum):
    HANDLE = "handle"
    SLOW_DOWN = "slow_down"  # answer once, do nothing else
    DROP = "drop"


class WorkerQuotas:
    def __init__(
        self,
        counter: AttemptCounter,
        blind: Callable[[str], str],
        policy: QuotaPolicy | None = None,
    ) -> None:
        self.counter = counter
        self._blind = blind
        self.policy = policy or QuotaPolicy()

    def key(self, scope: str, pseudonym: str) -> str:
        """A counter key for one worker: never the pseudonym itself."""
        return f"{scope}:{self._blind(pseudonym)}"

    async def report_wait(self, pseudonym: str) -> int:
        """Seconds until the worker may start another report; 0 when they may now."""
        key = self.key("reports", pseudonym)
        if await self.counter.count(key, DAY) < self.policy.reports_per_day:
            return 0
        return max(1, await self.counter.seconds_left(key, DAY))

    async def count_report(self, pseudonym: str) -> None:
        await self.counter.add(self.key("reports", pseudonym), DAY)

    async def urgent_alert(self, pseudonym: str) -> AlertVerdict:
        """Take one urgent alert of the worker's day (atomically: two at once get two counts)."""
        sent = await self.counter.add(self.key("urgent", pseudonym), DAY)
        limit = self.policy.urgent_alerts_per_day
        if sent < limit:
            return AlertVerdict.ALERT
        return AlertVerdict.LAST_ALERT if sent == limit else AlertVerdict.COLLAPSED

    async def evidence_room(self, pseudonym: str) -> bool:
        """Whether any file may still be taken today (checked before downloading one)."""
        used = await self.counter.count(self.key("evidence", pseudonym), DAY)
        return used < self.policy.evidence_bytes_per_day

    async def take_evidence(self, pseudonym: str, size: int) -> bool:
        """Count ``size`` bytes if they fit in the day's allowance; else count nothing."""
        key = self.key("evidence", pseudonym)
        if await self.counter.add(key, DAY, size) <= self.policy.evidence_bytes_per_day:
            return True
        await self.counter.add(key, DAY, -size)
        return False

    async def update(self, pseudonym: str) -> UpdateVerdict:
        seen = await self.counter.add(self.key("updates", pseudonym), MINUTE)
        limit = self.policy.updates_per_minute
        if seen <= limit:
            return UpdateVerdict.HANDLE
        return UpdateVerdict.SLOW_DOWN if seen == limit + 1 else UpdateVerdict.DROP
