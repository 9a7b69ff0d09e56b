"""Artifact trimming, on real SmolLM2 output and on the streaming trimmer's invariant."""

from __future__ import annotations

import threading

import pytest

from jenkins_assistant.common.grounded_prompt import Passage
from jenkins_assistant.inference.model import ChatModel, SamplingParams
from jenkins_assistant.inference.model_source import resolve_model
from jenkins_assistant.inference.trimming import (
    CUT_EXAMPLE_NOTE,
    TURN_STOP_SEQUENCES,
    HeadingEchoes,
    ReadoutGuard,
    RepetitionGuard,
    StreamTrimmer,
    trim_answer,
)

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


# Shapes of the golden answers that started over (var/eval reports): a paragraph said again, a Jenkinsfile again.
PARAGRAPH = ("To give a credential only to the pipelines of Team-A, you can configure the credentials in a folder. This "
             "involves specifying the scope of the credentials to be used by Team-A pipelines, so other jobs never "
             "see them.")
JENKINSFILE = ("```groovy\npipeline {\n    agent any\n    stages {\n        stage('Build') {\n            steps {\n"
               "                sh './gradlew build'\n            }\n        }\n        stage('Test') {\n"
               "            steps {\n                sh './gradlew check'\n            }\n        }\n    }\n}\n```\n")


def stream_through(guard: RepetitionGuard | ReadoutGuard, text: str, step: int) -> tuple[list[str], str]:
    sent = [guard.feed(text[i:i + step]) for i in range(0, len(text), step)]
    return sent, "".join(sent) + guard.finish()


@pytest.mark.parametrize("step", [1, 3, 7])
def test_an_answer_that_starts_over_stops_at_the_end_of_the_line_the_repeat_began_in(step):
    raw = PARAGRAPH + "\n\nTo give it only to Team-A" + PARAGRAPH[PARAGRAPH.index(","):] + "\n\n" + PARAGRAPH
    guard = RepetitionGuard(100)
    _sent, answer = stream_through(guard, raw, step)
    assert guard.stopped
    # The second paragraph began new and then repeated the first: it ends with its first sentence.
    assert answer == PARAGRAPH + "\n\nTo give it only to Team-A, you can configure the credentials in a folder."


@pytest.mark.parametrize("step", [2, 5])
def test_a_jenkinsfile_written_again_stops_before_it(step):
    raw = "Use a `Test` stage:\n\n" + JENKINSFILE + "\nOr, as a whole:" + ("\n\n" + JENKINSFILE) * 3
    guard = RepetitionGuard(120)
    _sent, answer = stream_through(guard, raw, step)
    assert guard.stopped
    assert answer == "Use a `Test` stage:\n\n" + JENKINSFILE + "\nOr, as a whole:"


@pytest.mark.parametrize("step", [2, 5])
def test_a_repeat_that_begins_inside_a_code_block_leaves_the_block_closed(step):
    changed = JENKINSFILE.replace("agent any", "agent { label 'linux' }")
    raw = "Any agent:\n\n" + JENKINSFILE + "\nOn Linux:\n\n" + changed
    guard = RepetitionGuard(120)
    _sent, answer = stream_through(guard, raw, step)
    assert guard.stopped
    # The second Jenkinsfile repeats the first after its agent line: it ends there, its block closed.
    assert answer == ("Any agent:\n\n" + JENKINSFILE + "\nOn Linux:\n\n```groovy\npipeline {\n"
                      "    agent { label 'linux' }\n```")
    assert guard.feed("more text") == "" and guard.finish() == ""


@pytest.mark.parametrize("step", [1, 4, 9])
def test_repeats_shorter_than_the_limit_are_held_only_while_they_repeat(step):
    line = "archiveArtifacts artifacts: 'build/libs/**/*.jar', fingerprint: true\n"  # 70 characters, said twice
    raw = f"Declarative:\n{line}Scripted:\n{line}Both keep the jar with the build's record."
    guard = RepetitionGuard(100)
    sent, answer = stream_through(guard, raw, step)
    assert not guard.stopped and answer == raw
    assert raw.startswith("".join(sent))  # nothing sent is taken back
    # Held while it repeated, the second copy went out as soon as the text moved on.
    assert "".join(sent).count(line) == 2


