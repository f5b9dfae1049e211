"""The docs' picture of the attention explorer: serves a checkpoint, opens the page in headless
Chromium (Debian's chromium and chromium-driver, through Selenium), translates a sentence the
project wrote (docs/figures/sentences.de), hovers one target piece, and saves a screenshot.

    python scripts/explorer_screenshot.py --checkpoint runs/<run>/checkpoints/best.pt --output docs/images/explorer.png
"""

from __future__ import annotations

import argparse
import shutil
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from nmt import Translator
from nmt.data.corpus import read_lines
from nmt.serving.api import ExplorerApi
from nmt.serving.server import make_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--sentences", default="docs/figures/sentences.de")
    parser.add_argument("--line", type=int, default=1, help="the sentence's line number")
    parser.add_argument("--hover", type=int, default=2, help="the target piece hovered (0-based)")
    args = parser.parse_args()
    translator = Translator.from_checkpoint(args.checkpoint, device="cpu")
    server = make_server(ExplorerApi(translator, name=Path(args.checkpoint).name), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1180"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        host, port = server.server_address[:2]
        browser.get(f"http://{host}:{port}/")
        WebDriverWait(browser, 60).until(lambda page: "parameters" in page.find_element(By.ID, "model-info").text)
        browser.find_element(By.ID, "source").send_keys(read_lines(args.sentences)[args.line - 1])
        browser.find_element(By.ID, "translate").click()
        WebDriverWait(browser, 120).until(lambda page: page.find_elements(By.CSS_SELECTOR, "#heatmap td"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#heatmap th.target-piece")
        ActionChains(browser).move_to_element(rows[min(args.hover, len(rows) - 1)]).perform()
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(args.output)
        print("wrote", args.output)
    finally:
        browser.quit()
        server.shutdown()


if __name__ == "__main__":
    main()
