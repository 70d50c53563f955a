"""The web console (protocol-specs/console.md) in a real browser: Debian's Chromium,
headless, driven through ChromeDriver (selenium), against the real `zgate serve` with
a simulated DS8000 and an emulated z/OS. Screenshots of each panel go to
target/console-screenshots/ for people to look at.
"""

import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import ADMIN_PASSWORD, HMC_PASSWORD, HOST_PASSWORD, USERS, World, vol

SHOTS = Path(__file__).resolve().parents[2] / "target" / "console-screenshots"


@pytest.fixture(scope="module")
def site():
    """A world of its own (a slow background copy, so that it can be watched), with
    the DS8000 and the z/OS added through the REST API."""
    from pyCSM.clients.hardware_client import hardwareClient

    w = World(copy_tracks_per_sec=300, token_lifetime_secs=600)
    try:
        hw = hardwareClient("127.0.0.1", str(w.rest_port), "admin", ADMIN_PASSWORD)
        assert hw.add_device("ds8000", "127.0.0.1", "CSMADMIN", HMC_PASSWORD,
                             device_port=str(w.ds8k_port)).json()["msg"].endswith("I")
        assert hw.add_zos_host("127.0.0.1", HOST_PASSWORD, "HOSTUSR",
                               str(w.zos_port)).json()["msg"].endswith("I")
        yield w
    finally:
        w.close()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--ignore-certificate-errors", "--window-size=1280,800"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.implicitly_wait(2)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def url(site, path=""):
    return f"https://127.0.0.1:{site.rest_port}/console/{path}"


def shot(driver, name):
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def sign_in(driver, site, user, password):
    driver.get(url(site, "login"))
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    click(driver, By.ID, "signin")
    wait_for(lambda: f"{user} (" in driver.find_element(By.TAG_NAME, "header").text,
             f"{user} signed in", 10)


def sign_out(driver):
    click(driver, By.XPATH, "//header//button[text()='Sign out']")
    wait_for(lambda: "Sign in" in driver.title, "the sign-in page", 10)


