"""Gateway entry point: `jenkins-assistant-gateway` or `python -m jenkins_assistant.gateway.server`.

    GATEWAY_INFERENCE_TARGET=127.0.0.1:50052 GATEWAY_INFERENCE_TOKEN=... jenkins-assistant-gateway
    # then open http://127.0.0.1:8080/
"""

from __future__ import annotations

import logging

import uvicorn

from jenkins_assistant.common.logging_setup import configure_logging
from jenkins_assistant.gateway.app import create_app
from jenkins_assistant.gateway.config import GatewaySettings

log = logging.getLogger(__name__)


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level)
    log.info("gateway on http://%s:%d/ -> inference %s", settings.host, settings.port, settings.inference_target)
    # log_config=None: uvicorn's loggers go through the shared logging format set above.
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None,
                timeout_graceful_shutdown=settings.grace_s)


if __name__ == "__main__":
    main()
