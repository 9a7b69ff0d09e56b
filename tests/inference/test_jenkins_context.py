"""The user's Jenkins applied to retrieval and the prompt (jenkins_context.py), on the tests' real index passages and
the real update center file of ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from jenkins_assistant.common.errors import InvalidInput
from jenkins_assistant.inference.config import RetrievalSettings
from jenkins_assistant.inference.jenkins_context import (
    MAX_FIELD_CHARS,
    MAX_PLUGINS,
    JenkinsContext,
    JenkinsPage,
    UpdateCenter,
    assess,
    candidates,
    context_note,
    older,
    plugin_of,
    rerank,
    validate,
    with_note,
)
from jenkins_assistant.inference.prompts import Passage, answer_messages
from jenkins_assistant.inference.retrieval.embeddings import load_embedder
from jenkins_assistant.inference.retrieval.index import RetrievalIndex

SLACK_Q = "How do I send a Slack notification from a pipeline?"
THROTTLE_Q = "How do I limit how many builds of a job run at the same time?"
TIMESTAMPS_Q = "How do I add timestamps to the console output?"


@pytest.fixture(scope="module")
def center(shared_data: Path) -> UpdateCenter:
    return UpdateCenter.load(shared_data / "jenkins-update-center" / "update-center.json")


@pytest.fixture(scope="module")
def index(sample_index: Path) -> RetrievalIndex:
    settings = RetrievalSettings(embedding_threads=1, hybrid=True)
    return RetrievalIndex(sample_index, load_embedder(settings), 1, True, settings.keyword_weight, settings.rrf_k)


def search(index: RetrievalIndex, question: str, k: int, ctx: JenkinsContext | None) -> tuple[list, bool]:
    # As InferenceCore.retrieve_in_context: a few more candidates, then the re-ranking.
    return rerank(index.search(question, candidates(k, ctx)), ctx, k)


def passages(hits: list) -> list[Passage]:
    return [hit.passage for hit in hits]


def test_a_passage_of_an_installed_plugin_moves_up_into_the_prompt(index):
    plain, changed = search(index, THROTTLE_Q, 3, None)
    assert not changed
    assert "throttle-concurrents" in {plugin_of(h.chunk.url) for h in plain}
    ctx = JenkinsContext(plugins=(("throttle-concurrents", "625.vc8b_e469e9a_b_c"),))
    ranked, changed = search(index, THROTTLE_Q, 3, ctx)
    assert changed
    # The installed plugin's passages take places the others held: one came from below the cut of three.
    about = [plugin_of(h.chunk.url) for h in ranked]
    assert about[0] == "throttle-concurrents"
    assert about.count("throttle-concurrents") > [plugin_of(h.chunk.url) for h in plain].count("throttle-concurrents")
    assert {h.chunk.id for h in ranked} - {h.chunk.id for h in plain}


def test_a_passage_of_a_plugin_that_is_not_installed_moves_down(index):
    plain, _ = search(index, TIMESTAMPS_Q, 3, None)
    assert plugin_of(plain[0].chunk.url) == "timestamper"
    ranked, changed = search(index, TIMESTAMPS_Q, 3, JenkinsContext(plugins=(("git", "5.10.1"),)))
    assert changed
    # The Pipeline syntax page (the core `timestamps` option) now leads; the plugin's page stays, lower.
    assert plugin_of(ranked[0].chunk.url) == "" and "timestamps" in ranked[0].chunk.text
    assert plugin_of(ranked[1].chunk.url) == "timestamper"
    # Installed, the plugin keeps the lead.
    installed, _ = search(index, TIMESTAMPS_Q, 3, JenkinsContext(plugins=(("timestamper", "1.30"),)))
    assert plugin_of(installed[0].chunk.url) == "timestamper"


def test_a_passage_that_needs_a_newer_core_moves_down(index):
    question = "How do I use secrets from HashiCorp Vault in a job?"
    plain, _ = search(index, question, 3, None)
    record = next(i for i, h in enumerate(plain) if "requires Jenkins" in h.chunk.text)
    ranked, changed = search(index, question, 3, JenkinsContext(core_version="2.100"))
    assert changed
    positions = {h.chunk.id: i for i, h in enumerate(ranked)}
    assert positions.get(plain[record].chunk.id, 99) > record
    # A core as new as the record asks for changes nothing.
    same, changed = search(index, question, 3, JenkinsContext(core_version="2.568"))
    assert not changed and [h.chunk.id for h in same] == [h.chunk.id for h in plain]


def test_the_prompt_says_a_plugin_is_not_installed(index, center):
    ctx = JenkinsContext(core_version="2.568", plugins=(("git", "5.10.1"),))
    hits, _ = search(index, SLACK_Q, 3, ctx)
    kept = passages(hits)
    use = assess(ctx, kept, center, True)
    assert use.missing_plugins == ["slack"] and use.installed_plugins_used == []
    note = context_note(ctx, use, center)
    assert "NOT installed" in note and "`slack`" in note and "Slack Notification" in note
    # In the user's turn, after the passages and the question; the grounded prompt is otherwise unchanged.
    plain = answer_messages(SLACK_Q, kept, [], 600)
    messages = with_note(plain, note)
    assert messages[-1]["role"] == "user" and messages[-1]["content"].startswith(plain[-1]["content"])
    assert messages[-1]["content"].endswith(note) and messages[:-1] == plain[:-1]


def test_the_prompt_says_an_installed_plugin_is_older_and_names_its_security_warning(index, center):
    ctx = JenkinsContext(plugins=(("slack", "2.0"),), page=JenkinsPage("team-a/app", "WorkflowJob", "FAILURE"))
    question = "Slack Notification plugin version and security"
    hits, _ = search(index, question, 4, ctx)
    use = assess(ctx, passages(hits), center, True)
    assert use.installed_plugins_used == ["slack"] and use.missing_plugins == []
    [gap] = use.outdated_plugins
    assert (gap.plugin_id, gap.installed_version, gap.passage_version) == ("slack", "2.0",
                                                                           center.plugins["slack"]["version"])
    # slack 2.0 matches SECURITY-976's affected-version pattern (1|2[.]([0-9]|1[0-9]))(|[-.].*).
    assert [(f.kind, f.warning_id) for f in use.findings] == [("security_warning", "SECURITY-976")]
    assert use.findings[0].url == "https://jenkins.io/security/advisory/2019-03-25/#SECURITY-976"
    note = context_note(ctx, use, center)
    assert "older than the version" in note and "SECURITY-976" in note and "advisory/2019-03-25" in note
    assert "`team-a/app` (WorkflowJob), last build FAILURE" in note
    # A fixed version: no warning, no gap.
    current = JenkinsContext(plugins=(("slack", center.plugins["slack"]["version"]),))
    fixed = assess(current, passages(hits), center, True)
    assert fixed.findings == [] and fixed.outdated_plugins == []
    assert context_note(current, fixed, center) == ""


def test_the_prompt_says_the_core_is_older_than_a_passage_requires(index, center):
    ctx = JenkinsContext(core_version="2.100")
    hits = [h for h in index.search("HashiCorp Vault plugin version requirements", 6) if "requires Jenkins" in h.chunk.text]
    use = assess(ctx, passages(hits[:1]), center, False)
    assert use.required_core_version == center.plugins["hashicorp-vault-plugin"]["requiredCore"]
    assert f"requires Jenkins {use.required_core_version} or newer" in context_note(ctx, use, center)


def test_update_center_findings_follow_jenkins_version_patterns(center):
    assert len(center.plugins) == 2082 and center.generated_at == "2026-06-14T01:50:16Z"
    # google-login's SECURITY-208 pattern 1[.][01](|[.-].*): 1.1 and 1.0.5 are covered, 1.2 and 1.10 are not (the
    # pattern must match the whole version, as Java's Matcher.matches).
    covered = {v: [f.warning_id for f in center.findings({"google-login": v})] for v in ("1.1", "1.0.5", "1.2", "1.10")}
    assert "SECURITY-208" in covered["1.1"] and "SECURITY-208" in covered["1.0.5"]
    assert "SECURITY-208" not in covered["1.2"] and "SECURITY-208" not in covered["1.10"]
    # ssh: no fixed release (pattern .*), the current version is covered.
    ssh = center.findings({"ssh": "158.ve2a_e90fb_7319"})
    assert {f.warning_id for f in ssh} == {"SECURITY-2093", "SECURITY-2315"}
    # A negative lookahead pattern of the real data, (?!2.0.1.2)(1|2[.]0)(|[.-].*), excludes its fixed version.
    [lookahead] = [w for ws in center.warnings.values() for w in ws
                   if any(p.pattern == "(?!2.0.1.2)(1|2[.]0)(|[.-].*)" for p in w.patterns)]
    assert lookahead.covers("2.0.1.1") and not lookahead.covers("2.0.1.2") and not lookahead.covers("2.1")
    # Deprecated: the page explaining the replacement; and the core's own warnings come with a core version.
    elastest = center.findings({"elastest": "1.2.1"})
    assert [f.kind for f in elastest] == ["security_warning", "security_warning", "deprecated"]
    assert elastest[-1].url == "https://www.jenkins.io/blog/2021/11/09/guava-upgrade/"
    core = center.findings({}, core_version="2.452.3")
    assert "core-2_471" in {f.warning_id for f in core} and all(f.plugin_id == "core" for f in core)
    assert center.findings({}, core_version=center.core_version) == []


def test_versions_compare_as_jenkins_numbers():
    assert older("5.2.1", "5.10.1") and not older("5.10.1", "5.2.1")
    assert older("1.30", "1385.v7d2d9ec4d909") and older("2.452.3", "2.479.3")
    assert not older("2.479", "2.479.0") and not older("", "1.0") and not older("latest", "1.0")


def test_limits_name_the_limit():
    with pytest.raises(InvalidInput, match=f"the limit is {MAX_PLUGINS}"):
        validate(JenkinsContext(plugins=tuple((f"p{i}", "1.0") for i in range(MAX_PLUGINS + 1))))
    validate(JenkinsContext(plugins=tuple((f"p{i}", "1.0") for i in range(MAX_PLUGINS))))
    with pytest.raises(InvalidInput, match=rf"context.plugins\[1\].version has 201 characters; the limit is "
                                           rf"{MAX_FIELD_CHARS}"):
        validate(JenkinsContext(plugins=(("git", "1"), ("junit", "9" * 201))))
    with pytest.raises(InvalidInput, match="context.page.name"):
        validate(JenkinsContext(page=JenkinsPage(name="x" * 201)))
    with pytest.raises(InvalidInput, match="context.locale must be printable"):
        validate(JenkinsContext(locale="de\x00"))
    with pytest.raises(InvalidInput, match=r"context.plugins\[0\].plugin_id is empty"):
        validate(JenkinsContext(plugins=(("", "1.0"),)))


def test_a_passage_served_for_a_name_stays_when_the_context_reorders(index):
    from dataclasses import replace

    # The index serves a passage for a name the question spells out last among its candidates; the context's
    # shifts must not cut it with the ranked tail.
    hits = index.search(THROTTLE_Q, candidates(3, JenkinsContext(plugins=(("git", "5.10.1"),))))
    hits[-1] = replace(hits[-1], named="maxConcurrentPerNode")
    ctx = JenkinsContext(plugins=(("throttle-concurrents", "625.vc8b_e469e9a_b_c"),))
    ranked, changed = rerank(hits, ctx, 3)
    assert changed and len(ranked) == 3 and ranked[-1] is hits[-1]
    assert ranked[:2] == rerank([hit for hit in hits if not hit.named], ctx, 2)[0]
    # A context that moves nothing changes nothing.
    unmoved, changed = rerank(hits, JenkinsContext(core_version="2.999"), 3)
    assert not changed and unmoved == hits[:2] + [hits[-1]]
