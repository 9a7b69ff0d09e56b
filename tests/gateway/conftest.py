"""Fixtures of the gateway tests: the gateway as a process on a loopback port, in front of the real inference service
(`inference_process`, SmolLM2 on the sample index with the memory service on a real redis, from tests/inference/fixtures.py:
one instance shared with the inference tests)."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from jenkins_assistant.gateway.config import GatewaySettings
from tests.conftest import ServiceProcess, free_port
from tests.inference.fixtures import BUILD_LOG_LIMIT_BYTES, TEST_TOKEN


class GatewayProcess(ServiceProcess):
    """`python -m jenkins_assistant.gateway.server` on a free port; ready once GET /healthz answers."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def is_ready(self, timeout_s: float) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=timeout_s) as reply:
                return json.load(reply)["status"] == "ok"
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)  # refused at once while uvicorn starts: do not spin
            return False


def gateway_process(inference_target: str, **env: str) -> GatewayProcess:
    """A gateway process (not started yet) in front of inference_target; env adds GATEWAY_* settings."""
    port = free_port()
    return GatewayProcess(
        args=[sys.executable, "-m", "jenkins_assistant.gateway.server"],
        env={"GATEWAY_HOST": "127.0.0.1", "GATEWAY_PORT": str(port), "GATEWAY_INFERENCE_TARGET": inference_target,
             "GATEWAY_INFERENCE_TOKEN": TEST_TOKEN, "GATEWAY_REQUEST_TIMEOUT_S": "240",
             # The inference fixture's console-log limit, as a deployment sets both alike.
             "GATEWAY_MAX_LOG_BYTES": str(BUILD_LOG_LIMIT_BYTES), **env},
        port=port,
    )


@pytest.fixture
def gateway_settings(inference_process) -> GatewaySettings:
    return GatewaySettings(inference_target=inference_process.target, inference_token=TEST_TOKEN,
                           request_timeout_s=240)


@pytest.fixture(scope="session")
def gateway(inference_process) -> Iterator[GatewayProcess]:
    """The gateway in front of the real inference service, as deployed (answers use the inference default of 48
    tokens set by its fixture)."""
    service = gateway_process(inference_process.target)
    service.start()
    yield service
    service.stop()


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., GatewayProcess]]:
    """Starts extra gateways with other settings (a dead inference target, longer answers); stops them after."""
    with ExitStack() as running:

        def start(inference_target: str, **env: str) -> GatewayProcess:
            service = gateway_process(inference_target, **env)
            service.start()
            running.callback(service.stop)
            return service

        yield start


CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser():
    """A real headless Chromium at a phone's width (the chat and explain pages' browser tests)."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(argument)
    # A phone's viewport (a plain window cannot be narrower than 500 pixels in headless Chromium).
    options.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844,
                                                                          "pixelRatio": 3}})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
