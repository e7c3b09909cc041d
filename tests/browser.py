"""A headless Chromium driven by selenium, for the tests of the HTML pages: what a page asked of
the network (the browser's own log), what it said on its console, and how long it took to load."""
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import require_tool

SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots"


class Browser:
    def __init__(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000"):  # (root needs --no-sandbox)
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        self.driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))

    def open(self, page: Path) -> float:
        """Load the page (its scripts run, its plots drawn); the seconds it took."""
        self.driver.get_log("performance")  # what earlier pages asked is not this one's
        self.driver.get_log("browser")
        t0 = time.perf_counter()
        self.driver.get(page.resolve().as_uri())
        self.wait(lambda d: d.execute_script(
            "return document.readyState === 'complete' && [...document.querySelectorAll('.chart')]"
            ".every(c => c.querySelector('svg'))"), what="the page and its plots")
        return time.perf_counter() - t0

    def wait(self, ready, what: str, timeout: float = 20):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.driver, timeout).until(ready, message=f"{what} within {timeout} s")

    def requests(self) -> list:
        """Every URL the page asked for since it was opened, from the browser's network log."""
        events = [json.loads(entry["message"])["message"] for entry in self.driver.get_log("performance")]
        return [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]

    def console_errors(self) -> list:
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def broken_images(self) -> list:
        return self.driver.execute_script(
            "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)")

    def screenshot(self, name: str) -> Path:
        """The whole page as a PNG in build/screenshots, for people to look at."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, min(height + 100, 16000))
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1400, 1000)
        return path

    def quit(self):
        self.driver.quit()


@pytest.fixture(scope="module")
def browser():
    for tool in ("chromium", "chromedriver"):
        require_tool(tool)
    os.environ.setdefault("SE_AVOID_STATS", "true")  # selenium manager: no telemetry, no download
    b = Browser()
    yield b
    b.quit()
