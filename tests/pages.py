"""The pages fornet writes, opened in headless Chromium (Debian's ``chromium`` and ``chromium-driver``,
driven by selenium): what a person would see, checked the way a person would notice it is broken.

Also a script, for the README's screenshots: ``python tests/pages.py PAGE.html OUT.png [WIDTH]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# As root Chromium needs --no-sandbox; without the background-networking flags it keeps trying to reach
# Google's services, which a closed network answers with floods of errors.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--hide-scrollbars")
HANG_LIMIT = 120  # seconds: only catches a page that never settles


def missing() -> str | None:
    """Why the browser cannot be had here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install chromium chromium-driver; `make test` does it)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


@contextmanager
def chromium(width: int = 1200, height: int = 1000) -> Iterator[object]:
    """A headless Chromium with a fresh profile, its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="fornet-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(HANG_LIMIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class PageCheck:
    """What a page showed: its images and whether they loaded, its local links, its console errors."""

    images: list[tuple[str, int]] = field(default_factory=list)  # (src, naturalWidth)
    links: list[str] = field(default_factory=list)  # hrefs as the browser resolved them
    errors: list[str] = field(default_factory=list)

    @property
    def broken_images(self) -> list[str]:
        return [src for src, width in self.images if width <= 0]

    @property
    def dead_links(self) -> list[str]:
        """Links to a file that does not exist, or to anywhere but a local file (pages must be self-contained)."""
        dead = []
        for href in self.links:
            url = urlparse(href)
            if url.scheme != "file" or not Path(unquote(url.path)).exists():
                dead.append(href)
        return dead


def open_page(driver: object, page: Path) -> PageCheck:
    """Load ``page``, bring every image into view (lazy ones load then), wait until each has settled."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.resolve().as_uri())  # type: ignore[attr-defined]
    wait = WebDriverWait(driver, HANG_LIMIT)
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
    driver.execute_script("for (const im of document.images) { im.loading = 'eager'; im.scrollIntoView(); }")  # type: ignore[attr-defined]
    wait.until(lambda d: d.execute_script("return Array.from(document.images).every(im => im.complete)"))
    images = driver.execute_script(  # type: ignore[attr-defined]
        "return Array.from(document.images).map(im => [im.currentSrc || im.src, im.naturalWidth])")
    links = driver.execute_script(  # type: ignore[attr-defined]
        "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    log = driver.get_log("browser")  # type: ignore[attr-defined]
    driver.execute_script("window.scrollTo(0, 0)")  # type: ignore[attr-defined]
    return PageCheck([(s, int(w)) for s, w in images], list(links), [e["message"] for e in log if e["level"] == "SEVERE"])


def screenshot(driver: object, target: Path, max_height: int = 1500, width: int = 900) -> Path:
    """The top of the page as a small PNG (scaled to ``width`` px, 256 colours)."""
    from PIL import Image

    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), max_height)  # type: ignore[attr-defined]
    driver.set_window_size(1200, height + 20)  # type: ignore[attr-defined]
    raw = target.with_suffix(".raw.png")
    driver.save_screenshot(str(raw))  # type: ignore[attr-defined]
    with Image.open(raw) as im:
        im = im.convert("RGB")
        im = im.resize((width, round(im.height * width / im.width)), Image.Resampling.LANCZOS)
        im.quantize(256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    raw.unlink()
    return target


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: python tests/pages.py PAGE.html OUT.png [MAX_HEIGHT]")
    reason = missing()
    if reason:
        sys.exit(reason)
    with chromium() as browser:
        check = open_page(browser, Path(sys.argv[1]))
        if check.broken_images or check.dead_links or check.errors:
            print(f"problems: {check.broken_images} {check.dead_links} {check.errors}", file=sys.stderr)
        print(screenshot(browser, Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 1500))
