"""Debian's Chromium, headless, driven by Playwright: one way to open a tab for every browser
story. CI installs /usr/bin/chromium; elsewhere a missing browser skips the story."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
WAIT_MS = 15_000


@contextmanager
def chromium_tab(width: int, height: int, *, csp_errors: bool = False) -> Iterator[Any]:
    """A fresh browser and tab of that size. After the story, any JavaScript error (and with
    `csp_errors`, any Content-Security-Policy refusal the page logged) fails it."""
    in_ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    if not Path(CHROMIUM).exists():
        if in_ci:
            pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright  # in the test extras; CI installs them

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        tab = browser.new_page(viewport={"width": width, "height": height})
        tab.set_default_timeout(WAIT_MS)
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(str(exc)))
        if csp_errors:
            tab.on("console", lambda m: problems.append(m.text)
                   if m.type == "error" and "Content Security Policy" in m.text else None)
        yield tab
        browser.close()
        assert not problems, f"the page reported errors (CSP or JavaScript): {problems}"
