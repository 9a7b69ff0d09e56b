"""The explanation parser on outputs written the way small models write them: the asked-for shape, its common
variants, and text that ignores it (which must end up whole in the summary)."""

from __future__ import annotations

import pytest

from jenkins_assistant.inference.explain_sections import parse_explanation


def test_the_asked_for_shape():
    text = (
        "**Summary**: The Maven build failed in the Build stage: `OrderService.java` does not compile.\n"
        "**Probable cause**: The class `com.acme.shop.Cart` is not on the classpath [1].\n"
        "**Fix**:\n"
        "1. Add the `shop-core` dependency to `pom.xml` [2].\n"
        "2. Run `mvn -U clean verify` locally.\n"
        "3. Push and rebuild.\n"
    )
    parsed = parse_explanation(text)
    assert parsed.summary == "The Maven build failed in the Build stage: `OrderService.java` does not compile."
    assert parsed.probable_cause == "The class `com.acme.shop.Cart` is not on the classpath [1]."
    assert parsed.fix_steps == ["Add the `shop-core` dependency to `pom.xml` [2].", "Run `mvn -U clean verify` locally.",
                                "Push and rebuild."]


def test_markdown_headings_synonyms_and_bullets():
    text = (
        "## Summary\n"
        "The pipeline could not find the credentials `deploy-key`.\n\n"
        "## Root Cause\n"
        "No credentials with that ID exist in the folder or globally [1].\n\n"
        "## How to fix it\n"
        "- Open *Manage Jenkins > Credentials* and add a credential with ID `deploy-key`.\n"
        "- Or change `credentialsId` in the Jenkinsfile\n"
        "  to an existing ID [2].\n"
    )
    parsed = parse_explanation(text)
    assert parsed.summary == "The pipeline could not find the credentials `deploy-key`."
    assert parsed.probable_cause.startswith("No credentials with that ID")
    assert parsed.fix_steps == [
        "Open *Manage Jenkins > Credentials* and add a credential with ID `deploy-key`.",
        "Or change `credentialsId` in the Jenkinsfile to an existing ID [2].",
    ]


def test_colon_inside_bold_and_plain_labels():
    text = ("**Summary:** Agent went offline.\n\n**Probable Cause:** The agent lost its connection.\n\n"
            "Steps to fix:\n1) Reconnect the agent.\n2) Check its logs.")
    parsed = parse_explanation(text)
    assert parsed.summary == "Agent went offline."
    assert parsed.probable_cause == "The agent lost its connection."
    assert parsed.fix_steps == ["Reconnect the agent.", "Check its logs."]


def test_prose_without_headings_is_the_summary():
    text = ("The build failed because the script returned exit code 1. Check the test output above and fix the\n"
            "failing test, then run the build again [1].")
    parsed = parse_explanation(text)
    assert parsed.summary == text
    assert parsed.probable_cause == "" and parsed.fix_steps == []


def test_a_step_that_starts_with_fix_is_not_a_heading():
    parsed = parse_explanation("**Fix**:\n1. Fix the import in `Foo.java`.\n2. Fix: rerun the build.")
    assert parsed.fix_steps == ["Fix the import in `Foo.java`.", "Fix: rerun the build."]
    assert parsed.summary == ""


def test_text_before_the_first_heading_is_kept_as_the_summary():
    text = "The npm install step failed.\n\n**Fix**:\n1. Delete `node_modules` and retry."
    parsed = parse_explanation(text)
    assert parsed.summary == "The npm install step failed."
    assert parsed.fix_steps == ["Delete `node_modules` and retry."]


def test_an_answer_cut_at_max_tokens_keeps_its_partial_step():
    parsed = parse_explanation("**Summary**: Disk full.\n**Probable cause**: The workspace volume is full.\n"
                               "**Fix**:\n1. Free space on the agent\n2. Add")
    assert parsed.fix_steps == ["Free space on the agent", "Add"]
    parsed = parse_explanation("**Summary**: Disk full on the agent.\n**Probable")
    assert parsed.summary == "Disk full on the agent.\n**Probable"


def test_fix_without_a_list_gives_one_step_per_paragraph():
    parsed = parse_explanation("**Fix**\nApprove the signature in *In-process Script Approval*.\n\n"
                               "Or move the code to a shared library.")
    assert parsed.fix_steps == ["Approve the signature in *In-process Script Approval*.",
                                "Or move the code to a shared library."]


def test_headings_inside_code_blocks_are_code():
    text = "**Fix**:\n1. Set the option:\n```\nSummary: true\n```\n2. Rebuild."
    parsed = parse_explanation(text)
    assert parsed.fix_steps == ["Set the option: ``` Summary: true ```", "Rebuild."]


@pytest.mark.parametrize("text", ["", "   \n", "**Summary**", "1. 2. 3.", "**", "#", "Fix:"])
def test_odd_text_never_fails(text):
    parsed = parse_explanation(text)
    assert isinstance(parsed.summary, str) and isinstance(parsed.fix_steps, list)
