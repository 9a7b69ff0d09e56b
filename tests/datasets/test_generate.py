"""Generated pairs: sections of a real jenkins.io page, parsing the model's reply, and the support and agreement
checks that decide which pairs are kept."""

from __future__ import annotations

from pathlib import Path

from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.datasets.generate import (
    MAX_SECTION_CHARS,
    Section,
    agreement,
    parse_pair,
    pending_sections,
    sections_of,
    support,
    try_section,
)

SECTION = """Use the `archiveArtifacts` step to keep files a build produced. In a Declarative Pipeline, put it in a
`post` section so that it runs even when a stage fails:

```groovy
post { always { archiveArtifacts artifacts: 'build/libs/**/*.jar', fingerprint: true } }
```

Archived artifacts are kept with the build record and can be downloaded from the build page. Large artifacts take
disk space on the controller; consider an artifact repository for them."""


def test_sections_of_a_real_page_carry_url_licence_and_heading(shared_data: Path):
    from jenkins_assistant.scraper.shared_sources import iter_shared_source

    doc = next(d for d in iter_shared_source(shared_data, "jenkins-docs") if len(d.text) > 3000)
    sections = sections_of(doc)
    assert sections and all(s.url == doc.url and s.license == doc.license and s.heading for s in sections)
    assert all(300 <= len(s.text) <= MAX_SECTION_CHARS for s in sections)
    assert len({s.key for s in sections}) == len(sections)
    # A section tried before is not offered again.
    assert [s.key for s in pending_sections([doc], {sections[0].key})] == [s.key for s in sections[1:]]


def test_sections_keep_the_indentation_of_their_code(shared_data: Path):
    from jenkins_assistant.scraper.shared_sources import iter_shared_source

    syntax = next(d for d in iter_shared_source(shared_data, "jenkins-docs")
                  if d.url.rstrip("/").endswith("/pipeline/syntax"))
    code = [s.text for s in sections_of(syntax) if "```groovy" in s.text]
    assert code and any("\n    agent any\n" in text for text in code)


def test_replies_that_are_not_a_question_and_answer_are_refused():
    assert parse_pair("Question: How do I keep build files?\nAnswer: Use the archiveArtifacts step in post.") == (
        "How do I keep build files?", "Use the archiveArtifacts step in post.")
    assert parse_pair("**Question:** How do I keep build files?\n\n**Answer:** Use archiveArtifacts in post.")
    assert parse_pair("Question: Keep build files.\nAnswer: Use the archiveArtifacts step.") is None  # no "?"
    assert parse_pair("Question: How?\nAnswer: Like so.") is None  # an answer of a few words at least
    assert parse_pair("Sure! Jenkins is great.") is None


def test_an_answer_is_supported_only_when_its_names_and_words_are_in_the_section():
    ok, _ = support("Use the `archiveArtifacts` step in a `post` section; archived artifacts are kept with the build "
                    "record.", SECTION)
    assert ok
    invented, why = support("Use the `publishArtifacts` step with keepForever: true.", SECTION)
    assert not invented and "publishartifacts" in why
    unrelated, why = support("Configure the Kubernetes cloud template with persistent volume claims and a "
                             "dedicated namespace.", SECTION)
    assert not unrelated and why.startswith("content words not in the section")
    thin, why = support("Yes, it does.", SECTION)
    assert not thin and "thin" in why


def test_two_answers_agree_when_they_share_their_key_terms():
    first = "Use the archiveArtifacts step in the post section; artifacts are kept with the build record."
    assert agreement(first, "Put archiveArtifacts in post: the archived artifacts stay with the build.") >= 0.4
    assert agreement(first, "Install the Docker plugin and configure a cloud.") < 0.4


class Replies:
    """Canned replies in place of a model, to test the decision path (the model itself is exercised by
    test_cli.py's run against the inference service)."""

    name = "canned"

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)

    def complete(self, prompt: str, max_tokens: int) -> str:
        assert "Jenkins documentation" in prompt
        return self.replies.pop(0)


def test_a_pair_is_kept_only_after_the_second_pass_agrees():
    section = Section("d1", "https://www.jenkins.io/doc/pipeline/tour/tests-and-artifacts/", "Recording tests",
                      "CC-BY-SA-4.0", "Recording tests and artifacts", SECTION)
    pair = "Question: How do I keep the files a build produced?\nAnswer: Use the `archiveArtifacts` step in a " \
           "`post` section so that archived artifacts are kept with the build record."
    kept = try_section(section, Replies(pair, "Call archiveArtifacts in post; the archived artifacts are kept with "
                                              "the build record."))
    assert kept.status == "kept"
    record = kept.progress_record("canned")
    assert record["row"]["url"] == section.url and record["row"]["license"] == "CC-BY-SA-4.0"
    assert record["row"]["section"] == "Recording tests and artifacts"
    disagrees = try_section(section, Replies(pair, "Install the Docker plugin and configure a cloud."))
    assert disagrees.status == "rejected" and "disagrees" in disagrees.reason
    assert try_section(section, Replies("I cannot help with that.")).reason == "no question/answer in the reply"


def test_document_order_is_kept_across_documents():
    docs = [CorpusDocument(id=f"d{i}", url=f"https://www.jenkins.io/doc/{i}/", title=f"Page {i}",
                           text=f"# Page {i}\n\n" + SECTION, source="jenkins_docs", license="CC-BY-SA-4.0")
            for i in range(3)]
    assert [s.document_id for s in pending_sections(docs, set())] == ["d0", "d1", "d2"]
