"""An owner's administrator in the operator console (headless chromium, Selenium): shares the
owner's cameras for an incident with an agency taking part, sees the recipient allowed, takes
the grant back from the page and sees the recipient refused; then an operator of the same owner
is offered neither.

usage: console_sharing.py VIGIL DATA OWNER ADMIN OPERATOR RECIPIENT RECIPIENT_USER CAMERA INCIDENT ARTEFACTS

Prints one JSON line of what it saw; the Swift test decides. Exits 2 when a step cannot happen.
"""
import json, os, subprocess, sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from console_driver import chromium, log_in, login_code

vigil, data, owner, admin, operator, recipient, recipient_user, camera, incident, artefacts = sys.argv[1:11]
incident = int(incident)
seen = {}


def check():
    """The recipient's decision for the camera under the incident, from the command line."""
    done = subprocess.run([vigil, "grant", "check", "--camera", camera, "--incident", str(incident), "--agency", recipient,
                           "--user", recipient_user, "--data", data], capture_output=True, text=True, timeout=60)
    return done.stdout.strip() or done.stderr.strip()


def wait(driver, condition, seconds, what):
    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.05).until(lambda d: d.execute_script(condition))
    except Exception:
        seen["failed_at"] = what
        seen["status"] = driver.execute_script("return document.getElementById('status').textContent")
        os.makedirs(artefacts, exist_ok=True)
        driver.save_screenshot(os.path.join(artefacts, "console-sharing-failed.png"))
        print(json.dumps(seen))
        sys.exit(2)


def choose_incident(driver):
    driver.execute_script("selectIncident(%d)" % incident)
    wait(driver, "return state.snapshot && state.snapshot.incident.id === %d" % incident, 10, "the incident chosen")


def grant_items(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#grants li')].map(li => ({id: li.dataset.grant, text: li.firstChild.textContent,"
        " ended: li.classList.contains('ended'), revocable: li.querySelector('button') !== null}))")


driver = chromium(1400, 900)
try:
    seen["before"] = check()
    log_in(driver, data, login_code(vigil, data, owner, admin))
    wait(driver, "return !document.getElementById('console').hidden && state.incidents.length > 0", 20, "logged in")
    choose_incident(driver)
    seen["share_offered"] = driver.execute_script("return !document.getElementById('share').hidden")
    driver.find_element(By.ID, "share").click()
    wait(driver, "return document.getElementById('share-dialog').open", 5, "the share dialog")
    seen["dialog"] = driver.execute_script(
        "return {what: document.getElementById('share-what').textContent, agency: document.getElementById('share-agency').value,"
        " offered: [...document.querySelectorAll('#share-agencies option')].map(o => o.value)}")
    agency_field = driver.find_element(By.ID, "share-agency")
    agency_field.clear()
    agency_field.send_keys(recipient)
    driver.find_element(By.ID, "share-purpose").send_keys("Scene of the fire, for the fire service")
    driver.find_element(By.ID, "share-legal-basis").send_keys("Belgian camera law, art. 9")
    driver.find_element(By.ID, "share-ok").click()
    wait(driver, "return [...document.querySelectorAll('#grants li')].some(li => li.textContent.includes('under incident #%d only'))" % incident,
         10, "the new grant listed")
    shared = next(item for item in grant_items(driver) if "under incident #%d only" % incident in item["text"])
    seen["shared"] = shared
    seen["after_sharing"] = check()

    # Taken back from the page: the reason asked, the grant shown revoked, the recipient refused.
    driver.execute_script("document.querySelector('#grants li[data-grant=\"%s\"] button').click()" % shared["id"])
    asked = driver.switch_to.alert
    asked.send_keys("The fire is out")
    asked.accept()
    wait(driver, "const li = document.querySelector('#grants li[data-grant=\"%s\"]'); return li !== null && li.classList.contains('ended')" % shared["id"],
         10, "the grant shown revoked")
    seen["revoked"] = next(item for item in grant_items(driver) if item["id"] == shared["id"])
    seen["after_revoking"] = check()

    # An operator of the same owner works under grants: the page offers no sharing and no revoking.
    driver.find_element(By.ID, "logout").click()
    log_in(driver, data, login_code(vigil, data, owner, operator))
    wait(driver, "return !document.getElementById('console').hidden && state.incidents.length > 0 && document.querySelectorAll('#grants li').length > 0",
         20, "the operator logged in")
    choose_incident(driver)
    seen["operator_share_offered"] = driver.execute_script("return !document.getElementById('share').hidden")
    seen["operator_revocable"] = [item["id"] for item in grant_items(driver) if item["revocable"]]
    # The page's own errors (not the network's answers: a 401 before each login is expected).
    seen["console_errors"] = [entry["message"] for entry in driver.get_log("browser")
                              if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]]
finally:
    driver.quit()
print(json.dumps(seen))
