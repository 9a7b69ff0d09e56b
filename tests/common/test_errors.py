"""A client turns a failed call's status back into the domain error the server raised."""

from __future__ import annotations

import grpc
import pytest

from jenkins_assistant.common import errors


@pytest.mark.parametrize("error_class", errors.ServiceError.__subclasses__())
def test_every_domain_error_comes_back_from_its_status(error_class):
    assert error_class.status_code_name in grpc.StatusCode.__members__  # a real gRPC status
    restored = errors.error_for_status(error_class.status_code_name, "why")
    assert type(restored) is error_class and str(restored) == "why"


def test_internal_and_unknown_statuses_are_plain_service_errors():
    for name in ("INTERNAL", "CANCELLED", "NOT_A_STATUS"):
        assert type(errors.error_for_status(name, "x")) is errors.ServiceError
