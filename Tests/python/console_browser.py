"""The operator console in a real browser (Debian's chromium, headless, driven by Selenium):
log in with a code from `vigil console login`, open an incident from the map, see its cameras
on the page, see a change made from the command line appear (the page follows its channels), watch one live in a wall tile (a decoded frame's pixels read from a canvas), see
the owner's revocation end the tile, redraw it as a perimeter, open a march by clicking its
route, and keep a screenshot.

usage: console_browser.py VIGIL DATA AGENCY USER OWNER CAMERA HEVC_CAMERA ARTEFACTS

Prints one JSON line of what it saw; the Swift test decides. Exits 2 when a step cannot happen.
"""
import json, os, socket, subprocess, sys, time, urllib.parse

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from console_driver import chromium, log_in, login_code

vigil, data, agency, user, owner, camera, hevc_camera, artefacts = sys.argv[1:9]
seen = {"seconds_at": {}}  # when each awaited step was seen, from the start: where a slow run spent its time
began = time.monotonic()


def run(*arguments):
    done = subprocess.run([vigil, *arguments, "--data", data], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise SystemExit(f"vigil {' '.join(arguments)}: {done.stderr}")
    return done.stdout


def wait(driver, condition, seconds, what):
    try:
        result = WebDriverWait(driver, seconds, poll_frequency=0.05).until(lambda d: d.execute_script(condition))
        seen["seconds_at"][what] = round(time.monotonic() - began, 1)
        return result
    except Exception:
        seen["failed_at"] = what
        seen["status"] = driver.execute_script("return document.getElementById('status').textContent")
        driver.save_screenshot(os.path.join(artefacts, "console-failed.png"))
        print(json.dumps(seen))
        sys.exit(2)


driver = chromium(1600, 1000)
seen["seconds_at"]["browser started"] = round(time.monotonic() - began, 1)
try:
    log_in(driver, data, login_code(vigil, data, agency, user))
    wait(driver, "return !document.getElementById('console').hidden && document.body.dataset.cameras !== undefined", 20, "map ready")
    seen["logged_in_as"] = driver.find_element(By.ID, "who").text
    seen["map_cameras"] = int(driver.execute_script("return document.body.dataset.cameras"))
    seen["map_ready_ms"] = int(driver.execute_script("return document.body.dataset.mapReadyMs"))
    # The session's cookie is out of the page's reach (HttpOnly).
    seen["cookie_visible_to_script"] = "vigil_console" in driver.execute_script("return document.cookie")

    # Open an incident from the map: its centre where the map opens (the test camera's place).
    driver.find_element(By.ID, "new-incident").click()
    ActionChains(driver).move_to_element(driver.find_element(By.ID, "map")).click().perform()
    wait(driver, "return document.getElementById('new-incident-dialog').open", 5, "new incident dialog")
    driver.find_element(By.ID, "new-kind").send_keys("public-order")
    radius = driver.find_element(By.ID, "new-radius")
    radius.clear()
    radius.send_keys("30")
    driver.find_element(By.ID, "new-title").send_keys("<b>Browser</b> test")
    driver.find_element(By.ID, "new-open").click()
    wait(driver, "return document.querySelector('#cameras tr[data-camera]') !== null", 15, "incident cameras")
    seen["incident_cameras"] = driver.execute_script("return [...document.querySelectorAll('#cameras tr[data-camera]')].map(r => r.dataset.camera)")
    seen["incidents_listed"] = driver.execute_script("return [...document.querySelectorAll('#incidents li')].map(li => li.textContent)")
    # The title is shown as text, never as HTML.
    seen["title_is_text"] = driver.execute_script("return document.getElementById('incident-title').textContent.includes('<b>Browser</b>') && document.querySelector('#incident-title b') === null")
    seen["incident_on_map"] = driver.execute_script("return state.layers.incident.getLayers().length")
    # The fire service brought into the incident; an agency that does not exist is refused with its code.
    for answer in ["nosuchagency", "siamu"]:
        driver.find_element(By.ID, "participants").click()
        WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert)
        prompt = driver.switch_to.alert
        prompt.send_keys(answer)
        prompt.accept()
        if answer == "nosuchagency":
            wait(driver, "return document.getElementById('status').textContent.startsWith('agency_unknown')", 10, "an unknown agency refused")
            seen["unknown_agency"] = driver.find_element(By.ID, "status").text
    wait(driver, "return (state.snapshot.incident.details.participants || []).includes('siamu')", 10, "the fire service taking part")
    seen["participants_facts"] = driver.find_element(By.ID, "incident-facts").text

    # The page follows the agency's channels: a change made elsewhere (the command line) shows
    # without the page asking. While it follows, it asks on its own only once a minute.
    wait(driver, "return document.body.dataset.following === 'yes'", 10, "following")
    incident = driver.execute_script("return state.selected")
    seen["first_incident"] = incident
    centre = driver.execute_script("return state.snapshot.incident.center")
    run("incident", "redraw", str(incident), "--at", f"{centre['lat']},{centre['lon']}", "--radius", "45", "--agency", agency)
    wait(driver, "return state.snapshot.incident.radius_meters === 45", 10, "a change made elsewhere")
    seen["last_change"] = driver.execute_script("return document.body.dataset.lastChange")
    seen["live_indicator"] = driver.find_element(By.ID, "live").text

    # Watch it live: the justification dialog comes before the first tile.
    started = time.monotonic()
    driver.find_element(By.CSS_SELECTOR, f'#cameras tr[data-camera="{camera}"] button.watch').click()
    wait(driver, "return document.getElementById('justify-dialog').open", 5, "justification dialog")
    driver.find_element(By.ID, "justify-text").send_keys("Following the crowd from the crisis room")
    justified = time.monotonic()
    driver.find_element(By.ID, "justify-ok").click()
    wait(driver, "const v = document.querySelector('.tile video'); return v !== null && v.videoWidth > 0 && v.currentTime > 0", 20, "first picture")
    seen["first_picture_ms"] = round((time.monotonic() - justified) * 1000)
    seen["picture"] = driver.execute_script("""
        const video = document.querySelector('.tile video');
        const canvas = document.createElement('canvas');
        canvas.width = video.videoWidth; canvas.height = video.videoHeight;
        const context = canvas.getContext('2d');
        context.drawImage(video, 0, 0);
        const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0, squares = 0, count = 0;
        for (let i = 0; i < pixels.length; i += 16) { const luma = (pixels[i] + pixels[i + 1] + pixels[i + 2]) / 3; sum += luma; squares += luma * luma; count++; }
        const mean = sum / count;
        return {width: canvas.width, height: canvas.height, mean, deviation: Math.sqrt(squares / count - mean * mean)};
    """)
    time.sleep(1.5)
    seen["still_playing"] = driver.execute_script("const v = document.querySelector('.tile video'); return !v.paused && v.currentTime > 1")
    # An H.265 camera: no video in the browser, its thumbnail and a link for an external player, said plainly.
    driver.find_element(By.CSS_SELECTOR, f'#cameras tr[data-camera="{hevc_camera}"] button.watch').click()
    wait(driver, f"return document.querySelector('.tile[data-camera=\"{hevc_camera}\"] .note:not(.waiting)') !== null", 20, "the H.265 tile")
    seen["hevc_tile"] = driver.execute_script(f"""
        const tile = document.querySelector('.tile[data-camera="{hevc_camera}"]');
        return {{note: tile.querySelector('.note:not(.waiting)').textContent, video: tile.querySelector('video') !== null, picture: tile.querySelector('img') !== null}};""")
    # The relay itself refuses it to a browser's WebSocket, with 415.
    link = seen["hevc_tile"]["note"].split("External player: ")[1].strip()
    parts = urllib.parse.urlsplit(link.replace("/stream.ts", "/live"))
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as probe:
        probe.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        seen["hevc_socket_status"] = int(probe.recv(200).split(b" ")[1])

    # A thumbnail tile beside it: the newest thumbnail the agency receives, once it asked for them.
    driver.find_element(By.CSS_SELECTOR, f'#cameras tr[data-camera="{camera}"] button.thumbnail').click()
    shown = f'.tile[data-camera="{camera}"][data-thumbnail="shown"] img'
    wait(driver, f"return document.querySelector('{shown}') !== null", 20, "a thumbnail tile")
    seen["thumbnail_width"] = driver.execute_script(f"return document.querySelector('{shown}').naturalWidth")
    # A replay of the camera's recorded footage, from three seconds ago, in a tile of its own.
    driver.find_element(By.CSS_SELECTOR, f'#cameras tr[data-camera="{camera}"] button.replay').click()
    WebDriverWait(driver, 5).until(lambda d: d.switch_to.alert)
    prompt = driver.switch_to.alert
    prompt.send_keys("3")
    prompt.accept()
    wait(driver, "const v = document.querySelector('.tile[data-replay] video'); return v !== null && v.videoWidth > 0 && v.currentTime > 0", 20, "a replay playing")
    seen["replay"] = driver.execute_script(
        "const tile = document.querySelector('.tile[data-replay]'); const v = tile.querySelector('video');"
        " return {width: v.videoWidth, label: tile.querySelector('.label span').textContent, at: tile.dataset.replay}")
    # Who is watching: the live views and the replay, told apart.
    wait(driver, "return [...document.querySelectorAll('#watchers li')].some(li => li.textContent.includes('(replay)'))", 10, "who is watching, with the replay")
    seen["watchers"] = driver.execute_script("return [...document.querySelectorAll('#watchers li')].map(li => li.textContent)")
    # Told of each view that starts (who is watching is asked then, not every few seconds).
    seen["view_changes_told"] = int(driver.execute_script("return document.body.dataset.viewChanges || '0'"))
    os.makedirs(artefacts, exist_ok=True)
    driver.save_screenshot(os.path.join(artefacts, "console.png"))

    # The owner revokes its grant: the tile ends.
    grants = json.loads(run("grant", "list", "--agency", owner, "--json"))
    grant = next(g["id"] for g in grants if g["agency"] == agency)
    run("grant", "revoke", grant, "--reason", "suspended", "--agency", owner)
    wait(driver, "return document.querySelector('.tile[data-ended]') !== null", 15, "tile ended")
    seen["tile_ended"] = driver.execute_script("return document.querySelector('.tile[data-ended]').dataset.ended")
    seen["ended_tile_shows_video"] = driver.execute_script("return document.querySelector('.tile[data-ended] video').checkVisibility()")
    # The thumbnail tile of the camera loses its picture too: the console forgets a thumbnail
    # once the agency's incident channel removes the camera.
    wait(driver, f"return document.querySelector('.tile[data-camera=\"{camera}\"][data-thumbnail=\"gone\"]') !== null", 10, "thumbnail gone")
    seen["thumbnail_after_revocation"] = driver.execute_script(
        f"const tile = document.querySelector('.tile[data-camera=\"{camera}\"][data-thumbnail]'); return {{picture: tile.querySelector('img').hasAttribute('src'), note: tile.querySelector('.note:not(.waiting)').textContent}}")
    # The views the revocation stopped leave the list of who is watching, told as they stop.
    wait(driver, "return ![...document.querySelectorAll('#watchers li')].some(li => li.textContent.includes('%s'))" % camera, 10, "the view gone from who is watching")

    # An auditor's search of the log by camera, with the chain's state.
    driver.find_element(By.ID, "audit-camera").send_keys(camera)
    searched = time.monotonic()
    driver.find_element(By.CSS_SELECTOR, "#audit-form button").click()
    wait(driver, "return document.querySelectorAll('#audit-entries li').length > 0", 30, "audit search")
    seen["audit_search_ms"] = round((time.monotonic() - searched) * 1000)
    seen["chain"] = driver.find_element(By.ID, "chain").text
    seen["audit_entries"] = driver.execute_script("return [...document.querySelectorAll('#audit-entries li')].map(li => li.textContent)")
    # Redraw the incident as a perimeter drawn on the map: four corners around the centre.
    driver.find_element(By.ID, "redraw-area").click()
    map_element = driver.find_element(By.ID, "map")
    for dx, dy in [(-60, -60), (60, -60), (60, 60), (-60, 60)]:
        ActionChains(driver).move_to_element_with_offset(map_element, dx, dy).click().perform()
    driver.find_element(By.ID, "finish-area").click()
    wait(driver, "return state.snapshot && state.snapshot.area && state.snapshot.area.type === 'Polygon'", 10, "the perimeter redrawn")
    seen["redrawn_corners"] = driver.execute_script("return state.snapshot.area.coordinates[0].length")

    def open_march_from_map(button, clicks, head_along, title, window=None):
        """Draws a route on the map after `button` (New march…, Split off…), a click at each
        offset from the map's centre, and opens it from the dialog with its head `head_along`
        metres in and the window's settings `window` (field id: value) filled in; returns what
        the dialog showed."""
        driver.find_element(By.ID, button).click()
        for dx, dy in clicks:
            ActionChains(driver).move_to_element_with_offset(map_element, dx, dy).click().perform()
        driver.find_element(By.ID, "finish-area").click()
        wait(driver, "return document.getElementById('new-incident-dialog').open", 5, "the dialog after " + button)
        shown = driver.execute_script(
            "return {where: document.getElementById('new-incident-where').textContent, radius_hidden: document.getElementById('new-radius-label').hidden,"
            " kind: document.getElementById('new-kind').value}")
        head = driver.find_element(By.ID, "new-head")
        head.clear()
        head.send_keys(str(head_along))
        if window:
            driver.find_element(By.CSS_SELECTOR, "#new-window summary").click()
        for field, value in (window or {}).items():
            driver.find_element(By.ID, field).clear()
            driver.find_element(By.ID, field).send_keys(str(value))
        driver.find_element(By.ID, "new-title").clear()
        driver.find_element(By.ID, "new-title").send_keys(title)
        driver.find_element(By.ID, "new-open").click()
        return shown

    # A march opened from the map: its declared route clicked point by point, its head 40 m in.
    # (Its cameras are none: the owner revoked the agency's grant above.)
    # Its window looks 450 m ahead and holds at most 12 cameras; the rest are the server's defaults.
    seen["march_dialog"] = open_march_from_map("new-march", [(-150, 40), (-50, 0), (50, -10), (150, -40)], 40, "March from the map",
                                               window={"new-ahead": 450, "new-limit": 12})
    wait(driver, "return state.snapshot && state.snapshot.incident.march && state.snapshot.route", 15, "the march opened")
    seen["march"] = driver.execute_script(
        "const s = state.snapshot; return {points: s.route.coordinates.length, head: s.incident.march.head_meters, tail: s.incident.march.tail_meters,"
        " kind: s.incident.kind, drawn: state.layers.incident.getLayers().length, settings: s.incident.march.settings,"
        " facts: document.getElementById('incident-facts').textContent}")
    # The tail moved by a click on the route, a tenth of the way along its first stretch; the head stays.
    driver.find_element(By.ID, "move-tail").click()
    ActionChains(driver).move_to_element_with_offset(map_element, -140, 36).click().perform()
    wait(driver, "return state.snapshot.incident.march.tail_meters > 0", 10, "the tail moved")
    seen["march_after_tail"] = driver.execute_script(
        "const m = state.snapshot.incident.march; return {head: m.head_meters, tail: m.tail_meters}")
    driver.save_screenshot(os.path.join(artefacts, "console-march.png"))
    # A group splits off the march: its own route drawn on the map, a child march of its own.
    march_id = driver.execute_script("return state.selected")
    seen["split_dialog"] = open_march_from_map("split-off", [(-50, 0), (-20, 80), (10, 160)], 20, "Group towards the station")["where"]
    wait(driver, "return state.snapshot && state.snapshot.incident.id !== %d && state.snapshot.incident.march" % march_id, 15, "the split-off march opened")
    seen["split"] = driver.execute_script(
        "const i = state.snapshot.incident; return {parent: i.details.parent, kind: i.kind, facts: document.getElementById('incident-facts').textContent,"
        " settings: i.march.settings}")
    seen["march_id"] = march_id
    split_id = driver.execute_script("return state.selected")
    driver.execute_script("selectIncident(%d)" % march_id)
    wait(driver, "return state.snapshot && state.snapshot.incident.id === %d" % march_id, 10, "the march chosen again")
    seen["march_facts"] = driver.find_element(By.ID, "incident-facts").text
    seen["split_id"] = split_id

    # The first incident and the march, no longer the selected one, are markers on the map; a click on the first chooses it again.
    wait(driver, "return document.body.dataset.incidentMarkers === '2'", 10, "the other incidents on the map")
    driver.execute_script("state.layers.incidents.getLayers()[0].fire('click')")
    wait(driver, "return state.selected === %d && state.snapshot && state.snapshot.incident.id === %d" % (incident, incident), 10, "chosen from the map")
    seen["chosen_from_map"] = {"selected": driver.execute_script("return state.selected"), "markers": driver.execute_script("return document.body.dataset.incidentMarkers")}
    seen["console_errors"] = [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
finally:
    driver.quit()
print(json.dumps(seen))