def submit(driver, element, answer=None):
    """Clicks `element` (a submit button) and waits for the page the POST answers
    with; `answer` accepts (True) or dismisses (False) a confirmation first."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    if answer is not None:
        alert = driver.switch_to.alert
        text = alert.text
        alert.accept() if answer else alert.dismiss()
        if not answer:
            return text
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(old))
    return None


def click(driver, by, what):
    """Finds and submits `what`; found again if the page was still settling. A retry
    that no longer finds it means the click before went through while the page
    unloaded (Chrome may report that as an error): the page has moved on."""
    for attempt in range(3):
        try:
            element = driver.find_element(by, what)
        except NoSuchElementException:
            if attempt == 0:
                raise
            return None
        try:
            return submit(driver, element)
        except (StaleElementReferenceException, WebDriverException) as e:
            if attempt == 2 or "document" not in str(e) and not isinstance(e, StaleElementReferenceException):
                raise
            time.sleep(0.2)


def result(driver):
    return driver.find_element(By.ID, "result").text


def command(driver, name, confirm=True, backup=None):
    """Clicks a session command's button (a backup's row when `backup` is given) and
    answers the confirmation (every command but Refresh States asks)."""
    if backup is None:
        button = driver.find_element(By.CSS_SELECTOR, f"button[data-command='{name}']")
    else:
        button = driver.find_element(
            By.XPATH,
            f"//tr[td[1][normalize-space()='{backup}']]//button[normalize-space()='{name}']")
    asks = name != "Refresh States"
    submit(driver, button, answer=confirm if asks else None)
    return result(driver) if confirm else None


def commands(driver):
    return {b.get_attribute("data-command")
            for b in driver.find_elements(By.CSS_SELECTOR, "button[data-command]")}


def wait_for(predicate, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"no {what} within {timeout} s")


def test_a_storage_administrator_works_through_the_console(site, browser):
    d = browser
    # The server sends a browser to the console; signing in asks the admin's password.
    d.get(f"https://127.0.0.1:{site.rest_port}/")
    assert d.current_url.endswith("/console/login")
    shot(d, "01-sign-in")
    sign_in(d, site, "admin", ADMIN_PASSWORD)
    shot(d, "02-sessions-empty")

    # Create an FC session and add its copy sets.
    old = d.find_element(By.TAG_NAME, "html")
    d.find_element(By.ID, "create").click()
    WebDriverWait(d, 10).until(expected_conditions.staleness_of(old))
    d.find_element(By.ID, "name").send_keys("WEBFC")
    Select(d.find_element(By.ID, "type")).select_by_value("FC")
    d.find_element(By.ID, "description").send_keys("nightly <copy> & more")
    shot(d, "03-create-session")
    click(d, By.ID, "create-session")
    assert d.find_element(By.TAG_NAME, "h1").text == "WEBFC"
    assert "nightly <copy> & more" in d.page_source.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    d.find_element(By.ID, "copysets").send_keys(
        f"{vol(0x3000)},{vol(0x3100)}\n{vol(0x3001)},{vol(0x3101)}")
    click(d, By.ID, "add-copysets")
    assert "2 copy sets were added" in result(d)

    # Inhibit Target Writes and the Minimum Time Frame per Flash.
    d.find_element(By.ID, "inhibit_target_writes").click()
    frame = d.find_element(By.ID, "min_flash_interval_mins")
    frame.clear()
    frame.send_keys("30")
    click(d, By.ID, "save-options")
    assert "properties of session WEBFC were changed" in result(d)
    assert d.find_element(By.ID, "inhibit_target_writes").is_selected()
    assert d.find_element(By.ID, "min_flash_interval_mins").get_attribute("value") == "30"

    # Flash: confirmed, then carried out; the background copy runs.
    assert "Flash" in commands(d)
    assert "The Flash command in the WEBFC session completed" in command(d, "Flash")
    shot(d, "04-session-flashed")
    assert d.find_element(By.ID, "state").text == "Target Available"
    # A second Flash inside the window: refused, with the next allowed time.
    refused = command(d, "Flash")
    assert refused.startswith("IWNR8011E") and "the next is allowed at" in refused, refused

    # The progress bar reaches IWNR2772I on the live console.
    d.get(url(site, "sessions/WEBFC"))
    bar = d.find_element(By.ID, "progress")
    assert int(bar.get_attribute("max")) > 1, "copying: the bar counts tracks"
    live = d.find_element(By.ID, "live")
    wait_for(lambda: "IWNR2772I" in live.text, "IWNR2772I on the live console", 120)
    shot(d, "05-copy-complete-live")
    d.get(url(site, "messages?session=WEBFC"))
    wait_for(lambda: "IWNR2772I" in d.page_source, "IWNR2772I on the console page", 10)
    shot(d, "06-console")

    # An SGC session with two backups, for the operator below (granted SGC1).
    d.get(url(site, "new"))
    d.find_element(By.ID, "name").send_keys("SGC1")
    Select(d.find_element(By.ID, "type")).select_by_value("SGC")
    click(d, By.ID, "create-session")
    d.find_element(By.ID, "copysets").send_keys(f"{vol(0x3002)},{vol(0x3200)}")
    click(d, By.ID, "add-copysets")
    assert "1 copy sets were added" in result(d)
    for _ in range(2):
        assert "The Backup command in the SGC1 session completed" in command(d, "Backup")
    backups = [td.text for td in d.find_elements(By.CSS_SELECTOR, "section[aria-labelledby=backups-h] tbody td:first-child")]
    assert len(backups) == 2, backups
    shot(d, "07-sgc-backups")

    # Dual control to Safeguarded Copy mode: asked by admin, approved by approver.
    d.get(url(site, "requests"))
    Select(d.find_element(By.ID, "mode-choice")).select_by_value("sgc")
    click(d, By.ID, "request-mode")
    assert result(d).startswith("IWNR8003W"), result(d)
    shot(d, "08-mode-requested")
    sign_out(d)
    sign_in(d, site, "approver", USERS["approver"][1])
    d.get(url(site, "requests"))
    click(d, By.CSS_SELECTOR, "button[data-approve]")
    assert "Safeguarded Copy" in d.find_element(By.ID, "mode").text
    shot(d, "09-mode-approved")
    sign_out(d)

    # The operator: granted Backup, Recover Backup and Refresh States on SGC1. No
    # button for anything else; a Recover is held for a second user.
    sign_in(d, site, "operator", USERS["operator"][1])
    d.get(url(site, "sessions/SGC1"))
    offered = commands(d)
    assert "Backup" in offered and "Terminate" not in offered, offered
    assert not d.find_elements(By.XPATH, "//button[normalize-space()='Expire Backup']")
    assert not d.find_elements(By.ID, "save-options"), "no property change for an operator"
    shot(d, "10-operator-sgc1")
    held = command(d, "Recover Backup", backup=backups[0])
    assert held.startswith("IWNR8003W"), held
    d.get(url(site, "sessions/WEBFC"))
    assert commands(d) == set(), "nothing on a session the operator is not granted"
    sign_out(d)
    sign_in(d, site, "approver", USERS["approver"][1])
    d.get(url(site, "requests"))
    shot(d, "11-recover-held")
    click(d, By.CSS_SELECTOR, "button[data-approve]")
    assert "Recover Backup" in result(d), result(d)
    d.get(url(site, "hardware"))
    assert "SYSA" in d.page_source
    shot(d, "12-hardware")
    sign_out(d)


def test_the_console_refuses_forged_forms_and_sets_the_browser_headers(site):
    import requests
    base = url(site, "")
    page = requests.get(base + "login", verify=False)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, csp
    assert page.headers["X-Frame-Options"] == "DENY"
    cookie = page.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    # A sign-in without the form's own token (a forged sign-in): refused unchecked.
    r = requests.post(base + "login", data={"user": "admin", "password": ADMIN_PASSWORD},
                      verify=False, allow_redirects=False)
    assert r.status_code == 200 and "expired" in r.text
    # Signed in, a form without the CSRF token changes nothing.
    s = requests.Session()
    token = s.get(base + "login", verify=False).text.split('name="login" value="')[1].split('"')[0]
    r = s.post(base + "login", data={"login": token, "user": "admin", "password": ADMIN_PASSWORD},
               verify=False)
    assert "Sessions" in r.text
    r = s.post(base + "new", data={"name": "FORGED", "type": "FC"}, allow_redirects=False,
               verify=False)
    assert r.status_code == 403
    assert "FORGED" not in s.get(base, verify=False).text


def test_tasks_administration_and_hardware_panels(site, browser):
    d = browser
    sign_in(d, site, "admin", ADMIN_PASSWORD)
    # Scheduled tasks: create one by hand for SGC1, run it now; in Safeguarded Copy
    # mode (the first test left it so) disabling an SGC session's task is held.
    d.get(url(site, "tasks"))
    d.find_element(By.ID, "task-name").send_keys("WEBBACKUP")
    Select(d.find_element(By.ID, "task-session")).select_by_value("SGC1")
    d.find_element(By.ID, "task-cmd").send_keys("Backup")
    Select(d.find_element(By.ID, "task-schedule")).select_by_value("once")
    click(d, By.ID, "create-task")
    wait_for(lambda: "WEBBACKUP" in d.page_source and d.find_elements(By.ID, "result"),
             "the new task in the list", 10)
    click(d, By.CSS_SELECTOR, "button[data-action='run']")
    assert result(d).startswith("IWNR"), result(d)
    click(d, By.CSS_SELECTOR, "button[data-action='disable']")
    assert result(d).startswith("IWNR8003W"), result(d)
    shot(d, "13-tasks")

    # Administration: a new Operator, then the View/Modify Access wizard grants it
    # SGC1 and Backup alone.
    d.get(url(site, "admin"))
    d.find_element(By.ID, "user-name").send_keys("oper2")
    Select(d.find_element(By.ID, "user-role")).select_by_value("Operator")
    d.find_element(By.ID, "user-password").send_keys("0per2-pass-phrase")
    click(d, By.ID, "add-user")
    wait_for(lambda: "oper2" in d.page_source and d.find_elements(By.ID, "result"),
             "the new user in the list", 10)
    shot(d, "14-administration")
    d.get(url(site, "admin/access?user=oper2"))
    d.find_element(By.CSS_SELECTOR, "input[name=session][value=SGC1]").click()
    d.find_element(By.CSS_SELECTOR, "input[name=action][value=Backup]").click()
    shot(d, "15-access-wizard")
    click(d, By.ID, "save-access")
    # A role change under Safeguarded Copy mode runs at once (it is not gated there).
    assert result(d).startswith("IWNR"), result(d)
    assert d.find_element(By.CSS_SELECTOR, "input[name=session][value=SGC1]").is_selected()
    sign_out(d)
    sign_in(d, site, "oper2", "0per2-pass-phrase")
    d.get(url(site, "sessions/SGC1"))
    assert commands(d) == {"Backup"}, commands(d)
    sign_out(d)

    # Storage systems and hosts: the link status, and the forms to add them.
    sign_in(d, site, "admin", ADMIN_PASSWORD)
    d.get(url(site, "hardware"))
    assert d.find_element(By.ID, "add-storage")

    # A second connection to the emulated z/OS, with a password.
    d.find_element(By.ID, "host-system").send_keys("SYSA2")
    d.find_element(By.ID, "host-address").send_keys("127.0.0.1")
    d.find_element(By.ID, "host-port").send_keys(str(site.zos_port))
    d.find_element(By.ID, "host-user").send_keys("HOSTUSR")
    Select(d.find_element(By.ID, "host-credential")).select_by_value("password")
    d.find_element(By.ID, "host-secret").send_keys(HOST_PASSWORD)
    click(d, By.ID, "add-host")
    assert result(d).startswith("IWNR8001I"), result(d)
    assert "SYSA2" in d.find_element(By.TAG_NAME, "main").text
    shot(d, "17-hardware")
    assert HMC_PASSWORD not in d.page_source and HOST_PASSWORD not in d.page_source
    # Read the box's volume list (LSVOL): the create form then lists every volume.
    d.get(url(site, "hardware"))
    click(d, By.CSS_SELECTOR, "button[data-read='75FA120']")
    assert result(d).startswith("IWNR8002I"), result(d)

    def listed():
        d.get(url(site, "new"))
        return vol(0x3207) in d.page_source
    wait_for(listed, "the box's volumes on the create form", 30)
    shot(d, "18-create-with-volumes")
    # Phone width: the sessions list still reads.
    d.set_window_size(390, 844)
    d.get(url(site, ""))
    shot(d, "16-sessions-phone")
    d.set_window_size(1280, 800)
    sign_out(d)
