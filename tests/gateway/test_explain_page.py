"""The explain page in a real headless Chromium (as tests/gateway/test_browser.py drives it), at a phone's width,
against the gateway and the real inference service: a pasted log and an uploaded one, the facts shown above the
explanation before its first token, the explanation streamed then rendered."""

from __future__ import annotations

import pytest

from tests.build_log.conftest import MANIFEST, read_log
from tests.gateway.conftest import CHROMEDRIVER, CHROMIUM
from tests.gateway.test_browser import wait_until
from tests.inference.fixtures import BUILD_LOG_LIMIT_BYTES

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def wait_for_the_end(browser, timeout_s: float = 240):
    from selenium.webdriver.common.by import By

    article = browser.find_element(By.ID, "explanation")
    wait_until(lambda: article.get_attribute("data-state") in ("done", "error", "stopped"), timeout_s,
               "the end of the explanation", 0.2)
    assert article.get_attribute("data-state") == "done", article.text
    return article


def test_a_pasted_log_shows_its_facts_first_then_the_streamed_explanation(browser, gateway):
    from selenium.webdriver.common.by import By

    name = "git_auth_failed.log"
    browser.get(gateway.url + "/explain")
    wait_until(lambda: "MB" in browser.find_element(By.ID, "limit").text, 30, "the log limit")
    log_box = browser.find_element(By.ID, "log")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=log]").text == "Console log of the failed build"
    # As a paste does it: the whole text at once, then an input event.
    browser.execute_script("arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('input'));",
                           log_box, read_log(name).decode())
    browser.find_element(By.ID, "explain").click()

    facts = browser.find_element(By.ID, "facts")
    wait_until(lambda: facts.get_attribute("data-state") == "shown", 60, "the facts")
    expected = MANIFEST[name]
    failure = facts.find_element(By.CSS_SELECTOR, "dd[data-fact=failure]").text
    assert f"({expected['signature_id']})" in failure
    assert facts.find_element(By.CSS_SELECTOR, "dd[data-fact=stage]").text.endswith(expected["stage"])
    # The facts came before any of the explanation, and sit above it.
    assert facts.get_attribute("data-after-deltas") == "0"
    article = browser.find_element(By.ID, "explanation")
    assert facts.location["y"] < article.location["y"]

    article = wait_for_the_end(browser)
    rendered = article.find_element(By.CLASS_NAME, "answer-html")
    assert rendered.text.strip()
    links = article.find_elements(By.CSS_SELECTOR, ".sources a")
    assert links and all(link.get_attribute("href").startswith("https://") for link in links)
    # No planted secret reached the page.
    page_text = browser.find_element(By.TAG_NAME, "body").text
    for secret in expected["secrets"]:
        assert secret not in page_text

    # Nothing overflows sideways at a phone's width; no script error or CSP violation.
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_an_uploaded_log_over_the_limit_is_explained_from_its_tail(browser, gateway, tmp_path):
    from selenium.webdriver.common.by import By

    chatter = b"[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/acme/lib/1.0/lib.jar\n"
    path = tmp_path / "build-1234.log"
    path.write_bytes(chatter * (6 * 1024 * 1024 // len(chatter)) + read_log("disk_full.log"))
    browser.get(gateway.url + "/explain")
    wait_until(lambda: "MB" in browser.find_element(By.ID, "limit").text, 30, "the log limit")
    browser.find_element(By.ID, "log-file").send_keys(str(path))
    note = browser.find_element(By.ID, "input-note")
    limit_mb = f"{BUILD_LOG_LIMIT_BYTES / (1024 * 1024):.1f} MB"
    wait_until(lambda: f"its last {limit_mb}" in note.text, 10, "the note that the tail is sent")
    browser.find_element(By.ID, "explain").click()
    facts = browser.find_element(By.ID, "facts")
    wait_until(lambda: facts.get_attribute("data-state") == "shown", 60, "the facts")
    assert f"({MANIFEST['disk_full.log']['signature_id']})" in facts.text
    wait_for_the_end(browser)
