"""The web dashboard in a real browser: Debian's Chromium, headless, driven by Selenium
through chromedriver, against `freshet up` with authentication on.

* the page asks for a token and says so when one is refused;
* signed in, the overview shows every model the token may read with its champion, the
  loop's last retrain and freshness, and updates without a reload as traffic arrives;
* a rollout in progress shows its phase, and its Promote button makes the candidate
  champion (an audited API call under the signed-in token);
* a token scoped to one model sees that model only; signing out forgets the token.

Runs the real binary (FRESHET_BIN); `chromium` and `chromium-driver` come from Debian's
packages (.ci/run installs them).
"""

from __future__ import annotations

import re
import shutil

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from conftest import running_auth_server

STREAMS = """\
streams:
  pay:
    source: { type: http }
    schema:
      fields:
        - { name: amount, type: float }
        - { name: is_fraud, type: bool }
    commit: { max_latency_ms: 20 }
models:
  fraud:
    stream: pay
    label: is_fraud
    learner: { type: logistic_regression }
    triggers: { initial_rows: 300, concept_drift: none }
  churn:
    stream: pay
    label: is_fraud
    learner: { type: logistic_regression }
    triggers: { initial_rows: 300, concept_drift: none }
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_auth_server(tmp_path_factory.mktemp("dashboard"), STREAMS) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or pytest.fail("chromium is not installed (apt install chromium)")
    driver_bin = shutil.which("chromedriver") or pytest.fail("chromedriver is not installed (apt install chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def text_of(driver, css: str) -> str:
    """The element's text; the overview redraws every 2 s, so a lookup can go stale."""
    for _ in range(20):
        try:
            return driver.find_element(By.CSS_SELECTOR, css).text
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{css} kept going stale")


def click(driver, css: str) -> None:
    for _ in range(20):
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{css} kept going stale")


def sign_in(driver, wait, token: str) -> None:
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=signin]")))
    field = driver.find_element(By.CSS_SELECTOR, "[data-testid=token]")
    field.clear()
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "[data-testid=signin-button]").click()


def test_overview_in_a_real_browser(server, browser):
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    rows = [{"amount": float(i % 50), "is_fraud": i % 50 > 30} for i in range(600)]
    r = requests.post(f"{server.url}/v1/streams/pay/events", json=rows, headers=headers, timeout=30)
    assert r.status_code == 200, r.text

    wait = WebDriverWait(browser, 60, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(server.url + "/")
    # Nothing is shown without a token; a wrong one is refused with the reason.
    sign_in(browser, wait, "fst_not-a-real-token")
    wait.until(lambda d: "refused" in text_of(d, "[data-testid=signin-error]"))
    assert not browser.find_element(By.CSS_SELECTOR, "[data-testid=overview]").is_displayed()

    sign_in(browser, wait, server.admin_token)
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=overview]")))
    # Both models, each with the champion the loop trained and the retrain that made it.
    for model in ("fraud", "churn"):
        card = f"[data-testid=model-{model}]"
        wait.until(lambda d: text_of(d, f"{card} [data-testid=champion]") == "v1")
        assert "first champion (v1)" in text_of(browser, f"{card} [data-testid=retrain]")
        assert text_of(browser, f"{card} [data-testid=freshness]").startswith("trained ")
    assert "admin" in text_of(browser, "[data-testid=who]")

    # Traffic shows up without reloading the page.
    for _ in range(25):
        r = requests.post(f"{server.url}/serving-endpoints/fraud/invocations", headers=headers,
                          json={"dataframe_records": [{"amount": 45.0}]}, timeout=10)
        assert r.status_code == 200, r.text

    def traffic(d) -> int:
        m = re.match(r"(\d+) requests", text_of(d, "[data-testid=model-fraud] [data-testid=traffic]"))
        return int(m.group(1)) if m else 0
    wait.until(lambda d: traffic(d) >= 25)

    # A rollout of a second version: the card shows its phase and the buttons to steer
    # it; pressing Promote makes it champion, through the same API a client would call.
    mv = f"{server.url}/api/2.0/mlflow/model-versions"
    v1 = requests.get(f"{mv}/get", params={"name": "fraud", "version": "1"}, headers=headers, timeout=10).json()
    r = requests.post(f"{mv}/create", headers=headers, timeout=10,
                      json={"name": "fraud", "source": v1["model_version"]["source"]})
    assert r.status_code == 200, r.text
    r = requests.post(f"{server.url}/v1/models/fraud/rollout/start", json={"version": 2},
                      headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    card = "[data-testid=model-fraud]"
    wait.until(lambda d: "(v2)" in text_of(d, f"{card} [data-testid=rollout]"))
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"{card} [data-testid=rollout-promote]"))
    click(browser, f"{card} [data-testid=rollout-promote]")
    wait.until(lambda d: text_of(d, f"{card} [data-testid=champion]") == "v2")
    assert text_of(browser, f"{card} [data-testid=action-result]").startswith("promote: "), \
        text_of(browser, f"{card} [data-testid=action-result]")
    audit = requests.get(f"{server.url}/v1/audit", headers=headers, timeout=10).text
    assert '"/v1/models/fraud/rollout/promote"' in audit or "rollout/promote" in audit

    # A token scoped to one model sees that one only.
    scoped = server.create_token("churn-viewer", "viewer", scopes=("model:churn",))
    click(browser, "[data-testid=signout]")
    sign_in(browser, wait, scoped)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=model-churn]"))
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid=model-fraud]")
    assert "churn-viewer" in text_of(browser, "[data-testid=who]")

    # Signing out forgets the token: a reload asks for one again.
    click(browser, "[data-testid=signout]")
    browser.refresh()
    wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-testid=signin]")))
    assert browser.execute_script("return sessionStorage.getItem('freshet-token')") is None


def test_the_page_is_locked_down(server):
    r = requests.get(server.url + "/", timeout=10)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, csp
    assert r.headers["x-frame-options"] == "DENY"
    # The page holds no data; the API behind it wants a token.
    assert requests.get(server.url + "/v1/models", timeout=10).status_code == 401
