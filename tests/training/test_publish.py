"""The published model directory: atomic replacement, manifest contract, hash verification."""

from __future__ import annotations

import json

import pytest

from jenkins_assistant.training.publish import build_manifest, publish_directory, verify_published


def fill_with(content: bytes, quant: str = "q8_0"):
    def fill(staging):
        (staging / f"m.{quant}.gguf").write_bytes(content)
        (staging / "adapter").mkdir()
        (staging / "adapter" / "adapter_config.json").write_text("{}")
        return build_manifest(base_model="base", gguf={quant: f"m.{quant}.gguf"}, default_gguf=quant,
                              chat_template="gguf", files={}, best_step=3)
    return fill


def test_publish_writes_manifest_with_file_hashes(tmp_path):
    target = publish_directory(fill_with(b"GGUF one"), tmp_path / "current")
    manifest = verify_published(target)
    assert manifest["format_version"] == 1 and manifest["gguf"] == {"q8_0": "m.q8_0.gguf"}
    assert set(manifest["files"]) == {"m.q8_0.gguf", "adapter/adapter_config.json"}
    assert manifest["best_step"] == 3


def test_republish_replaces_and_a_failed_publish_keeps_the_old_model(tmp_path):
    publish_directory(fill_with(b"GGUF one"), tmp_path / "current")
    publish_directory(fill_with(b"GGUF two"), tmp_path / "current")
    assert (tmp_path / "current" / "m.q8_0.gguf").read_bytes() == b"GGUF two"

    def broken(staging):
        (staging / "partial.gguf").write_bytes(b"half")
        raise RuntimeError("quantization failed")

    with pytest.raises(RuntimeError, match="quantization failed"):
        publish_directory(broken, tmp_path / "current")
    assert (tmp_path / "current" / "m.q8_0.gguf").read_bytes() == b"GGUF two"
    verify_published(tmp_path / "current")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current"]  # no staging or old dirs left


def test_verify_detects_a_changed_file(tmp_path):
    target = publish_directory(fill_with(b"GGUF one"), tmp_path / "current")
    (target / "m.q8_0.gguf").write_bytes(b"tampered")
    with pytest.raises(ValueError, match="sha256"):
        verify_published(target)


def test_manifest_rejects_inconsistent_fields():
    with pytest.raises(ValueError, match="default_gguf"):
        build_manifest(base_model="b", gguf={"q8_0": "x"}, default_gguf="q4_K_M", chat_template="gguf", files={})
    with pytest.raises(ValueError, match="chat_template"):
        build_manifest(base_model="b", gguf={"q8_0": "x"}, default_gguf="q8_0", chat_template="chatml", files={})
    manifest = build_manifest(base_model="b", gguf={"q8_0": "x"}, default_gguf="q8_0", chat_template="llama-2",
                              files={})
    json.dumps(manifest)
