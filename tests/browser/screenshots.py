"""Screenshots of the console's main pages for docs/screenshots/, by `scripts/screenshots`:
the test seed (tests/web/seed.py) served on 127.0.0.1 and photographed in Chromium."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM
from tests.web.apps import routes_app
from tests.web.seed import seed
from tests.web.serving import serving

OUT = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def main() -> int:
    if not Path(CHROMIUM).is_file():
        print(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        seeded = seed(Path(folder) / "config", f"sqlite:///{folder}/monitor.db")
        with serving(routes_app(seeded)) as base, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1200, "height": 760})
            page.goto(base)
            page.screenshot(path=OUT / "alerts.png")
            page.goto(f"{base}stories/{seeded.failed}")
            page.locator("details.why").first.evaluate("d => d.open = true")
            page.screenshot(path=OUT / "story.png", full_page=True)
            page.goto(f"{base}feeds")
            page.screenshot(path=OUT / "feeds.png")
            page.goto(f"{base}playground?rule=russia-cuba-contacts")
            page.fill("input[name=title]", "Lavrov meets Cuban foreign minister in Moscow")
            page.get_by_role("button", name="Match").click()
            page.screenshot(path=OUT / "playground.png", full_page=True)
            browser.close()
        seeded.close()
    for name in ("alerts", "story", "feeds", "playground"):
        print(OUT / f"{name}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
