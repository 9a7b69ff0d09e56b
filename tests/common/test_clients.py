"""Client credentials files and whom each client may speak for."""

from __future__ import annotations

import json

import pytest

from jenkins_assistant.common.clients import (
    SHARED_CLIENT,
    Client,
    configured_clients,
    owner_for,
    parse_clients,
    token_sha256,
)


def test_only_a_client_with_assert_owner_names_the_owner():
    plugin = Client("jenkins-plugin", "0" * 64, frozenset({"assert-owner"}))
    cli = Client("cli", "1" * 64)
    assert owner_for("alice", plugin) == "alice"
    assert owner_for("", plugin) == ""  # the core refuses it with a session id
    assert owner_for("alice", cli) == "cli:alice"
    assert owner_for("", cli) == "cli"
    assert owner_for("alice", None) == "alice"  # no auth configured (development)


def test_the_single_token_is_one_trusted_client_beside_the_file(tmp_path):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({"cli": {"token_sha256": token_sha256("t1"), "scopes": []}}))
    clients = {c.name: c for c in configured_clients("t0", str(path))}
    assert clients["cli"].token_sha256 == token_sha256("t1") and not clients["cli"].may_assert_owner
    assert clients[SHARED_CLIENT].token_sha256 == token_sha256("t0") and clients[SHARED_CLIENT].may_assert_owner
    assert configured_clients(None, "") == []


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (["cli"], "JSON object"),
        ({"bad name!": {"token_sha256": "0" * 64}}, "client name"),
        ({"cli": {"token_sha256": "not-hex"}}, "64 hex digits"),
        ({"cli": {"token": "plain", "token_sha256": "0" * 64}}, "token_sha256 and scopes only"),
        ({"cli": {"token_sha256": "0" * 64, "scopes": ["admin"]}}, "scopes"),
        ({"a": {"token_sha256": "0" * 64}, "b": {"token_sha256": "0" * 64}}, "share a token"),
    ],
)
def test_a_mistake_in_the_clients_file_is_refused_by_name(data, problem):
    with pytest.raises((ValueError, TypeError), match=problem):
        parse_clients(data)


def test_the_shared_name_is_reserved_for_the_single_token(tmp_path):
    path = tmp_path / "clients.json"
    path.write_text(json.dumps({SHARED_CLIENT: {"token_sha256": "0" * 64, "scopes": []}}))
    with pytest.raises(ValueError, match="single auth token"):
        configured_clients("t0", str(path))
