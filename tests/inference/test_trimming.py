"""Artifact trimming, on real SmolLM2 output and on the streaming trimmer's invariant."""

from __future__ import annotations

import threading

import pytest

from jenkins_assistant.inference.model import ChatModel, SamplingParams
from jenkins_assistant.inference.model_source import resolve_model
from jenkins_assistant.inference.trimming import TURN_STOP_SEQUENCES, HeadingEchoes, StreamTrimmer, trim_answer

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


# Headings as the prompt shows them (Passage.heading) for the answers below, which are Qwen2.5-Coder-0.5B's own from
# the golden set (var/eval), cut to the lines around each echo.
HEADINGS = ["Running multiple steps > Finishing up", "withCredentials: Bind credentials to variables",
            "Git Plugin > Pipelines > Git Credentials Binding", "Reverse proxy configuration"]
TITLES = ["Running multiple steps", "withCredentials: Bind credentials to variables", "Git Plugin",
          "Reverse proxy configuration"]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # inside a code block, cut short, with a number no passage has
        ("```groovy\n    }\n}\n\n[7] Running multiple steps > Finishing\n```", "```groovy\n    }\n}\n\n```"),
        # at the end, cut short by the model
        ("Use `usernamePassword` [1].\n\n[7] withCredentials: Bind credentials to",
         "Use `usernamePassword` [1]."),
        # a title followed by a heading path the model misremembered, as a section title
        ("You need the stored credentials:\n\n[1] Git Plugin > Pipelines > Credentials Binding\n### Using Credentials",
         "You need the stored credentials:\n\n### Using Credentials"),
        # dressed as markdown
        ("Options:\n### [2] Reverse proxy configuration\n- rewrite `Location`",
         "Options:\n- rewrite `Location`"),
        ("**[2] Reverse proxy configuration**:\nSet `X-Forwarded-Host` [2].", "Set `X-Forwarded-Host` [2]."),
        # an answer's own lines that start with a citation, or name a page within a sentence, stay
        ("[1] says to add `failFast true` to the stage.", "[1] says to add `failFast true` to the stage."),
        ("See [4] Reverse proxy configuration for the Apache example.",
         "See [4] Reverse proxy configuration for the Apache example."),
        ("[2] Reverse proxy configuration explains `X-Forwarded-Proto`.",
         "[2] Reverse proxy configuration explains `X-Forwarded-Proto`."),
        ("[1] Git", "[1] Git"),  # too little of a heading to tell
        ("```groovy\ndef xs = []\n[1]\n```", "```groovy\ndef xs = []\n[1]\n```"),
    ],
)
def test_lines_repeating_a_passage_heading_are_removed_as_they_stream(raw, clean):
    echoes = HeadingEchoes(HEADINGS, TITLES)
    assert trim_answer(raw, echoes) == clean
    for step in (1, 2, 5):
        trimmer = StreamTrimmer(echoes)
        sent = [trimmer.feed(raw[i:i + step]) for i in range(0, len(raw), step)]
        assert "".join(sent) + trimmer.finish() == clean
        # Nothing sent is taken back: each delta extends what the user has already read.
        assert clean.startswith("".join(sent))


def test_text_after_a_possible_echo_is_released_once_the_line_shows_it_is_not_one():
    trimmer = StreamTrimmer(HeadingEchoes(HEADINGS, TITLES))
    assert trimmer.feed("Use the stage's options as follows:\n") == "Use the stage's options as follows:"
    assert trimmer.feed("[1] Running multiple") == ""  # held: it may be a heading
    assert trimmer.feed(" stages is done with `parallel`") == "\n[1] Running multiple stages is done with `parallel`"


def test_without_headings_a_heading_line_is_answer_text():
    raw = "Answer.\n[1] Reverse proxy configuration"
    assert trim_answer(raw) == raw
    assert trim_answer(raw, HeadingEchoes()) == raw
