"""The excerpts quoted after an answer: units, excerpts, their ranking (with the real packaged embedder) and their
markdown. Small passages written for the test; no index, no chat model."""

from __future__ import annotations

import pytest

from jenkins_assistant.common.grounded_prompt import Passage
from jenkins_assistant.inference.config import RetrievalSettings
from jenkins_assistant.inference.quoting import (
    Quote,
    choose_quotes,
    excerpts,
    quotes_markdown,
    rank_excerpts,
    text_units,
    without_quotes,
)
from jenkins_assistant.inference.retrieval.embeddings import load_embedder

RESTART = Passage(
    "Managing systemd services", "https://www.jenkins.io/doc/book/system-administration/systemd-services/",
    "#### Restarting services\n"
    "The Jenkins `systemd` service can be restarted with:\n"
    "```bash\n# systemctl restart jenkins\n```\n"
    "A restart stops every running build. Builds of Pipeline jobs resume after it.",
    "Managing systemd services > Restarting services",
)
STOP = Passage(
    "Managing systemd services", "https://www.jenkins.io/doc/book/system-administration/systemd-services/",
    "#### Stopping services\n"
    "Stop the controller before you back up its home directory. The Jenkins `systemd` service can be stopped "
    "with:\n"
    "```bash\n# systemctl stop jenkins\n```\n"
    "- **Note**: a stopped service starts again at the next boot unless it is disabled.",
    "Managing systemd services > Stopping services",
)
AGENTS = Passage(
    "Pipeline syntax", "https://www.jenkins.io/doc/book/pipeline/syntax/",
    "The `agent` section specifies where the entire Pipeline, or a specific stage, will execute in the Jenkins "
    "environment. It must be defined at the top-level inside the `pipeline` block.",
    "Pipeline syntax > Declarative Pipeline > agent",
)


@pytest.fixture(scope="module")
def embed():
    return load_embedder(RetrievalSettings(embedding_threads=1)).embed


def test_units_are_sentences_lines_and_whole_code_blocks_never_headings():
    text = STOP.text
    units = [text[start:end] for start, end in text_units(text)]
    assert units == [
        "Stop the controller before you back up its home directory.",
        "The Jenkins `systemd` service can be stopped with:",
        "```bash\n# systemctl stop jenkins\n```",
        "- **Note**: a stopped service starts again at the next boot unless it is disabled.",
    ]


def test_a_hard_wrapped_paragraph_is_read_as_sentences_and_a_cut_sentence_is_no_unit():
    # Jenkins core's field help is wrapped at about 80 characters, and a chunk starts and ends where the chunker cut
    # it: the quotes began with "added to the queue, but Jenkins will wait for the specified period of time (in".
    text = ("the quiet period before a build starts.  \n"
            "When this option is non-zero, newly triggered builds of this project will be\n"
            "added to the queue, but Jenkins will wait for the specified period of time (in\n"
            "seconds) before actually starting the build.  \n"
            "- **Labels:** Labels (or tags) are used to group multiple agents into one logical group.\n"
            "    sh './jenkins/scripts/test.sh'\n"
            "    sh './jenkins/scripts/deploy.sh'\n"
            "For example, if your builds take a long time to execute, you may want to\n"
            "prevent multiple source control")
    units = [text[start:end] for start, end in text_units(text)]
    assert units == [
        ("When this option is non-zero, newly triggered builds of this project will be\n"
         "added to the queue, but Jenkins will wait for the specified period of time (in\n"
         "seconds) before actually starting the build."),
        "- **Labels:** Labels (or tags) are used to group multiple agents into one logical group.",
        "sh './jenkins/scripts/test.sh'",  # indented lines (code cut from its fences) stay lines
        "sh './jenkins/scripts/deploy.sh'",
    ]


def test_a_bold_line_alone_is_no_excerpt():
    # The scrapers turn headings inside a section into bold lines, and examples have bold captions: quoted alone,
    # "**Parallel Stages, Declarative Pipeline**" told the user nothing. With what follows it, it stays.
    code = "```groovy\nstage('Test') { parallel { stage('A') { steps { echo 'a' } } } }\n```"
    text = f"**Parallel Stages, Declarative Pipeline**\n{code}"
    found = [e.text for e in excerpts(1, text, max_chars=60)]
    assert "**Parallel Stages, Declarative Pipeline**" not in found and code in found
    assert text in [e.text for e in excerpts(1, text, max_chars=200)]
    # A caption the limit would end a run with goes on to its code block within 1.5 x the limit, or the run ends
    # before it: `make run`'s answer quoted "...parallelsAlwaysFailFast()." and then the caption of an example it
    # did not show.
    option = "Another option for adding `failfast` is adding an option to the pipeline definition: " \
             "`parallelsAlwaysFailFast()`."
    found = [e.text for e in excerpts(1, f"{option}\n{text}", max_chars=200)]
    assert f"{option}\n{text}" in found
    long_code = "```groovy\n" + "stage('A') { steps { echo 'a' } }\n" * 5 + "```"
    found = [e.text for e in excerpts(1, f"{option}\n**Parallel Stages, Declarative Pipeline**\n{long_code}", 200)]
    assert option in found and not any(e.endswith("Declarative Pipeline**") for e in found)


