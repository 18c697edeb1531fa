"""The console's reports pages (built next; see issue 13)."""

from __future__ import annotations

from starlette.routing import Route

ROUTES: list[Route] = []
