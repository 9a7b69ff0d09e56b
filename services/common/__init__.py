"""Shared by every service: settings, logging, domain errors, auth, metrics and the gRPC server bootstrap."""
