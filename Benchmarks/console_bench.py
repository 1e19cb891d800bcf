"""The operator console's figures in a real browser (Debian's chromium, headless, Selenium), for
`vigil bench console`, which prepares the server and prints the figures beside their targets.

usage: console_bench.py VIGIL DATA AGENCY USER INCIDENT SERVER_PID SECONDS CAMERA...

Prints one JSON object:
- map_ready_ms: for each of 5 loads of the logged-in page, the time from asking for the page
  to the map drawn with its basemap and cameras (the page's own clock), and cameras_drawn;
- first_picture_ms: for each camera in turn (one tile at a time, the justification given once
  before), the time from the operator's click to the tile's first picture shown;
- wall: the 16 (or as many) tiles playing at once for SECONDS: frames each tile presented per
  second, frames it dropped, and the CPU seconds per second the server used meanwhile, beside
  the same with no tile (the cameras live all the same), and the browser's.
"""
import json, os, sys, time

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

# The console's driver is the browser test's (Tests/python/console_driver.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "python"))
from console_driver import chromium, log_in, login_code  # noqa: E402

vigil, data, agency, user, incident, server_pid, seconds = sys.argv[1:8]
cameras = sys.argv[8:]
seconds = float(seconds)
ticks = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError):
            pass
    return total


def browser_pids():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if open(f"/proc/{pid}/comm").read().strip().startswith("chrom"):
                    found.append(int(pid))
            except OSError:
                pass
    return found


def until(driver, script, timeout, what):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.02).until(lambda d: d.execute_script(script))
    except Exception:
        raise SystemExit(f"console_bench: {what} did not happen within {timeout} s")


driver = chromium(1920, 1080)
result = {}
try:
    log_in(driver, data, login_code(vigil, data, agency, user))
    until(driver, "return document.body.dataset.mapReadyMs !== undefined", 30, "the first map")
    ready = []
    for _ in range(5):
        driver.refresh()
        ready.append(int(until(driver, "return document.body.dataset.mapReadyMs", 30, "the map")))
    result["map_ready_ms"] = ready
    result["cameras_drawn"] = int(driver.execute_script("return document.body.dataset.cameras"))

    until(driver, f"return document.querySelector('#incidents li[data-incident=\"{incident}\"]') !== null", 10, "the incident in the list")
    driver.find_element(By.CSS_SELECTOR, f'#incidents li[data-incident="{incident}"]').click()
    until(driver, f"return document.querySelector('#cameras tr[data-camera=\"{cameras[0]}\"]') !== null", 10, "the incident's cameras")

    def watch(camera):
        driver.find_element(By.CSS_SELECTOR, f'#cameras tr[data-camera="{camera}"] button.watch').click()

    # The justification, once, for the incident.
    watch(cameras[0])
    until(driver, "return document.getElementById('justify-dialog').open", 5, "the justification dialog")
    driver.find_element(By.ID, "justify-text").send_keys("Benchmark of the wall")
    driver.find_element(By.ID, "justify-ok").click()
    until(driver, "return document.querySelector('.tile[data-first-picture-ms]') !== null", 20, "the first tile's picture")
    driver.execute_script("document.querySelectorAll('.tile .label button').forEach(b => b.click())")

    first = []
    for camera in cameras:
        watch(camera)
        first.append(int(until(driver, "const t = document.querySelector('.tile[data-first-picture-ms]'); return t && t.dataset.firstPictureMs", 20,
                               f"{camera}'s first picture")))
        driver.execute_script("document.querySelectorAll('.tile .label button').forEach(b => b.click())")
        time.sleep(0.3)
    result["first_picture_ms"] = first

    # The cameras live, no tile: the server's baseline.
    time.sleep(2)
    pid = int(server_pid)
    before, started = cpu_seconds([pid]), time.monotonic()
    time.sleep(min(15, seconds))
    baseline = (cpu_seconds([pid]) - before) / (time.monotonic() - started)

    for camera in cameras[:16]:
        watch(camera)
        time.sleep(0.1)
    until(driver, f"return document.querySelectorAll('.tile[data-first-picture-ms]').length >= {min(16, len(cameras))}", 30, "every tile playing")
    time.sleep(2)
    quality = "return [...document.querySelectorAll('.tile video')].map(v => { const q = v.getVideoPlaybackQuality(); return [q.totalVideoFrames, q.droppedVideoFrames]; })"
    frames_before = driver.execute_script(quality)
    browsers = browser_pids()
    before, browser_before, started = cpu_seconds([pid]), cpu_seconds(browsers), time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - started
    server = (cpu_seconds([pid]) - before) / elapsed
    browser = (cpu_seconds(browsers) - browser_before) / elapsed
    frames_after = driver.execute_script(quality)
    result["wall"] = {
        "tiles": len(frames_after), "seconds": round(elapsed, 1),
        "fps": [round((after[0] - prior[0]) / elapsed, 1) for prior, after in zip(frames_before, frames_after)],
        "dropped": [after[1] - prior[1] for prior, after in zip(frames_before, frames_after)],
        "server_cpu": round(server, 4), "server_cpu_without_tiles": round(baseline, 4), "browser_cpu": round(browser, 3),
        "ended": driver.execute_script("return document.querySelectorAll('.tile[data-ended]').length"),
    }
finally:
    driver.quit()
print(json.dumps(result))
