#!/usr/bin/python3
"""Drives the status page (clockchain_status) in headless Chromium, for
t/80-status-page.t.

    status-browser.py STATUS_URL API_URL SERVICE_KEY [SCREENSHOT]

Creates jobs through API_URL (the Flash stand-in runs them), watches the
page at STATUS_URL, and prints one line per check, "CHECK 1 what" or
"CHECK 0 what", "DIAG text" for details, or "SKIP why" alone when no
browser can be started.  Debian's chromium, chromium-driver and
python3-selenium; ./build.sh test installs them.
"""

import json
import os
import sys
import tempfile
import time
import urllib.request

HOSTILE = "<img src=x onerror=alert(1)><script>alert(2)</script>"


def say(*a):
    print(*a, flush=True)


def check(ok, what):
    say("CHECK %d %s" % (1 if ok else 0, what))
    return ok


def diag(text):
    for line in str(text).splitlines() or [""]:
        say("DIAG " + line)


try:
    from selenium import webdriver
    from selenium.common.exceptions import (NoAlertPresentException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
except ImportError as e:
    say("SKIP python3-selenium cannot be imported: %s" % e)
    sys.exit(0)


def start_browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
              "--disable-dev-shm-usage", "--no-first-run",
              "--disable-extensions", "--disable-background-networking",
              "--user-data-dir=" + profile, "--window-size=1280,1400"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"),
                            options=opts)


def generate(api, key, query):
    req = urllib.request.Request(
        api + "/api/generate", method="POST",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json", "X-Service-Key": key})
    with urllib.request.urlopen(req, timeout=10) as res:
        return json.load(res)["job_id"]


def wait(secs, fn):
    end = time.time() + secs
    while time.time() < end:
        try:
            v = fn()
        except WebDriverException:
            v = None
        if v:
            return v
        time.sleep(0.2)
    return None


def tile(d, name):
    return d.find_element("id", "jobs-" + name).text.strip()


def polls(d):
    return int(d.execute_script(
        "return +(document.body.getAttribute('data-polls') || 0)"))


def console_errors(d):
    return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def screenshot(d, api, key, shot):
    """The picture for README.md: a minute of slow jobs first, so that the
    queue chart has a history to show (only with CLOCKCHAIN_SCREENSHOT)."""
    for i in range(24):
        generate(api, key, "screenshot job %d [flash:delay=6]" % i)
    time.sleep(22)
    for i in range(12):
        generate(api, key, "screenshot late job %d [flash:delay=6]" % i)
    wait(40, lambda: tile(d, "completed") == "39")
    time.sleep(11)
    n = polls(d)
    wait(6, lambda: polls(d) > n)
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1100, "height": int(height), "deviceScaleFactor": 1,
        "mobile": False})
    time.sleep(0.5)
    d.save_screenshot(shot)
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    say("DIAG screenshot: " + shot)


def main():
    status, api, key = sys.argv[1:4]
    shot = sys.argv[4] if len(sys.argv) > 4 else ""

    with tempfile.TemporaryDirectory(prefix="cc-chromium-") as profile:
        try:
            d = start_browser(profile)
        except WebDriverException as e:
            say("SKIP headless chromium cannot be started: %s"
                % str(e).splitlines()[0])
            return
        try:
            run(d, status, api, key, shot)
        finally:
            d.quit()


def run(d, status, api, key, shot):
    d.set_page_load_timeout(15)
    d.get(status)

    check(wait(10, lambda: polls(d) >= 1 and "updated" in
               d.find_element("id", "meta").text),
          "the page loads and shows a poll of the JSON")
    check(d.title == "clockchain status", "its title")
    check(not d.find_element("id", "alert").is_displayed(),
          "no error banner while the JSON answers")
    check(tile(d, "created") == "0" and tile(d, "completed") == "0",
          "jobs created and completed start at 0")

    # jobs created: the numbers move, then the jobs finish
    for i in range(3):
        generate(api, key, "status page probe %d" % i)

    check(wait(15, lambda: tile(d, "created") == "3"),
          "created shows the 3 jobs made")
    check(wait(30, lambda: tile(d, "completed") == "3"),
          "completed shows 3 once the stand-in has run them")
    check(wait(10, lambda: tile(d, "pending") == "0"
               and tile(d, "processing") == "0"),
          "pending and processing go back to 0")
    check(len(d.find_elements("css selector", "#queue-chart polyline")) == 2,
          "the queue chart has its two lines")
    check(len(d.find_elements("css selector", "#flash-chart rect")) == 11,
          "the Flash latency chart has a bar per bucket")
    runner = d.find_element("id", "runner").text
    check("generation" in runner and "closed" in runner,
          "the runner's generation and a closed breaker are shown")
    check("yes" in d.find_element("id", "redis").text,
          "Redis is shown reachable")

    # a failure whose error text is markup: shown as text, never run
    bad = generate(api, key, "status page hostile [flash:hostile]")
    li = wait(20, lambda: [e for e in d.find_elements(
        "css selector", "#failures li") if bad in e.text])
    check(bool(li), "the failed job's id appears among the last failures")
    if li:
        err = li[0].find_element("css selector", ".error").text
        check(HOSTILE in err, "its error text is shown as text, markup and all")
        if HOSTILE not in err:
            diag(err)
    check(tile(d, "failed") == "1" or wait(5, lambda: tile(d, "failed") == "1"),
          "failed shows 1")
    check(d.execute_script(
        "return document.querySelectorAll('main img, main script').length")
          == 0, "no element was made from the error text")
    try:
        text = d.switch_to.alert.text
        check(False, "no alert ran (one did: %r)" % text)
    except NoAlertPresentException:
        check(True, "no alert ran")

    errors = console_errors(d)
    check(not errors, "no console errors (CSP violations included)")
    for e in errors:
        diag(e.get("message"))

    if shot:
        screenshot(d, api, key, shot)

    # 375 px wide, as a phone: nothing wider than the screen
    d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 375, "height": 812, "deviceScaleFactor": 2, "mobile": True})
    n = polls(d)
    wait(6, lambda: polls(d) > n)
    width = d.execute_script("return window.innerWidth")
    sw = d.execute_script("return document.documentElement.scrollWidth")
    check(width == 375, "the viewport is 375 px wide (%s)" % width)
    check(sw <= 375, "no horizontal overflow at 375 px (scrollWidth %s)" % sw)
    d.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    # the JSON cannot be fetched: a clear message, the page stays
    done = tile(d, "completed")
    d.execute_cdp_cmd("Network.enable", {})
    d.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*format=json*"]})
    shown = wait(8, lambda: d.find_element("id", "alert").is_displayed())
    check(bool(shown) and "cannot be fetched" in
          d.find_element("id", "alert").text,
          "a message says the status cannot be fetched")
    check(tile(d, "completed") == done, "the last numbers stay on the page")
    d.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
    check(wait(8, lambda: not d.find_element("id", "alert").is_displayed()),
          "the message goes once the JSON answers again")


if __name__ == "__main__":
    main()
