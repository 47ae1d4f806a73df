"""Screenshot of TensorBoard's HParams dashboard in headless Chromium (docs/hparams.png).

python scripts/hparams_screenshot.py --url http://127.0.0.1:6006/#hparams --out docs/hparams.png
Needs Debian's chromium and chromium-driver, and selenium.
"""

import argparse
import tempfile
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--url", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--wait", type=float, default=15.0, help="seconds to let the page render")
  args = parser.parse_args()
  options = webdriver.ChromeOptions()
  options.binary_location = "/usr/bin/chromium"
  for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--window-size=1500,900",
               f"--user-data-dir={tempfile.mkdtemp()}"):
    options.add_argument(flag)
  driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
  try:
    driver.get(args.url)
    time.sleep(args.wait)
    driver.save_screenshot(args.out)
  finally:
    driver.quit()


if __name__ == "__main__":
  main()
