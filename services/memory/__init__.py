"""Memory service: per-session conversation history on Redis (last k exchanges, TTL, owner isolation)."""