def test_without_a_limit_text_streams_as_it_comes():
    guard = RepetitionGuard(0)
    assert [guard.feed(piece) for piece in (PARAGRAPH, PARAGRAPH, PARAGRAPH)] == [PARAGRAPH] * 3
    assert not guard.stopped and guard.finish() == ""


# Two passages as retrieval gave them for "the UI shows UTC but we are in New York" (the second a blog post on GSoC
# office hours), and a Parallel example cut in the middle of its code block, as chunks are.
TIME_ZONE = Passage("Change time zone", "https://www.jenkins.io/doc/book/using/change-time-zone/",
                    "## System Time Zone properties  \nIf you cannot change the time zone of your server, you can force "
                    "jelly to use a given time zone for formatting time stamps.  \n```\n[Service]\n"
                    "Environment=\"JAVA_OPTS=-Dorg.apache.commons.jelly.tags.fmt.timeZone=America/New_York\"\n```")
OFFICE_HOURS = Passage("GSoC 2023", "https://www.jenkins.io/blog/2023/01/gsoc/",
                       "Before setting up the weekly Office Hours, we will organize a poll to determine a time that "
                       "suits the timezones of most of the candidates.")
PARALLEL = Passage("Pipeline syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/",
                   "```groovy\npipeline {\n    agent any\n    stages {\n        stage('Parallel Stage') {\n"
                   "            parallel {\n                stage('Branch A') {", "Declarative Pipeline > Parallel")
SEQUENTIAL = Passage("Pipeline syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/",
                     "### Sequential Stages  \nStages in Declarative Pipeline may have a `stages` section containing a "
                     "list of nested stages to be run in sequential order.", "Declarative Pipeline > Sequential Stages")


@pytest.mark.parametrize("step", [1, 4, 11])
def test_an_answer_that_reads_on_into_the_next_passage_ends_where_it_had_copied_the_first(step):
    answer = "Start Jenkins with a java property:\n\n" + TIME_ZONE.text
    raw = answer + "\n\n" + OFFICE_HOURS.text + " Last year, we held sessions at 14h00 UTC."
    guard = ReadoutGuard([TIME_ZONE, OFFICE_HOURS])
    sent, text = stream_through(guard, raw, step)
    assert guard.stopped and text == answer
    assert "Office Hours" not in "".join(sent)  # never sent and taken back: held until it was a readout
    assert guard.feed("more") == "" and guard.finish() == ""


@pytest.mark.parametrize("step", [2, 7])
def test_a_readout_that_begins_inside_a_code_block_leaves_the_block_closed(step):
    # make run's default answer: the example copied to where its chunk was cut, then the next section (its "[5] ..."
    # header already removed by HeadingEchoes).
    raw = "Use a `parallel` section:\n\n" + PARALLEL.text + "\n\n" + SEQUENTIAL.text
    guard = ReadoutGuard([PARALLEL, SEQUENTIAL])
    _sent, text = stream_through(guard, raw, step)
    assert guard.stopped
    # The example was cut where its passage ends, and the answer says so.
    assert text == "Use a `parallel` section:\n\n" + PARALLEL.text + "\n```" + CUT_EXAMPLE_NOTE


@pytest.mark.parametrize("step", [1, 5])
def test_copying_one_passage_or_only_the_opening_of_another_is_not_a_readout(step):
    passages = [TIME_ZONE, OFFICE_HOURS]
    # A passage's end followed by the answer's own words, even ones that begin like another passage's opening.
    own_words = TIME_ZONE.text + "\n\nBefore setting up the property, restart Jenkins once to check the service."
    # Another passage's opening that does not follow a passage's end.
    opening_only = "As the blog says:\n\n" + OFFICE_HOURS.text
    for raw in (own_words, opening_only):
        guard = ReadoutGuard(passages)
        sent, text = stream_through(guard, raw, step)
        assert not guard.stopped and text == raw
        assert raw.startswith("".join(sent))
    # Held only while it might be a readout: the answer's own sentence went out before the end of the stream.
    guard = ReadoutGuard(passages)
    assert guard.feed(TIME_ZONE.text + "\n\nBefore setting") == TIME_ZONE.text
    assert guard.feed(" up the property") == "\n\nBefore setting up the property"
