"""The chat page in a real headless Chromium (Debian's /usr/bin/chromium driven by /usr/bin/chromedriver through
Selenium), at a phone's width, against the gateway and the real inference service."""

from __future__ import annotations

import time

import pytest

from tests.gateway.conftest import CHROMEDRIVER, CHROMIUM
from tests.inference.fixtures import scrape_metric, wait_for_metric

SESSION_KEY = "jenkins-assistant.session"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def wait_until(condition, timeout_s: float, what: str, poll_s: float = 0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def test_ask_see_the_answer_stream_render_with_sources_then_rate_it(browser, gateway, inference_process):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    helpful_before = scrape_metric(inference_process, "jenkins_assistant_inference_feedback_total", 'rating="helpful"')
    browser.get(gateway.url + "/")
    wait_until(lambda: "documents" in browser.find_element(By.ID, "model").text, 30, "the model information")
    session = browser.execute_script(f"return localStorage.getItem('{SESSION_KEY}')")
    assert session.startswith("web-")

    question = browser.find_element(By.CSS_SELECTOR, "textarea[id=question]")
    label = browser.find_element(By.CSS_SELECTOR, "label[for=question]")
    assert label.get_attribute("textContent") == "Your Jenkins question"
    question.send_keys("How do I archive artifacts in a declarative pipeline?", Keys.ENTER)

    answer = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "article.assistant"), 10, "the answer")[0]
    # Text shows while the answer is still being generated.
    streamed = wait_until(
        lambda: answer.get_attribute("data-state") == "streaming" and answer.find_element(
            By.CLASS_NAME, "answer-text").text.strip(), 240, "streamed text")
    assert streamed
    wait_until(lambda: answer.get_attribute("data-state") in ("done", "error"), 240, "the end of the answer", 0.2)
    assert answer.get_attribute("data-state") == "done", answer.text
    assert int(answer.get_attribute("data-deltas")) > 1
    rendered = answer.find_element(By.CLASS_NAME, "answer-html")
    assert rendered.text.strip() and rendered.find_elements(By.TAG_NAME, "p")
    links = answer.find_elements(By.CSS_SELECTOR, ".sources a")
    assert links and all(link.get_attribute("href").startswith("https://") for link in links)
    # The sources were on the page before the first piece of the answer.
    assert answer.get_attribute("data-sources-after-deltas") == "0"

    thumbs_up = answer.find_element(By.CSS_SELECTOR, "button.feedback-helpful")
    assert thumbs_up.get_attribute("aria-label") == "Helpful answer"
    thumbs_up.click()
    wait_until(lambda: answer.find_element(By.CLASS_NAME, "feedback-status").text == "Thanks for the feedback.", 30,
               "the feedback to be accepted")
    assert thumbs_up.get_attribute("aria-pressed") == "true"
    assert scrape_metric(inference_process, "jenkins_assistant_inference_feedback_total",
                         'rating="helpful"') == helpful_before + 1

    # Nothing overflows sideways at a phone's width; the page raised no error (a CSP violation would).
    assert browser.execute_script("return window.innerWidth") == 390
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors

    # The session survives a reload; "New conversation" starts another one and clears the view.
    browser.refresh()
    assert browser.execute_script(f"return localStorage.getItem('{SESSION_KEY}')") == session
    browser.find_element(By.ID, "new-conversation").click()
    assert browser.execute_script(f"return localStorage.getItem('{SESSION_KEY}')") not in (session, None)
    assert not browser.find_elements(By.CSS_SELECTOR, "article.assistant")


def test_stop_aborts_the_answer(browser, gateway, inference_process):
    from selenium.webdriver.common.by import By

    browser.get(gateway.url + "/")
    browser.find_element(By.ID, "question").send_keys("Explain Jenkins pipelines in detail.")
    browser.find_element(By.ID, "send").click()
    stop = browser.find_element(By.ID, "stop")
    wait_until(stop.is_enabled, 10, "the Stop button to be enabled")
    stop.click()
    answer = browser.find_element(By.CSS_SELECTOR, "article.assistant")
    wait_until(lambda: answer.get_attribute("data-state") == "stopped", 10, "the answer to stop")
    assert answer.find_element(By.CLASS_NAME, "status").text == "Stopped."
    assert browser.find_element(By.ID, "send").is_enabled() and not stop.is_enabled()
    # The gateway cancels the generation: the only slot comes free.
    assert wait_for_metric(inference_process, "jenkins_assistant_inference_active_slots", "", 0.0) == 0.0


@pytest.fixture
def host_page():
    """A page of 'Jenkins' on another port (another origin) that embeds given URLs in narrow iframes, as a Jenkins
    plugin's side panel would."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.conftest import free_port

    frames: list[str] = []

    class Host(BaseHTTPRequestHandler):
        def do_GET(self):
            body = "".join(f'<iframe id="frame{i}" src="{url}/" width="320" height="700"></iframe>'
                           for i, url in enumerate(frames))
            page = f"<!doctype html><title>Jenkins</title><h1>Job team-a/app</h1>{body}".encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Host)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", frames
    finally:
        server.shutdown()
        server.server_close()


def test_the_page_embedded_in_a_jenkins_page_answers_in_a_narrow_frame(browser, gateway, inference_process,
                                                                      start_gateway, host_page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    host_url, frames = host_page
    # A gateway configured to be framed by that Jenkins; the session gateway keeps the default ('self').
    embeddable = start_gateway(inference_process.target, GATEWAY_FRAME_ANCESTORS=f"'self' {host_url}",
                               GATEWAY_MAX_TOKENS="16")
    frames += [embeddable.url, gateway.url]
    browser.get(host_url + "/")

    browser.switch_to.frame(browser.find_element(By.ID, "frame0"))
    question = wait_until(lambda: browser.find_elements(By.ID, "question"), 30, "the chat page in the frame")[0]
    # The narrow layout: at 320 px the model line is hidden, the form is stacked, nothing overflows sideways.
    assert browser.execute_script("return window.innerWidth") == 320
    assert browser.execute_script("return getComputedStyle(document.getElementById('model')).display") == "none"
    assert browser.execute_script("return getComputedStyle(document.querySelector('.ask')).flexDirection") == "column"
    question.send_keys("How do I archive artifacts in a declarative pipeline?", Keys.ENTER)
    answer = wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "article.assistant"), 10, "the answer")[0]
    wait_until(lambda: answer.get_attribute("data-state") in ("done", "error"), 240, "the end of the answer", 0.2)
    assert answer.get_attribute("data-state") == "done", answer.text
    assert answer.find_element(By.CLASS_NAME, "answer-html").text.strip()
    assert answer.find_elements(By.CSS_SELECTOR, ".sources a")
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    # The default policy ('self') keeps the page out of another site's frame: Chromium shows no chat page there.
    browser.switch_to.default_content()
    browser.switch_to.frame(browser.find_element(By.ID, "frame1"))
    assert not browser.find_elements(By.ID, "question")
    browser.switch_to.default_content()
    blocked = [e for e in browser.get_log("browser") if "frame-ancestors" in e["message"]]
    assert blocked and gateway.url in blocked[0]["message"]
