"""One logging format for every service (configured before model libraries are imported)."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str | int | None = None) -> None:
    level = level or os.environ.get("LOG_LEVEL", "INFO")
    logging.basicConfig(level=level if isinstance(level, int) else str(level).upper(), format=FORMAT, force=True)
    # gRPC's C core and urllib3 are chatty at DEBUG; keep our own logs readable.
    for noisy in ("urllib3", "filelock", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.getLogger().level, logging.INFO))
    # httpx (and the copy the openai client ships as httpx2) logs every request at INFO: the generation engine's
    # readiness probe every few seconds would fill the log. Its request lines stay visible at DEBUG.
    debugging = logging.getLogger().level <= logging.DEBUG
    for per_request in ("httpx", "httpx2"):
        logging.getLogger(per_request).setLevel(logging.DEBUG if debugging else logging.WARNING)
