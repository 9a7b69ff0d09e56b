"""mask_secrets(): each form of secret, planted in a realistic console line, is gone; ordinary lines are untouched."""

from __future__ import annotations

import pytest

from jenkins_assistant.build_log import MASK, mask_secrets
from tests.build_log.conftest import MANIFEST, read_log

# (line as a build prints it, the planted value, a part of the line that must stay readable)
PLANTED = [
    ("+ git clone https://ci-bot:Tr0ub4dor3x@github.com/acme/app.git", "Tr0ub4dor3x", "https://ci-bot:"),
    (
        "Fetching upstream changes from https://oauth2:s3cr3t-Pa55@gitlab.acme.internal/app.git",
        "s3cr3t-Pa55",
        "@gitlab.acme.internal/app.git",
    ),
    ("+ curl -fsS -u deployer:N3xus!Pw https://nexus.acme.internal/service/rest/v1/status", "N3xus!Pw", "deployer:"),
    (
        "+ curl -H 'Authorization: Bearer 7f3a9c2e1b4d6f8a0c2e4b6d8f0a1c3e' https://api.acme.internal",
        "7f3a9c2e1b4d6f8a0c2e4b6d8f0a1c3e",
        "Authorization: Bearer ",
    ),
    (
        "> GET /api/json HTTP/1.1\n> Authorization: Basic amVua2luczpqZW5raW5zLXB3ZA==",
        "amVua2luczpqZW5raW5zLXB3ZA==",
        "Authorization: Basic ",
    ),
    ("[http] Bearer abC9_dEf8.gHi7-jKl6 was refused", "abC9_dEf8.gHi7-jKl6", "was refused"),
    ("+ export AWS_ACCESS_KEY_ID=AKIAZ7QK3M5N2P4R6T8V", "AKIAZ7QK3M5N2P4R6T8V", "AWS_ACCESS_KEY_ID="),
    (
        "+ export AWS_SECRET_ACCESS_KEY=u8Fq2Lr5Tw9Yz3Cb6Nm1Kp4Hs7Vx0Ja2Ge5Di8Bo",
        "u8Fq2Lr5Tw9Yz3Cb6Nm1Kp4Hs7Vx0Ja2Ge5Di8Bo",
        "AWS_SECRET_ACCESS_KEY=",
    ),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
        "aws_secret_access_key",
    ),
    (
        "Using token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 for the release",
        "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
        "for the release",
    ),
    ("remote: gho_16C7e42F292c6912E7710c838347Ae178B4a expired", "gho_16C7e42F292c6912E7710c838347Ae178B4a", "expired"),
    (
        "GH_TOKEN github_pat_11AAAAAAA0bbbbbbbbbbbb_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
        "github_pat_11AAAAAAA0bbbbbbbbbbbb_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC",
        "GH_TOKEN",
    ),
    (
        "git push https://gitlab-ci-token:glpat-Xy7zW3vU1tS9rQ5pO2nM@gitlab.example.com/g/p.git",
        "glpat-Xy7zW3vU1tS9rQ5pO2nM",
        "gitlab.example.com/g/p.git",
    ),
    ("echo glpat-Ab3dEf6hIj9kLm2nOp5q done", "glpat-Ab3dEf6hIj9kLm2nOp5q", "done"),
    ("slackSend token xoxb-2048-4096-Zk8PqR3sT6uV9wX2 channel=#ci", "xoxb-2048-4096-Zk8PqR3sT6uV9wX2", "channel=#ci"),
    (
        "POST https://hooks.slack.com/services/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 200",
        "kX7pQ2rT9vW4yZ1aB3cD5eF7",
        "hooks.slack.com/services/",
    ),
    (
        "id_token: eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqZW5raW5zIiwic3ViIjoiY2kifQ.c2lnbmF0dXJlLWJ5dGVz",
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqZW5raW5zIiwic3ViIjoiY2kifQ.c2lnbmF0dXJlLWJ5dGVz",
        "id_token",
    ),
    ("DB_PASSWORD=hunter2-prod", "hunter2-prod", "DB_PASSWORD="),
    ("  password: 'c0rrect horse'", "c0rrect horse", "password:"),
    ('{"client_secret": "9f8e7d6c5b4a", "client_id": "jenkins"}', "9f8e7d6c5b4a", '"client_id": "jenkins"'),
    ("+ ./deploy.sh --api-key=ak_live_51HxQz --region eu-west-1", "ak_live_51HxQz", "--region eu-west-1"),
    ("+ mysql --password Sup3rS3cret -h db.acme.internal", "Sup3rS3cret", "-h db.acme.internal"),
    (
        "+ docker login -u ci -p dckr_pat_Qm3xVb7NcT2kLp9RsW4yZ8hJ registry.acme.internal",
        "dckr_pat_Qm3xVb7NcT2kLp9RsW4yZ8hJ",
        "registry.acme.internal",
    ),
    ("+ docker login -u ci -p plainPassw0rd registry.acme.internal", "plainPassw0rd", "registry.acme.internal"),
    (
        "//registry.npmjs.org/:_authToken=npm_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "npm_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "registry.npmjs.org",
    ),
    (
        "-Dsonar.token=squ_4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6 sonar:sonar",
        "squ_4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6",
        "sonar:sonar",
    ),
]

