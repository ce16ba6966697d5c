"""Regenerate ``docs/web-page.png``: the counsellor's page after the README's example person.

Run by hand after a change to the page: ``python tools/web_screenshot.py`` (needs chromium and
chromedriver, as the browser tests do). The server runs on a free loopback port in this process.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from rlsepi.web import create_app

OUT = Path(__file__).resolve().parents[1] / "docs" / "web-page.png"
PERSON = {"age": "34", "sex": "female", "pregnant": "yes", "trimester": "3", "ferritin": "20",
          "g_rs2300478": "GT", "g_rs9357271": "TC", "g_rs1975197": "AA", "g_rs4626664": "GG"}


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    os.environ.setdefault("SE_OFFLINE", "true")
    profile = tempfile.mkdtemp()
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", "--window-size=1085,1600"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        for name, value in PERSON.items():
            field = driver.find_element(By.NAME, name)
            if field.tag_name == "select":
                field.find_element(By.CSS_SELECTOR, f"option[value='{value}']").click()
            else:
                field.send_keys(value)
        driver.find_element(By.ID, "risk-form").submit()
        WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "result-h")))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1085, height + 140)  # the window includes what is not the page
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(str(OUT))
    finally:
        driver.quit()
        server.should_exit = True
        shutil.rmtree(profile, ignore_errors=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
