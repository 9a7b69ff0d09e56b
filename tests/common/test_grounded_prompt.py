"""The grounded prompt shared by serving and training: layout, and the note on names no passage mentions."""

from __future__ import annotations

import pytest

from jenkins_assistant.common.grounded_prompt import (
    Passage,
    grounded_question,
    heading_path,
    owned_terms,
    specific_terms,
    unmentioned_terms,
)

SH = Passage("sh: Shell Script", "https://www.jenkins.io/doc/pipeline/steps/workflow-durable-task-step/#sh",
             "returnStdout (optional): if checked, standard output is returned as the step value.", "Parameters")


def test_passages_come_numbered_before_the_question():
    turn = grounded_question("How do I capture the output of sh?", [SH, Passage("Pipeline", "u", "Use stages.")])
    assert turn.index("[1] sh: Shell Script > Parameters") < turn.index("[2] Pipeline") < turn.index("Question:")
    assert "cite" in turn and "No passage mentions" not in turn
    assert grounded_question("bare?", []) == "bare?"


def test_the_heading_path_says_the_page_title_once():
    # The index's heading paths start with the title; the prompt's passage headers and the CLI's sources use this.
    assert heading_path("Pipeline syntax", "Pipeline syntax > Declarative Pipeline > parallel") == (
        "Pipeline syntax > Declarative Pipeline > parallel")
    assert heading_path("Pipeline syntax", "Pipeline syntax") == heading_path("Pipeline syntax", "") == "Pipeline syntax"
    # A path that does not start with the title (a blog post renamed after its first heading) keeps both.
    assert heading_path("GitLab SCM Jobs", "GitLab SCM Support > Goals") == "GitLab SCM Jobs > GitLab SCM Support > Goals"


@pytest.mark.parametrize(("question", "terms"), [
    ("what is the default of the retryCount option of sh?", ["retryCount"]),
    ("jenkins-cli safe-restart --drain-timeout 10m?", ["--drain-timeout"]),
    ("What does jenkins.model.Jenkins.autoScaleExecutors do?", ["jenkins.model.Jenkins.autoScaleExecutors"]),
    ("How do I set up the Build Cost Insights plugin?", ["Build Cost Insights"]),
    ("capacity in GitLab Runner's config.toml", ["config.toml"]),
    # A user's own host and a Java class from a pasted stack trace are not things to look up.
    ("pull from myregistry.example.com fails with java.lang.IllegalStateException", []),
    ("how do I restart Jenkins safely?", []),
    # Names inside a pasted error are its content, not what is asked; the question after it still counts.
    (("org.jenkinsci.plugins.scriptsecurity.sandbox.RejectedAccessException: Scripts not permitted to use method "
      "groovy.json.JsonSlurperClassic parseText java.lang.String"), []),
    (("java.lang.NoSuchMethodError: No such DSL method 'readJSON' found among steps [archive, catchError]? "
      "Which plugin has readJSON?"), ["readJSON"]),
    ("ERROR: No artifacts found that match the file pattern\ncan archiveArtifacts skip it?", ["archiveArtifacts"]),
    ("team A may only see the jobs whose names start with teamA-", []),
    # A sentence's capital before "plugin" is not a plugin's name.
    ("Which plugin adds a retryCount option?", ["retryCount"]),
    ("Is the Blue Ocean plugin maintained?", ["Blue Ocean"]),
])
def test_specific_terms(question, terms):
    assert specific_terms(question) == terms


def test_the_turn_names_what_no_passage_mentions():
    question = "Does the sh step take a retryCount or a returnStdout option?"
    assert unmentioned_terms(question, [SH]) == ["retryCount"]
    turn = grounded_question(question, [SH])
    assert "No passage mentions `retryCount`." in turn and "The documentation does not cover `retryCount`." in turn


# Another plugin's step with a parameter of the same name (the golden set's oop-sh-retry-count met this one).
BUMBLEBEE = Passage("step([$class: 'RunPcTestBuildStep']): Bumblebee HP PC Test Runner",
                    "https://www.jenkins.io/doc/pipeline/steps/hp-application-automation-tools-plugin/",
                    "retryCount (optional): how many times to retry a failed test run (script.sh is not run).",
                    "Parameters")


@pytest.mark.parametrize(("question", "owners"), [
    ("what is the default value of the retryCount option of the sh step?", {"retrycount": "sh"}),
    ("Does the `sh` step's returnStdout trim the output?", {"returnstdout": "sh"}),
    # Every named argument of a call, wherever it stands in the call.
    ("sh(script: 'ls', returnStdout: true) gives null", {"script": "sh", "returnstdout": "sh"}),
    ("sh(label: 'x', script: 'ls', retryCount: 3", {"label": "sh", "script": "sh", "retrycount": "sh"}),
    ("How do I use withCredentials with usernamePassword?", {}),
    ("podTemplate gpuQuota parameter: how many GPUs?", {}),  # no owner said: the name counts anywhere
])
def test_owned_terms(question, owners):
    assert owned_terms(question) == owners


def test_a_name_tied_to_a_step_counts_only_where_the_step_is_named_too():
    question = "what is the default value of the retryCount option of the sh step?"
    # The other step's parameter says nothing about sh's ("script.sh" is not the step's name either).
    assert unmentioned_terms(question, [SH, BUMBLEBEE]) == ["retryCount"]
    # Without an owner in the question, any passage naming it counts, as before.
    assert unmentioned_terms("What is the default of retryCount?", [SH, BUMBLEBEE]) == []
    documented = Passage("sh: Shell Script", SH.url, "retryCount (optional): retries of the script.", "Parameters")
    assert unmentioned_terms(question, [documented, BUMBLEBEE]) == []


def test_pasted_console_output_counts_by_its_error_lines_only():
    # Its workspace path (`shop-api_main`) and stack frames are no names the user asks the documentation about: the
    # answer opened with "The documentation does not cover `api_main`" although the passage named the missing step.
    from tests.common.test_pasted_output import CONSOLE_HEAD, CONSOLE_TAIL

    read_json = Passage("readJSON: Read JSON from files in the workspace.", "https://www.jenkins.io/doc/pipeline/steps/",
                        "Call it in a Jenkinsfile as `readJSON(...)`.", "Parameters")
    question = f"What is missing?\n```\n{CONSOLE_HEAD}\n{CONSOLE_TAIL}\n```"
    assert "api_main" in specific_terms(question)
    assert unmentioned_terms(question, [read_json]) == []
    assert "No passage mentions" not in grounded_question(question, [read_json])
    # A name asked about in the question's own words still counts.
    assert unmentioned_terms(f"What does retryCount do here?\n```\n{CONSOLE_HEAD}\n```", [read_json]) == ["retryCount"]
