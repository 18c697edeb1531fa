"""The hash-pinned locks (`make lock`) match pyproject.toml: every dependency, development tool
and build requirement is pinned to one version with its hashes, so `make setup` (pip
--require-hashes) installs exactly what was locked. A dependency added to pyproject.toml without
`make lock` fails here, with the command to run, instead of somewhere later as an ImportError."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: name==version [; marker] followed by its --hash lines, as uv writes them.
_ENTRY = re.compile(
    r"^([A-Za-z0-9._-]+)==(\S+)(?: ; ([^\\\n]+))?((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", re.M
)


def locked(name: str) -> dict[str, tuple[str, str | None]]:
    """Package -> (version, marker) of a lock file; every entry must carry hashes."""
    text = (ROOT / "requirements" / name).read_text(encoding="utf-8")
    entries = {canonicalize_name(match[1]): (match[2], match[3]) for match in _ENTRY.finditer(text)}
    pins = re.findall(r"^[A-Za-z0-9._-]+==", text, re.M)
    assert len(pins) == len(entries), f"{name}: a pin without hashes (run `make lock`)"
    return entries


def required(requirements: list[str]) -> list[Requirement]:
    return [
        requirement
        for requirement in map(Requirement, requirements)
        if requirement.marker is None or requirement.marker.evaluate(default_environment())
    ]


RUNTIME = required(PYPROJECT["project"]["dependencies"])
DEV = required(PYPROJECT["project"]["optional-dependencies"]["dev"])
BUILD = [*required(PYPROJECT["build-system"]["requires"]), Requirement("editables")]


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [("lock.txt", RUNTIME + BUILD), ("dev-lock.txt", RUNTIME + DEV + BUILD)],
)
def test_every_requirement_is_locked_within_its_range(
    lock: str, requirements: list[Requirement]
) -> None:
    entries = locked(lock)
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement} is not in requirements/{lock}: run `make lock`"
        version, _marker = entries[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {name}=={version}, outside {requirement}: run `make lock`"
        )


def test_the_runtime_lock_pins_what_the_development_lock_pins() -> None:
    runtime, development = locked("lock.txt"), locked("dev-lock.txt")
    assert set(runtime) <= set(development)
    for name, (version, _marker) in runtime.items():
        assert development[name][0] == version, f"{name}: the two locks disagree"
