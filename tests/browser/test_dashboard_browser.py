"""The dashboard in a real browser: headless Chromium from Debian, driven by Selenium.

An officer on a phone-sized screen signs in, opens an escalated chat, replies (the reply
reaches the fake Twilio API), and sees the citizen's next message appear without
reloading, shown as text even when it looks like a script. Skipped, with the reason,
where Chromium is not installed (`make browser-deps` installs it as root).
"""
from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from app import create_app
from tools.fake_twilio import FakeTwilioApi
from tests.support.staff import PASSWORD, make_staff
from tests.support.twilio import SERVICE_NUMBER, TEST_ACCOUNT_SID, TEST_AUTH_TOKEN, TwilioSigner, whatsapp_form

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=390,844",
)
PHONE = "+6281234567890"
WAIT_SECONDS = 15

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which("chromium")):
    pytest.skip(
        "Chromium is not installed: run `make browser-deps` as root "
        "(apt-get install -y chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def app(app_config: dict[str, Any], twilio_api: FakeTwilioApi) -> Flask:
    return create_app({
        **app_config,
        "twilio_account_sid": TEST_ACCOUNT_SID,
        "twilio_whatsapp_from": SERVICE_NUMBER,
        "twilio_sms_from": SERVICE_NUMBER,
        "twilio_api_base": twilio_api.url,  # type: ignore[attr-defined]
    })


@pytest.fixture
def base_url(app: Flask) -> Iterator[str]:
    """The app served over real HTTP in a thread, as the browser needs."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # Never let Selenium Manager download a driver or a browser: Debian's are used.
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def citizen_says(app: Flask, text: str) -> None:
    form = whatsapp_form(PHONE, text)
    response = TwilioSigner(TEST_AUTH_TOKEN).post(app.test_client(), "/webhooks/twilio/messages", form)
    assert response.status_code == 200


def test_officer_answers_an_escalated_chat_and_sees_new_messages_arrive(app: Flask, base_url: str, browser: Any, twilio_api: FakeTwilioApi) -> None:
    make_staff(app, "rina", full_name="Rina Wulandari")
    citizen_says(app, "PETUGAS")
    wait = WebDriverWait(browser, WAIT_SECONDS)

    browser.get(f"{base_url}/staff/login")
    browser.find_element(By.NAME, "username").send_keys("rina")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    chat_link = wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, "#inbox tbody a")))
    assert chat_link.text == "+62812****7890"
    chat_link.click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "transcript"), "PETUGAS"))

    browser.find_element(By.ID, "body").send_keys("Selamat siang Bu, saya Rina dari dinas sosial.")
    browser.find_element(By.CSS_SELECTOR, "form.reply button[type=submit]").click()
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, "main"), "Balasan terkirim lewat WhatsApp"))
    human = browser.find_elements(By.CSS_SELECTOR, "#transcript li.human .body")
    assert [el.text for el in human] == ["Selamat siang Bu, saya Rina dari dinas sosial."]
    assert twilio_api.sent[-1]["to"] == f"whatsapp:{PHONE}"

    browser.execute_script("window.notReloaded = true;")
    citizen_says(app, "Terima kasih Bu <script>alert(1)</script>")
    wait.until(EC.text_to_be_present_in_element((By.ID, "transcript"), "Terima kasih Bu <script>alert(1)</script>"))
    assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - raises when no script ran
    assert browser.find_elements(By.CSS_SELECTOR, "#transcript script") == []
