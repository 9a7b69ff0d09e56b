"""Answer quality: the golden question set, per-answer scores, a runner over the real gRPC API and reports."""
