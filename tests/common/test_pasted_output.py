"""Console output pasted into a question is searched as its error lines (pasted_output.py); other questions as typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from jenkins_assistant.common.pasted_output import MAX_ERROR_LINES, search_text
from jenkins_assistant.evaluation.golden import load_golden

# The start of a real-looking console log (Timestamper's ISO format): nothing in it says what failed.
CONSOLE_HEAD = """\
[2024-05-01T10:00:09.000Z] Started by user Jane Doe
[2024-05-01T10:00:09.007Z] Obtained Jenkinsfile from git https://github.com/acme/shop-api.git
[2024-05-01T10:00:09.014Z] [Pipeline] Start of Pipeline
[2024-05-01T10:00:09.021Z] [Pipeline] node
[2024-05-01T10:00:09.028Z] Running on linux-agent-07 in /home/jenkins/workspace/shop-api_main
[2024-05-01T10:00:09.035Z] [Pipeline] {
[2024-05-01T10:00:09.084Z]  > git rev-parse --resolve-git-dir /home/jenkins/workspace/shop-api_main/.git # timeout=10
[2024-05-01T10:00:09.091Z] Fetching changes from the remote Git repository
[2024-05-01T10:00:09.210Z] [Pipeline] sh
[2024-05-01T10:00:09.217Z] + ./gradlew build"""
ERROR = ("java.lang.NoSuchMethodError: No such DSL method 'readJSON' found among steps [archive, bat, build, "
         "catchError, checkout]")
CONSOLE_TAIL = f"""\
[2024-05-01T10:00:09.336Z] [Pipeline] End of Pipeline
[2024-05-01T10:00:09.343Z] {ERROR}
[2024-05-01T10:00:09.350Z] \tat org.jenkinsci.plugins.workflow.cps.DSL.invokeMethod(DSL.java:219)
[2024-05-01T10:00:09.357Z] \tat org.jenkinsci.plugins.workflow.cps.CpsScript.invokeMethod(CpsScript.java:124)
[2024-05-01T10:00:09.371Z] \tat WorkflowScript.run(WorkflowScript:31)
[2024-05-01T10:00:09.385Z] Finished: FAILURE"""


def test_a_fenced_console_paste_is_searched_as_its_error_lines():
    question = ("Our pipeline fails since the upgrade:\n\n```\n" + CONSOLE_HEAD + "\n" + CONSOLE_TAIL
                + "\n```\n\nWhat plugin am I missing?")
    assert search_text(question) == f"Our pipeline fails since the upgrade:\n\n{ERROR}\n\nWhat plugin am I missing?"


def test_an_unfenced_paste_with_short_timestamps_colours_and_a_cause_is_reduced_too():
    # Timestamper's default `HH:mm:ss`, a tool's terminal colours, a chained cause and its elided frames.
    paste = ("10:00:01 [Pipeline] sh\n10:00:01 + npm ci\n"
             "10:00:02 \x1b[31mnpm\x1b[0m \x1b[31;40mERR!\x1b[0m ERESOLVE could not resolve\n"
             "10:00:02 hudson.AbortException: script returned exit code 1\n"
             "10:00:02 \tat org.jenkinsci.plugins.workflow.steps.durable_task.DurableTaskStep$Execution.handleExit("
             "DurableTaskStep.java:668)\n"
             "10:00:02 Caused by: java.io.IOException: Cannot run program \"npm\"\n10:00:02 \t... 12 more\n"
             "10:00:03 Finished: FAILURE")
    assert search_text(f"npm ci fails:\n{paste}") == (
        "npm ci fails:\nnpm ERR! ERESOLVE could not resolve\nhudson.AbortException: script returned exit code 1\n"
        "Caused by: java.io.IOException: Cannot run program \"npm\"")


def test_a_long_paste_keeps_its_first_error_lines_once_each():
    lines = [f"12:00:{n:02d} ERROR: step {n} failed" for n in range(20)] + ["12:00:30 ERROR: step 0 failed"]
    reduced = search_text("why?\n" + "\n".join(lines)).split("\n")
    assert reduced == ["why?"] + [f"ERROR: step {n} failed" for n in range(MAX_ERROR_LINES)]


@pytest.mark.parametrize("question", [
    # A Jenkinsfile, YAML or a command in a fence is what the user asks about: searched as typed.
    ("Why does this not run in parallel?\n```groovy\npipeline {\n  agent any\n  stages {\n    stage('a') {\n"
     "      steps { sh './gradlew test' }\n    }\n  }\n}\n```"),
    "```yaml\njenkins:\n  systemMessage: hi\n```\nwhere does this file go?",
    # One or two log lines quoted in the question are the question.
    "build log ends with\n[2024-05-01T10:00:09.343Z] ERROR: Couldn't find any revision to build\nwhat now?",
    "pipeline crashes with java.io.NotSerializableException: java.util.regex.Matcher",
])
def test_code_and_quoted_log_lines_are_searched_as_typed(question):
    assert search_text(question) == question


def test_a_paste_alone_that_names_no_error_is_searched_whole():
    # Reduced, nothing would be left to search.
    assert search_text(f"```\n{CONSOLE_HEAD}\n```") == f"```\n{CONSOLE_HEAD}\n```"
    assert search_text(CONSOLE_HEAD) == CONSOLE_HEAD


def test_every_golden_and_follow_up_question_is_searched_as_typed():
    """The harness's figures stand: no question of either set is changed."""
    followups = Path(__file__).parents[2] / "services/evaluation/data/followups.jsonl"
    items = load_golden() + load_golden(followups)
    questions = [q for item in items for q in (item.question, *item.earlier)]
    assert len(questions) > 150
    assert [q for q in questions if search_text(q) != q] == []

