"""Artifact trimming, on real SmolLM2 output and on the streaming trimmer's invariant."""

from __future__ import annotations

import threading

import pytest

from jenkins_assistant.inference.model import ChatModel, SamplingParams
from jenkins_assistant.inference.model_source import resolve_model
from jenkins_assistant.inference.trimming import TURN_STOP_SEQUENCES, StreamTrimmer, trim_answer

# A transcript-style prompt: SmolLM2 continues it by inventing the next "Human:" turns.
TRANSCRIPT = ("The following is a conversation between a human and an AI assistant about Jenkins.\n"
              "Human: How do I restart Jenkins?\nAI:")


@pytest.fixture(scope="module")
def model(smollm2_settings) -> ChatModel:
    loaded = ChatModel(smollm2_settings, resolve_model(smollm2_settings))
    yield loaded
    loaded.close()


def generate(model: ChatModel, prompt: str, stop: list[str]) -> str:
    params = SamplingParams(max_tokens=120, temperature=0.0, top_p=1.0, repeat_penalty=1.0, stop=stop)
    pieces: list[str] = []
    model.slots[0].generate(model.tokenize(prompt), params, pieces.append, threading.Event())
    return "".join(pieces)


def test_stop_sequences_and_trim_remove_invented_turns_from_real_output(model):
    raw = generate(model, TRANSCRIPT, stop=[])
    assert "\nHuman:" in raw and "\nAI:" in raw  # the artifact this guards against really happens

    stopped = generate(model, TRANSCRIPT, stop=list(TURN_STOP_SEQUENCES))
    cleaned = trim_answer(stopped)
    assert cleaned and raw.startswith(stopped)
    assert "Human:" not in cleaned and "AI:" not in cleaned
    assert cleaned == cleaned.strip()


def test_stream_trimmer_matches_the_final_trim_on_real_tokens(model):
    raw = "Assistant: " + generate(model, TRANSCRIPT, stop=list(TURN_STOP_SEQUENCES)) + "\n\n[]"
    trimmer = StreamTrimmer()
    streamed = "".join(trimmer.feed(raw[i:i + 3]) for i in range(0, len(raw), 3)) + trimmer.finish()
    assert streamed == trim_answer(raw)
    assert not streamed.startswith("Assistant") and not streamed.endswith("[]")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("AI: Use the safeRestart URL.", "Use the safeRestart URL."),
        ("assistant: Jenkins agents run builds.\n\nHuman:", "Jenkins agents run builds."),
        ("[] Open Manage Jenkins.\n[]", "Open Manage Jenkins."),
        ("Use `sh 'make'` in a stage [1].", "Use `sh 'make'` in a stage [1]."),
        ("An AI: the model answered.", "An AI: the model answered."),
    ],
)
def test_trim_answer(raw, clean):
    assert trim_answer(raw) == clean
    trimmer = StreamTrimmer()
    assert "".join(trimmer.feed(ch) for ch in raw) + trimmer.finish() == clean