PRIVATE_KEY = """+ cat deploy_key
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDkYQ8s1vGm7bKXz3Hq0PpL2mN5tR8wV1yA4dC7fE0hJgAAAJi9T2kQvU9p
-----END OPENSSH PRIVATE KEY-----
+ ssh -i deploy_key deploy@web-1 ./restart.sh"""

# Lines a build prints every day that hold nothing secret (and words a careless pattern would eat).
ORDINARY = [
    "Checking out Revision 4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39 (refs/remotes/origin/main)",
    "[INFO] Downloaded from central: https://repo.maven.apache.org/maven2/org/x/y/1.0/y-1.0.jar (12 kB at 300 kB/s)",
    "fatal: Authentication failed for 'https://github.com/acme/payments.git/'",
    "ERROR: Could not find credentials entry with ID 'nexus-token'",
    "org.jenkinsci.plugins.credentialsbinding.impl.CredentialNotFoundException: Could not find credentials entry",
    "withCredentials([string(credentialsId: 'slack-token', variable: 'SLACK_TOKEN')])",
    "Masking supported pattern matches of $GITHUB_TOKEN or $NEXUS_PASSWORD",
    "+ mvn -B -Dnexus.password=**** deploy",
    "Basic Authentication failed for user deployer",
    "Using Bearer authentication against the registry",
    "Tokenizer: loaded 32000 tokens",
    "sha256:9b2a6f0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a: Pull complete",
]


@pytest.mark.parametrize(("line", "secret", "kept"), PLANTED, ids=[p[1][:12] for p in PLANTED])
def test_planted_value_is_gone_and_its_context_kept(line, secret, kept):
    masked, count = mask_secrets(f"[2024-05-01T10:00:00.000Z] {line}\n")
    assert secret not in masked
    assert count >= 1 and MASK in masked
    assert kept in masked


def test_private_key_block_is_masked_whole():
    masked, count = mask_secrets(PRIVATE_KEY)
    assert count == 1
    assert "b3BlbnNzaC1" not in masked and "QyNTUxOQAA" not in masked
    assert "-----BEGIN OPENSSH PRIVATE KEY-----" in masked and "ssh -i deploy_key" in masked


def test_private_key_without_its_end_line_is_masked_to_the_end_of_its_body():
    cut = "\n".join(PRIVATE_KEY.splitlines()[:4]) + "\n+ next command\n"
    masked, _ = mask_secrets(cut)
    assert "b3BlbnNzaC1" not in masked and "QyNTUxOQAA" not in masked and "+ next command" in masked


def test_private_key_in_json_on_one_line():
    line = '{"key": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEpAIBAAKCAQEA7xQ9\\n-----END RSA PRIVATE KEY-----\\n"}'
    masked, _ = mask_secrets(line)
    assert "MIIEpAIBAAKCAQEA7xQ9" not in masked


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_are_left_alone(line):
    assert mask_secrets(line) == (line, 0)


def test_masking_twice_masks_nothing_more():
    text = "\n".join(line for line, _, _ in PLANTED) + "\n" + PRIVATE_KEY
    once, count = mask_secrets(text)
    assert count >= len(PLANTED)
    assert mask_secrets(once) == (once, 0)


def test_every_secret_planted_in_the_fixture_logs_is_masked():
    planted = {name: expected["secrets"] for name, expected in MANIFEST.items() if expected["secrets"]}
    assert len(planted) >= 5
    for name, secrets in planted.items():
        text = read_log(name).decode()
        masked, _ = mask_secrets(text)
        for secret in secrets:
            assert secret in text and secret not in masked, (name, secret)


def test_a_long_line_without_secrets_is_returned_as_is():
    line = "a" * 2_000_000 + "password" * 1000
    assert mask_secrets(line) == (line, 0)
