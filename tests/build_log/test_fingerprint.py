"""fingerprint(): the same failure in another build gets the same key, a different failure another one."""

from __future__ import annotations

import re

from jenkins_assistant.build_log import extract, fingerprint, normalise_message
from tests.build_log.conftest import MANIFEST, read_log


def as_next_build(text: str) -> str:
    """The same failure as a later build prints it: other times, commit, build number, workspace, temp dirs."""
    text = text.replace("2024-05-01T10:", "2024-05-02T23:").replace("14:0", "03:1")
    text = text.replace("4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39", "0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d")
    text = text.replace("shop-api_main", "shop-api_main@2").replace("1.8.0-42", "1.8.0-43")
    text = text.replace("6c3d1f52-8a0e-4d9b-9f61-2b7e4c0a5d13", "0e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b")
    return re.sub(r"Time elapsed: [\d.]+ s", "Time elapsed: 9.999 s", text)


def test_the_same_failure_in_the_next_build_has_the_same_fingerprint():
    changed = 0
    for name in MANIFEST:
        text = read_log(name).decode()
        later = as_next_build(text)
        changed += later != text
        assert fingerprint(extract(text)) == fingerprint(extract(later)), name
    assert changed >= 8  # the rewrite did touch most logs


def test_different_failures_have_different_fingerprints():
    keys = {fingerprint(extract(read_log(name))) for name in MANIFEST}
    assert len(keys) == len(MANIFEST)


def test_the_same_signature_with_another_message_is_another_failure():
    text = read_log("missing_credentials.log").decode()
    other = text.replace("'staging-kubeconfig'", "'prod-kubeconfig'")
    first, second = fingerprint(extract(text)), fingerprint(extract(other))
    assert first.startswith("credentials-not-found:") and second.startswith("credentials-not-found:")
    assert first != second


def test_normalise_message():
    message = (
        "2024-05-01T10:00:00.123Z build #41 at 10:00:01 in /ws/app@2/build/41/out "
        "commit 4f2a9c1e8b7d image sha256:9b2a6f0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a "
        "id 6c3d1f52-8a0e-4d9b-9f61-2b7e4c0a5d13 script /tmp/jenkins8412349.sh"
    )
    assert normalise_message(message) == (
        "<ts> build #<n> at <time> in /ws/app@<n>/build/<n>/out commit <hex> image <hex> id <uuid> script /tmp/<tmp>.sh"
    )
