"""A real browser for the console's tests: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver (``browser`` fixture).

Nothing is downloaded at test time: the driver and the browser are given by path, so Selenium
Manager never runs (and ``SE_OFFLINE`` forbids it to go online if it did). `.ci/run` installs
both packages; on a developer machine without them the browser tests are skipped, and under
``CI=true`` they fail.

Every page a test looks at is saved as a screenshot in ``test-artifacts/browser/`` (git-ignored;
good ones become the guide's pictures, docs/images/console-*.png), and when a test fails the
page it was on is saved there too, as a screenshot and as its HTML source.

Selenium blocks; the tests are asynchronous (the fake Bot API and the bot share their event
loop), so every browser call here runs in a thread and the loop keeps serving while the browser
waits.
"""

from __future__ import annotations

import asyncio
import glob
import re
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Generator
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
#: Where screenshots and page sources go, under the repository root.
ARTEFACTS = Path("test-artifacts") / "browser"
#: Chromium without anything a test does not need: no sandbox (CI runs as root in a container),
#: no GPU, no background traffic to Google, a profile of its own, a fixed window for the pictures.
CHROMIUM_ARGUMENTS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
)
#: How long a page or a wait may take on a loaded two-core CI machine.
PAGE_TIMEOUT = 30.0

T = TypeVar("T")


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for needed, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not needed.exists():
            return f"{needed} is missing (apt-get install {package}; .ci/run does)"
    return None


class Browser:
    """One Chromium window on the console at ``base_url``, with the steps of a test named so
    its pictures and failure reports say where it was."""

    def __init__(self, driver: webdriver.Chrome, artefacts: Path, test_name: str) -> None:
        self.driver = driver
        self.artefacts = artefacts
        self.test_name = re.sub(r"[^\w.-]+", "_", test_name)
        self.base_url = ""
        self.step = "start"
        self.shots: list[Path] = []

    def artefact(self, name: str) -> Path:
        """A file of this test's beside its screenshots."""
        return self.artefacts / f"{self.test_name}-{name}"

    def forget_earlier_runs(self) -> None:
        for earlier in self.artefacts.glob(f"{glob.escape(self.test_name)}-*"):
            earlier.unlink()

    async def call(self, action: Callable[[webdriver.Chrome], T]) -> T:
        """Run ``action(driver)`` in a thread: the event loop keeps serving meanwhile."""
        return await asyncio.to_thread(action, self.driver)

    async def open(self, path: str, step: str) -> None:
        """Go to ``path`` on the console, as step ``step``, and photograph it."""
        self.step = step
        await self.call(lambda d: d.get(self.base_url + path))
        await self.shoot(step)

    async def shoot(self, step: str) -> Path:
        """A screenshot of the page now, as ``<test>-<NN>-<step>.png``."""
        self.step = step
        path = self.artefact(f"{len(self.shots) + 1:02d}-{step}.png")
        await self.call(lambda d: d.save_screenshot(str(path)))
        self.shots.append(path)
        return path

    async def fill(self, fields: dict[str, str]) -> None:
        """Type into the inputs or text areas of these names (cleared first)."""

        def typing(driver: webdriver.Chrome) -> None:
            for name, value in fields.items():
                element = driver.find_element(By.NAME, name)
                element.clear()
                element.send_keys(value)

        await self.call(typing)

    async def select(self, name: str, value: str) -> None:
        """Choose the option of value ``value`` in the select ``name``."""
        from selenium.webdriver.support.select import Select

        await self.call(lambda d: Select(d.find_element(By.NAME, name)).select_by_value(value))

    async def click(self, css: str, step: str) -> None:
        """Click the button at ``css`` and wait for the page it leads to; photograph it."""
        self.step = step

        def clicking(driver: webdriver.Chrome) -> None:
            before = driver.find_element(By.TAG_NAME, "html")
            driver.find_element(By.CSS_SELECTOR, css).click()
            _wait(lambda: _stale(before), f"no new page after clicking {css}")

        await self.call(clicking)
        await self.shoot(step)

    async def text(self, css: str = "body") -> str:
        """The visible text of the first element at ``css``."""
        return await self.call(lambda d: d.find_element(By.CSS_SELECTOR, css).text)

    async def elements(self, css: str) -> list[WebElement]:
        return await self.call(lambda d: d.find_elements(By.CSS_SELECTOR, css))

    async def attribute(self, css: str, name: str) -> str | None:
        return await self.call(lambda d: d.find_element(By.CSS_SELECTOR, css).get_attribute(name))

    async def path(self) -> str:
        """The path of the page shown now (without the console's address)."""
        url: str = await self.call(lambda d: d.current_url)
        return url.removeprefix(self.base_url)

    async def wait_for(
        self, condition: Callable[[WebDriver], bool], what: str, timeout: float = 30
    ) -> None:
        """Until ``condition(driver)`` holds (what the page does by itself, such as HTMX
        polling), or fail saying ``what`` was awaited."""
        await self.call(lambda d: _wait(lambda: condition(d), what, timeout))

    def save_failure(self) -> None:
        """The page the test was on when it failed: a screenshot and its HTML source."""
        stem = self.artefact(f"FAILED-{self.step}")
        try:
            self.driver.save_screenshot(f"{stem}.png")
            stem.with_suffix(".html").write_text(self.driver.page_source, encoding="utf-8")
        except WebDriverException as error:  # a browser that crashed has no page left to save
            stem.with_suffix(".txt").write_text(f"no page to save: {error}\n", encoding="utf-8")


def _stale(element: WebElement) -> bool:
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


def _wait(condition: Callable[[], bool], what: str, timeout: float = PAGE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f} s: {what}")
        time.sleep(0.1)


def start_chromium(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*CHROMIUM_ARGUMENTS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(PAGE_TIMEOUT)
    return driver


#: Each phase's report of a test (set up, call, tear down), kept on the test by the hook below.
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the ``browser`` fixture knows it failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture
async def browser(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Browser]:
    """Headless Chromium for one test; its failure saves the page it was on."""
    from tests.conftest import IN_CI  # here: conftest imports this module

    problem = browser_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"CI=true but {problem}", pytrace=False)
        pytest.skip(problem)
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager may not download anything
    artefacts = request.config.rootpath / ARTEFACTS
    artefacts.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wvb-chromium-", ignore_cleanup_errors=True) as profile:
        driver = await asyncio.to_thread(start_chromium, Path(profile))
        browser = Browser(driver, artefacts, request.node.name)
        browser.forget_earlier_runs()
        try:
            yield browser
        finally:
            reports = request.node.stash.get(REPORTS, {})
            if any(report.failed for report in reports.values()):
                await asyncio.to_thread(browser.save_failure)
            await asyncio.to_thread(driver.quit)
