"""Cleaning, dedupe, text-only mode, the split, HTML conversion and the CSV importers."""

from __future__ import annotations

import pandas as pd
import pytest

from jenkins_assistant.common.errors import InvalidInput
from jenkins_assistant.scraper.html_clean import has_code, html_to_markdown
from jenkins_assistant.scraper.processing import clean_qa_rows, is_validation, split_rows
from jenkins_assistant.scraper.qa import QARow, import_qa_csv

ANSWER = "Use the withCredentials step and reference the variable inside single quotes in the shell step."


def row(row_id: str, question: str, answer: str = ANSWER, score: int = 1, source: str = "stackexchange") -> QARow:
    return QARow(id=row_id, question=question, answer=answer, source=source, url=f"https://x/{row_id}",
                 license="CC-BY-SA-4.0", score=score)


def clean(rows, **overrides):
    options = {"max_chars": 11_000, "min_answer_chars": 20, "near_duplicate_threshold": 0.8, "text_only": False}
    options.update(overrides)
    return clean_qa_rows(rows, **options)


def test_each_drop_reason_is_counted():
    question = ("How can I use a secret token from the Jenkins credentials store inside a shell step of my "
                "declarative pipeline without printing it in the build log?")
    rows = [
        row("a", question, score=10),
        row("b", question.upper() + "!!", score=3),  # same words, other case and punctuation
        row("c", question.replace("build log", "console output"), score=2),  # near duplicate
        row("d", "Wie verwende ich ein geheimes Token aus den Zugangsdaten in einem Shell-Schritt, ohne es im "
                 "Protokoll auszugeben?",
            "Verwenden Sie den Schritt withCredentials und setzen Sie die Variable in einfache Anführungszeichen."),
        row("e", "Empty answer?", "   "),
        row("f", "Too long?", "x " * 6000),
        row("g", "How do I restart Jenkins safely from the command line after installing plugins?",
            "Open the URL /safeRestart or run the restart command of the Jenkins CLI with your credentials."),
    ]
    result = clean(rows)
    assert [r.id for r in result.kept] == ["a", "g"]
    assert dict(result.dropped) == {"duplicate_exact": 1, "duplicate_near": 1, "non_english": 1, "empty": 1,
                                    "too_long": 1}
    assert result.dropped_by_source["stackexchange"]["duplicate_near"] == 1


def test_best_scored_copy_of_a_duplicate_is_kept():
    question = "Why does my multibranch pipeline not discover pull requests from forks on GitHub?"
    result = clean([row("low", question, score=1), row("high", question, score=99)])
    assert [r.id for r in result.kept] == ["high"]


def test_text_only_mode_drops_rows_with_code_and_is_off_by_default():
    rows = [
        row("code", "How do I print the build number in a pipeline step?",
            "Use this:\n\n```groovy\necho \"${env.BUILD_NUMBER}\"\n```"),
        row("prose", "Where are the Jenkins plugins stored on the controller file system?",
            "They live in the plugins folder inside the Jenkins home directory of the controller."),
    ]
    assert len(clean([*rows]).kept) == 2
    result = clean(rows, text_only=True)
    assert [r.id for r in result.kept] == ["prose"]
    assert result.dropped["contains_code"] == 1


def test_split_is_deterministic_and_close_to_the_fraction():
    rows = [row(f"id-{n}", f"question number {n} about Jenkins agents and labels") for n in range(2000)]
    train, validation = split_rows(rows, 0.1, "seed")
    _, again_validation = split_rows(list(reversed(rows)), 0.1, "seed")
    assert {r.id for r in validation} == {r.id for r in again_validation}
    assert 150 < len(validation) < 250 and len(train) + len(validation) == 2000
    assert is_validation("id-1", 0.0, "seed") is False
    assert {r.id for r in split_rows(rows, 0.1, "other-seed")[1]} != {r.id for r in validation}


def test_html_to_markdown_keeps_code_language_and_links_and_drops_noise():
    html = (
        '<p>Try <a href="https://www.jenkins.io/doc/">the docs</a>:</p>'
        '<pre class="lang-groovy s-code-block"><code>node {\n  sh \'make\'\n}\n</code></pre>'
        '<div class="lightbox-wrapper"><img src="x.png"><div class="meta">image 800x600</div></div>'
        '<p>Thanks <a class="mention" href="/u/bob">@bob</a>&nbsp;!</p><script>alert(1)</script>'
    )
    markdown = html_to_markdown(html)
    assert "[the docs](https://www.jenkins.io/doc/)" in markdown
    assert "```groovy\nnode {\n  sh 'make'\n}\n```" in markdown
    assert "image 800x600" not in markdown and "alert" not in markdown and "x.png" not in markdown
    assert "Thanks @bob !" in markdown
    assert has_code(markdown) and not has_code("plain words only")
    assert html_to_markdown('<pre><code class="language-yaml">a: 1</code></pre>') == "```yaml\na: 1\n```"


def test_data_explorer_export_is_imported(tmp_path):
    export = tmp_path / "QueryResults.csv"
    pd.DataFrame([
        {"Id": 123, "Title": "Jenkins &quot;No such DSL method&quot; error", "Score": 42,
         "Body": "<p>My pipeline fails with <code>No such DSL method</code>.</p>",
         "AcceptedAnswerBody": "<p>Install the plugin that provides the step.</p>",
         "CreationDate": "2019-05-01 10:11:12", "Tags": "<jenkins><jenkins-pipeline>"},
    ]).to_csv(export, index=False)
    [imported] = import_qa_csv(export)
    assert imported.id == "stackexchange:123" and imported.source == "stackexchange"
    assert imported.question == 'Jenkins "No such DSL method" error\n\nMy pipeline fails with `No such DSL method`.'
    assert imported.answer == "Install the plugin that provides the step."
    assert imported.score == 42 and imported.tags == ["jenkins", "jenkins-pipeline"]
    assert imported.created_at == "2019-05-01T10:11:12Z"
    assert imported.url == "https://stackoverflow.com/q/123" and imported.license == "CC-BY-SA-4.0"


def test_plain_qa_file_from_the_seed_is_imported(shared_data):
    path = shared_data / "qa" / "nouralmulhem-Enhancing-LLM-with-Jenkins-Knowledge" / "jenkins_docs_qa_pairs.csv"
    rows = import_qa_csv(path, license="MIT")
    assert len(rows) == 765
    assert rows[0].question == "What is Jenkins?" and rows[0].source == "qa_file" and rows[0].license == "MIT"
    assert len({r.id for r in rows}) == 765


def test_csv_without_known_columns_is_rejected(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    with pytest.raises(InvalidInput, match="expected Data Explorer columns"):
        import_qa_csv(bad)


def test_short_questions_that_differ_by_a_word_are_not_duplicates():
    # Real pairs from the seed file: one word changes the question.
    result = clean([
        row("l1", "Which Windows platforms fall under Level 1 support?"),
        row("l4", "Which Windows platforms fall under Level 4 support?"),
        row("cps", "What types of code are CPS-transformed in Jenkins Pipeline?"),
        row("not-cps", "What types of code are not CPS-transformed in Jenkins Pipeline?"),
    ])
    assert len(result.kept) == 4 and not result.dropped