def test_a_sentence_that_introduces_what_follows_is_never_quoted_without_it():
    # "..., for example:" quoted last told the user that an example follows and gave none: 9 of the 244 quotes of a
    # make eval run ended so. A run goes on to what the sentence introduces within 1.5 x the limit, or ends before it.
    intro = "If we wanted to retry our deployment 5 times, but never spend more than 3 minutes on it:"
    code = "```groovy\ntimeout(time: 3, unit: 'MINUTES') { retry(5) { sh './flakey-deploy.sh' } }\n```"
    before = "Some steps wrap other steps."
    text = f"{before}\n{intro}\n{code}"
    found = [e.text for e in excerpts(1, text, max_chars=150)]
    assert f"{before}\n{intro}\n{code}" in found  # within 1.5 x the limit: the example comes along
    assert not any(e.endswith(":") for e in found)
    found = [e.text for e in excerpts(1, text, max_chars=len(intro) + 5)]
    assert intro not in found and code in found  # alone it is no excerpt; the example still is one
    long_code = "```groovy\n" + "retry(5) { sh './flakey-deploy.sh' }\n" * 8 + "```"
    found = [e.text for e in excerpts(1, f"{before}\n{intro}\n{long_code}", max_chars=150)]
    assert before in found and not any(e.endswith(":") for e in found)  # too long to come along: the run ends before


def test_a_table_header_is_never_quoted_without_a_row():
    # A make eval answer's quote ended with '| Field | CasC Key | Description |' and its delimiter row: column names
    # and no row. The header introduces the rows below it, as a sentence that ends with a colon does.
    header = "| Field | CasC Key | Description |\n|-------|----------|-------------|"
    row = "| Host network | hostNetwork | Use the host's network namespace |"
    text = f"The pod template has these fields.\n\n{header}\n{row}\n| Proxy | proxyHost | The proxy host for the pod |"
    found = [e.text for e in excerpts(1, text, max_chars=120)]
    assert f"{header}\n{row}" in found  # the header comes with the first row
    assert not any(e.endswith(("| Description |", "|-------------|")) for e in found)
    assert not any(e.startswith("|---") for e in found)  # a delimiter row opens no quote
    found = [e.text for e in excerpts(1, text, max_chars=60)]
    assert row in found and not any("CasC Key" in e for e in found)  # too long together: the header is left out


def test_excerpts_are_verbatim_runs_of_units_within_the_limit():
    found = excerpts(2, STOP.text, max_chars=120)
    assert found and all(e.citation == 2 and e.text == STOP.text[e.start:e.end] for e in found)
    # Within the limit, or within 1.5 x the limit where a run goes on to what its last sentence introduces.
    assert all(len(e.text) <= 120 or len(e.text) <= 180 and e.text.endswith("```") for e in found)
    # Consecutive units join into one excerpt while they fit: the sentence that introduces the command and the
    # command itself.
    assert any(e.text.startswith("The Jenkins `systemd` service can be stopped with:") and
               e.text.endswith("systemctl stop jenkins\n```") for e in found)
    # A code block longer than 1.5 x the limit is never quoted (a cut block would not run).
    long_code = "Run it:\n```groovy\n" + "echo 'step'\n" * 40 + "```"
    assert all("```" not in e.text for e in excerpts(1, long_code, max_chars=100))


def test_the_excerpt_that_answers_the_question_ranks_first(embed):
    passages = [RESTART, AGENTS, STOP]
    ranked = rank_excerpts("How can the Jenkins systemd service be stopped?", passages, embed, max_chars=200)
    assert ranked[0].citation == 3 and "systemctl stop jenkins" in ranked[0].text
    ranked = rank_excerpts("Where does a declarative pipeline run? the agent section?", passages, embed, 200)
    assert ranked[0].citation == 2


def test_quotes_skip_what_the_answer_says_and_never_overlap(embed):
    passages = [RESTART, AGENTS, STOP]
    question = "How can the Jenkins systemd service be stopped?"
    ranked = rank_excerpts(question, passages, embed, max_chars=200)
    quotes = choose_quotes(ranked, passages, count=2)
    assert "systemctl stop jenkins" in quotes[0].text
    assert quotes[0].title == STOP.title and quotes[0].section == STOP.section and quotes[0].citation == 3
    for a in quotes:
        for b in quotes:
            if a is not b and a.citation == b.citation:
                passage = passages[a.citation - 1].text
                assert a.text not in b.text and b.text not in a.text and a.text in passage and b.text in passage
    # An answer that already says what the stopping excerpts say gets the next ones instead.
    answer = ("Stop the controller before you back up its home directory. The Jenkins systemd service can be stopped "
              "with: systemctl stop jenkins. Note: a stopped service starts again at the next boot unless disabled.")
    later = choose_quotes(ranked, passages, count=2, answer=answer)
    assert len(later) == 2 and later[0].citation == 1 and "systemctl restart jenkins" in later[0].text
    assert all("systemctl stop jenkins" not in q.text for q in later)


