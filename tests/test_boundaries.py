"""The libraries and the core import none of the bot's edges: no database, messenger or service.

``media`` cleans hostile files and ``locales`` holds text; both are libraries under ``services``.
``conversations`` is the messenger-agnostic core. Each package is imported, every module of it,
in a fresh interpreter, and nothing it pulled in may come from the edges.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

EDGES = frozenset(
    {
        "bot", "cli", "scheduler", "services", "storage",
        "aiogram", "aiohttp", "aiosqlite", "alembic", "asyncpg", "redis", "sqlalchemy",
    }
)  # fmt: skip

IMPORT_ALL = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print("\\n".join(sorted({name.partition(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize("package", ["media", "locales", "conversations"])
def test_package_imports_nothing_of_the_edges(package: str) -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, package], check=True, capture_output=True, text=True
    ).stdout.split()

    assert package in loaded
    assert sorted(EDGES.intersection(loaded)) == []
