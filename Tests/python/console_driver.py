"""Debian's chromium, headless, driven by Selenium, logged in to a Vigil console: what the
console's browser test and `vigil bench console` both start from."""
import json, os, subprocess

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait


def chromium(width, height):
    """A headless chromium that plays video without a gesture (as a wall's tiles must)."""
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}",
                     "--autoplay-policy=no-user-gesture-required", "--disable-dev-shm-usage"]:
        options.add_argument(argument)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def login_code(vigil, data, agency, user):
    """A one-time code from `vigil console login`, as the user would ask for it."""
    return subprocess.run([vigil, "console", "login", "--user", user, "--agency", agency, "--data", data],
                          capture_output=True, text=True, check=True).stdout.strip()


def log_in(driver, data, code, timeout=10):
    """Opens the console of the server in `data` and logs in with `code` (the map loads after)."""
    driver.get(json.load(open(os.path.join(data, "server.json")))["console"])
    WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: d.execute_script("return !document.getElementById('login').hidden"))
    driver.find_element(By.ID, "login-code").send_keys(code)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()