def test_text_that_two_passages_share_is_quoted_once(embed):
    # The end of one chunk is the start of the next (the chunker's overlap), and two guides can share a paragraph.
    shared = "The Jenkins `systemd` service can be stopped with:\n```bash\n# systemctl stop jenkins\n```"
    head = Passage(STOP.title, STOP.url, "Stop the controller before you back up its home directory. " + shared,
                   STOP.section)
    tail = Passage(STOP.title, STOP.url, shared + "\nA stopped service starts again at the next boot unless it is "
                   "disabled.", STOP.section)
    passages = [head, tail]
    question = "How can the Jenkins systemd service be stopped?"
    quotes = choose_quotes(rank_excerpts(question, passages, embed, max_chars=200), passages, count=2)
    assert sum(q.text.count("systemctl stop jenkins") for q in quotes) == 1, quotes
    # A sentence that differs only in a number says something else and is still quoted.
    java11 = Passage("Upgrade to Java 11", "https://www.jenkins.io/doc/book/platform-information/upgrade-java-to-11/",
                     "It is critical to upgrade both the controller and agents to Java 11 before upgrading Jenkins.",
                     "Upgrade to Java 11")
    java17 = Passage("Upgrade to Java 17", "https://www.jenkins.io/doc/book/platform-information/upgrade-java-to-17/",
                     "It is critical to upgrade both the controller and agents to Java 17 before upgrading Jenkins.",
                     "Upgrade to Java 17")
    ranked = rank_excerpts("which java must agents run?", [java11, java17], embed, max_chars=200)
    assert len(choose_quotes(ranked, [java11, java17], count=2)) == 2


def test_a_sentence_that_two_passages_share_is_not_quoted_again_within_a_longer_excerpt():
    # The Pipeline syntax page says the same sentence in its Parallel and its Matrix section; `make run`'s answer
    # quoted it with the sentence before it from one and again, followed by the matrix's rules, from the other.
    option = ("Another option for adding `failfast` is adding an option to the pipeline definition: "
              "`parallelsAlwaysFailFast()`.")
    parallel = Passage("Pipeline syntax", AGENTS.url, "Adding `failFast true` to a stage containing `parallel` forces "
                       f"all `parallel` stages to be aborted when any one of them fails.\n{option}",
                       "Pipeline syntax > Declarative Pipeline > Parallel")
    matrix = Passage("Pipeline syntax", AGENTS.url, f"{option}\nThe `matrix` section must include an `axes` section "
                     "and a `stages` section.", "Pipeline syntax > Declarative Pipeline > Matrix")
    fail_fast_and_option = excerpts(1, parallel.text, max_chars=300)[0]
    option_and_rule, rule_alone = excerpts(2, matrix.text, max_chars=300)
    assert fail_fast_and_option.text == parallel.text and option_and_rule.text == matrix.text
    # Whatever the ranking, an excerpt that repeats a quoted sentence gives way to the next one: here the one that
    # starts after that sentence.
    quotes = choose_quotes([fail_fast_and_option, option_and_rule, rule_alone], [parallel, matrix], count=2)
    assert [q.text for q in quotes] == [parallel.text, rule_alone.text] and rule_alone.text.startswith("The `matrix`")


def test_markdown_quotes_each_excerpt_under_its_citation_and_keeps_code_as_written():
    quotes = choose_quotes(excerpts(1, RESTART.text, max_chars=400), [RESTART], count=1)
    markdown = quotes_markdown(quotes)
    assert markdown.startswith("\n\n**From the documentation** (quoted as written):\n\n> [1] *Managing systemd "
                               "services > Restarting services*\n>\n")
    body = [line.removeprefix("> ").removeprefix(">") for line in markdown.split("\n")[6:]]
    assert "\n".join(body) == RESTART.text.split("\n", 1)[1]  # `# systemctl` inside the code is not a heading
    assert quotes_markdown([]) == ""
    # Past answers go back into prompts without their quotes.
    assert without_quotes("Run `systemctl restart jenkins` [1]." + markdown) == "Run `systemctl restart jenkins` [1]."
    assert without_quotes("No quotes here.") == "No quotes here."


def test_quotes_after_an_answer_cut_inside_a_code_block_close_the_block_first():
    markdown = quotes_markdown([Quote(1, "Pipeline syntax", "", "Use `parallel` inside a stage.")])
    cut = "Like this:\n```groovy\nstage('Test') {\n    parallel {"
    closed = quotes_markdown([Quote(1, "Pipeline syntax", "", "Use `parallel` inside a stage.")], cut)
    assert (cut + closed).count("```") % 2 == 0 and closed == "\n```" + markdown
    assert quotes_markdown([Quote(1, "Pipeline syntax", "", "Use `parallel` inside a stage.")],
                           "Done.\n```sh\nls\n```") == markdown
    assert quotes_markdown([], cut) == ""
