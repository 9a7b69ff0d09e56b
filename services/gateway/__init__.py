"""Browser chat UI: an HTTP gateway (FastAPI, Server-Sent Events) over the inference service's gRPC API."""
