"""Domain errors raised by service cores.

Cores never import grpc: each error names its gRPC status code as a string, and the shared
server interceptor (`jenkins_assistant.common.grpc_server`) turns it into that status.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a client is told about; anything else becomes INTERNAL."""

    status_code_name = "INTERNAL"


class InvalidInput(ServiceError):
    status_code_name = "INVALID_ARGUMENT"


class NotFound(ServiceError):
    status_code_name = "NOT_FOUND"


class Unavailable(ServiceError):
    """A dependency (Redis, the memory service, a model file) cannot be reached right now."""

    status_code_name = "UNAVAILABLE"


class Overloaded(ServiceError):
    """A bounded queue is full; the client should retry later."""

    status_code_name = "RESOURCE_EXHAUSTED"


class Unauthenticated(ServiceError):
    status_code_name = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    """The caller is known but its credential lacks the scope this call needs."""

    status_code_name = "PERMISSION_DENIED"


class FailedPrecondition(ServiceError):
    status_code_name = "FAILED_PRECONDITION"


class DeadlineExceeded(ServiceError):
    """A call to another service ran past its deadline."""

    status_code_name = "DEADLINE_EXCEEDED"


def error_for_status(status_code_name: str, message: str) -> ServiceError:
    """The domain error a client raises for a failed call's status (e.g. grpc's `exc.code().name`): the inverse of
    what the server interceptor does; an unknown or INTERNAL status becomes a plain ServiceError."""
    by_name = {cls.status_code_name: cls for cls in ServiceError.__subclasses__()}
    return by_name.get(status_code_name, ServiceError)(message)
