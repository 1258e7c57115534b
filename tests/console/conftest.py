"""Debian's Chromium, driven by selenium, against the real proxy on a real socket (the bundled
MiniLM model, real SQLite and Qdrant Edge), in front of a scripted provider.

Without Chromium the tests skip, except under CI (`.ci/run` installs it), where they fail."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCREENSHOTS = os.environ.get("LOOPWISE_SCREENSHOTS")  # read before the tests clear LOOPWISE_*


@pytest.fixture
def browser() -> Iterator[object]:
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            pytest.fail(
                "CI needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
            )
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: `LOOPWISE_SCREENSHOTS` (docs/console, to refresh the README's), else
    a temporary directory."""
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
