"""Retrieval: chunking, incremental index builds, and recall@5 on the full docs + blog + plugin-docs index."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.inference.config import RetrievalSettings
from jenkins_assistant.inference.retrieval.builder import build_index
from jenkins_assistant.inference.retrieval.chunking import Chunker
from jenkins_assistant.inference.retrieval.embeddings import load_embedder
from jenkins_assistant.inference.retrieval.index import CHUNKS, EMBEDDINGS, RetrievalIndex
from tests.inference.retrieval_questions import QUESTIONS, recall_at_5

PIPELINE_DOC = CorpusDocument(
    id="docs:pipeline-demo", url="https://www.jenkins.io/doc/book/pipeline/demo/", title="Pipeline demo",
    source="jenkins_docs", license="CC-BY-SA-4.0",
    text=(
        "# Pipeline demo\n\nIntro paragraph about pipelines.\n\n"
        "## Stages\n\n" + "A stage groups steps. " * 60 + "\n\n"
        "```groovy\n# not a heading inside code\npipeline {\n  agent any\n  stages { stage('Build') { steps { sh 'make' } } }\n}\n```\n\n"
        "## Agents\n\nThe agent directive says where the pipeline runs.\n"
    ),
)


@pytest.fixture(scope="module")
def settings() -> RetrievalSettings:
    return RetrievalSettings(embedding_threads=1, chunk_chars=400, chunk_overlap_chars=60, hybrid=True)


@pytest.fixture(scope="module")
def embedder(settings):
    return load_embedder(settings)


def test_chunks_follow_headings_overlap_and_keep_code_blocks(settings):
    chunks = Chunker(settings.chunk_chars, settings.chunk_overlap_chars).split(PIPELINE_DOC)
    assert all(len(c.text) <= settings.chunk_chars for c in chunks)
    sections = [c.section for c in chunks]
    assert "Pipeline demo > Stages" in sections and "Pipeline demo > Agents" in sections
    # No heading is invented from the '#' comment inside the code block; the fence stays whole in one chunk.
    assert not any("not a heading" in s for s in sections)
    code = [c for c in chunks if "```groovy" in c.text]
    assert len(code) == 1 and code[0].text.count("```") == 2
    stage_chunks = [c.text for c in chunks if c.section == "Pipeline demo > Stages" and "A stage" in c.text]
    assert len(stage_chunks) >= 2
    assert any(a[-40:].strip() in b for a, b in itertools.pairwise(stage_chunks))  # consecutive chunks overlap
    assert all(c.url == PIPELINE_DOC.url and c.license == "CC-BY-SA-4.0" for c in chunks)
    assert "{\n  agent any\n  stages" in code[0].text  # the code's indentation survives the heading split


def test_chunks_keep_the_indentation_of_code_and_lists(settings):
    """YAML without its indentation is other YAML (or none): the passages and sources must show it as written."""
    doc = CorpusDocument(
        id="plugin:kubernetes-demo", url="https://plugins.jenkins.io/kubernetes/", title="Kubernetes",
        source="plugin_docs", license="Apache-2.0",
        text=("# Kubernetes\n\n## Pod template\n\nLimits go under the container:\n\n"
              "```yaml\nspec:\n  containers:\n  - name: maven\n    resources:\n      limits:\n\n        cpu: 1\n"
              "\tmemory: 1Gi\n```\n\n- a list\n  - nested item\n\n  ## Indented heading\n\nAfter.\n"),
    )
    chunks = Chunker(settings.chunk_chars, settings.chunk_overlap_chars).split(doc)
    pod = next(c for c in chunks if "```yaml" in c.text)
    assert ("spec:\n  containers:\n  - name: maven\n    resources:\n      limits:\n\n        cpu: 1\n\tmemory: 1Gi"
            in pod.text)
    assert "- a list\n  - nested item" in pod.text
    # Up to three spaces before a heading still make it a heading; no mask character is left anywhere.
    assert [c.section for c in chunks][-1] == "Kubernetes > Indented heading"
    assert not any(mask in c.text for c in chunks for mask in "\u2420\u2409\u2060")


def _corpus(extra_text: str = "") -> list[CorpusDocument]:
    agent = CorpusDocument(id="docs:agents", url="https://www.jenkins.io/doc/book/using-jenkins/using-agents/",
                           title="Using agents", source="jenkins_docs", license="CC-BY-SA-4.0",
                           text="# Using agents\n\nAgents run builds on other machines over SSH or inbound TCP."
                                + extra_text)
    cred = CorpusDocument(id="plugin:credentials", url="https://plugins.jenkins.io/credentials/", title="Credentials",
                          source="plugin_docs", license="MIT",
                          text="# Credentials\n\nStore passwords, SSH keys and tokens for jobs to use.")
    return [PIPELINE_DOC, agent, cred]


def test_incremental_rebuild_embeds_only_changed_documents(tmp_path: Path, settings, embedder):
    out = tmp_path / "index"
    first = build_index(_corpus(), out, settings, embedder)
    assert first.embedded_chunks == first.chunks > 3 and not first.unchanged

    # Unchanged corpus and settings: the manifest alone says so, the vectors are not read.
    (out / EMBEDDINGS).rename(tmp_path / "vectors.npy")
    again = build_index(_corpus(), out, settings, embedder)
    assert again.unchanged and again.corpus_sha256 == first.corpus_sha256
    (tmp_path / "vectors.npy").rename(out / EMBEDDINGS)

    changed = build_index(_corpus(" Inbound agents connect with a secret."), out, settings, embedder)
    assert changed.embedded_chunks == 1 and changed.reused_chunks == changed.chunks - 1
    assert changed.corpus_sha256 != first.corpus_sha256

    index = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True)
    hits = index.search("How do agents connect to the controller?", 2)
    assert hits[0].chunk.url == "https://www.jenkins.io/doc/book/using-jenkins/using-agents/"
    assert "secret" in hits[0].chunk.text


def test_a_rebuild_with_new_chunking_reuses_the_vectors_of_unchanged_passages(tmp_path: Path, settings, embedder,
                                                                               monkeypatch):
    """A change of splitting logic re-chunks every document, but a passage whose embedded text is the same keeps
    its vector: the full index's 28k passages took 6-20 minutes to embed again for nothing."""
    import numpy as np

    from jenkins_assistant.inference.retrieval import builder
    from jenkins_assistant.inference.retrieval.index import read_chunks, read_manifest

    out = tmp_path / "index"
    first = build_index(_corpus(), out, settings, embedder)
    vectors = np.load(out / EMBEDDINGS)

    # The other splitter recorded a field per chunk that this version does not know: the index is still read.
    lines = (out / CHUNKS).read_text(encoding="utf-8").splitlines()
    (out / CHUNKS).write_text("".join(json.dumps({**json.loads(line), "opened_by": None}) + "\n" for line in lines),
                              encoding="utf-8")
    assert [chunk.text for chunk in read_chunks(out)] == [json.loads(line)["text"] for line in lines]
    monkeypatch.setattr(builder, "SPLITTER", "a splitter that records more about the same passages")
    resplit = build_index(_corpus(), out, settings, embedder)
    assert not resplit.unchanged and resplit.embedded_chunks == 0 and resplit.reused_chunks == first.chunks
    assert read_manifest(out)["splitter"] == "a splitter that records more about the same passages"
    assert np.array_equal(np.load(out / EMBEDDINGS), vectors)

    # Other chunk sizes: only the passages that come out the same are reused, and every vector is its text's.
    smaller = settings.model_copy(update={"chunk_chars": 300})
    rechunked = build_index(_corpus(), out, smaller, embedder)
    assert 0 < rechunked.reused_chunks < rechunked.chunks
    assert rechunked.embedded_chunks + rechunked.reused_chunks == rechunked.chunks
    chunks = read_chunks(out)
    fresh = embedder.embed([chunk.embedding_text for chunk in chunks])
    assert np.allclose(np.load(out / EMBEDDINGS), fresh, atol=1e-4)


def test_index_built_with_another_embedding_model_is_refused(tmp_path: Path, settings, embedder):
    from jenkins_assistant.common.errors import FailedPrecondition

    out = tmp_path / "index"
    build_index(_corpus(), out, settings, embedder)

    class OtherModel:
        name, backend, dim = "other/model", "sentence-transformers", 384

    with pytest.raises(FailedPrecondition, match="built with"):
        RetrievalIndex(out, OtherModel(), faiss_threads=1, hybrid=False)


def test_recall_at_5_on_the_sample_index(sample_index: Path):
    assert len(QUESTIONS) >= 30
    settings = RetrievalSettings(embedding_threads=1)
    embedder = load_embedder(settings)
    served = RetrievalIndex(sample_index, embedder, 1, settings.hybrid, settings.keyword_weight, settings.rrf_k)
    other = RetrievalIndex(sample_index, embedder, 1, not settings.hybrid, settings.keyword_weight, settings.rrf_k)
    served_recall, misses = recall_at_5(served)
    other_recall, _ = recall_at_5(other)
    mode = "hybrid" if settings.hybrid else "dense"
    other_mode = "dense" if settings.hybrid else "hybrid"
    print(f"\nrecall_at_5={served_recall:.3f} ({mode}, served)\nrecall_at_5_{other_mode}={other_recall:.3f}")
    print("misses:\n  " + "\n  ".join(misses))
    assert served_recall >= 0.8


def test_join_overlapping_drops_the_repeated_text():
    from jenkins_assistant.inference.retrieval.index import join_overlapping

    assert join_overlapping("A stage groups steps. It runs", "It runs on an agent.") == \
        "A stage groups steps. It runs on an agent."
    assert join_overlapping("First part.", "Second part.") == "First part.\nSecond part."


def test_a_passage_extends_into_the_following_chunks_of_its_section(tmp_path: Path, settings, embedder):
    from jenkins_assistant.inference.retrieval.index import join_overlapping

    out = tmp_path / "index"
    build_index(_corpus(), out, settings, embedder)
    plain = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True)
    stage_chunks = [c for c in plain.chunks if c.section == "Pipeline demo > Stages"]
    assert len(stage_chunks) >= 3

    extended = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True, neighbors=1)
    question = "What does a stage group?"
    first_plain, first = plain.search(question, 1)[0], extended.search(question, 1)[0]
    assert first.chunk.id == first_plain.chunk.id and first.chunk.url == first_plain.chunk.url
    position = next(i for i, c in enumerate(plain.chunks) if c.id == first.chunk.id)
    following = plain.chunks[position + 1]
    if following.section == first.chunk.section:
        # The next chunk's text is appended once, without the characters the chunker repeated.
        assert first.chunk.text == join_overlapping(first_plain.chunk.text, following.text)
        assert first.chunk.text.endswith(following.text) and first.chunk.text != first_plain.chunk.text
    else:
        assert first.chunk.text == first_plain.chunk.text

    # A chunk already appended to a better passage is not given again: every text is distinct and no passage
    # crosses into another section or document.
    hits = extended.search(question, 4)
    assert len(hits) == 4 and len({h.chunk.id for h in hits}) == 4
    for hit in hits:
        own = [c for c in plain.chunks if c.doc_id == hit.chunk.doc_id and c.section == hit.chunk.section]
        assert any(c.text in hit.chunk.text for c in own)


def test_a_passage_that_better_passages_already_hold_is_skipped(tmp_path: Path, settings, embedder):
    # The installation guides repeat their setup wizard section word for word; five of one golden question's six
    # passages were that paragraph from five pages.
    wizard = ("## Unlocking Jenkins\n\nThe Jenkins console log shows the initial administrator password, also "
              "stored in secrets/initialAdminPassword in the Jenkins home directory. Enter it in the setup wizard.\n")
    guides = [CorpusDocument(id=f"docs:install-{system}", url=f"https://www.jenkins.io/doc/book/installing/{system}/",
                             title=f"Installing on {system}", source="jenkins_docs", license="CC-BY-SA-4.0",
                             text=f"# Installing on {system}\n\n{wizard}")
              for system in ("linux", "macos", "windows")]
    reset = CorpusDocument(id="docs:reset", url="https://www.jenkins.io/doc/book/security/reset-admin-password/",
                           title="Reset the administrator password", source="jenkins_docs", license="CC-BY-SA-4.0",
                           text="# Reset the administrator password\n\nSet useSecurity to false in config.xml and "
                                "restart Jenkins to sign in without the administrator password.")
    out = tmp_path / "index"
    build_index(guides + [reset], out, settings, embedder)
    question = "Where is the initial administrator password of a new Jenkins?"

    repeats = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True, max_repeat=1.0)
    assert all(hit.chunk.doc_id.startswith("docs:install-") for hit in repeats.search(question, 3))

    distinct = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True, max_repeat=0.8)
    hits = distinct.search(question, 3)
    # The best-ranked copy stays, the reset page moves up into the freed slot, and nothing else is left to serve.
    assert hits[0].chunk.doc_id == repeats.search(question, 1)[0].chunk.doc_id
    assert [hit.chunk.doc_id for hit in hits[1:]] == ["docs:reset"]


def test_word_ngrams_ignore_line_breaks_and_markup():
    from jenkins_assistant.inference.retrieval.index import word_ngrams

    assert word_ngrams("**Note:**\n- The console log\nshows it.") == word_ngrams("Note: the console log shows it")
    assert word_ngrams("") == {()}
    assert len(word_ngrams(" ".join(f"w{n}" for n in range(10)))) == 3


def _chat_corpus(rare_installs: int) -> list[CorpusDocument]:
    """Two plugins' chat steps, the rarely installed one worded closer to the question, their update center records,
    a core step and a documentation page."""
    def step(plugin_id: str, command: str, title: str, text: str) -> CorpusDocument:
        return CorpusDocument(
            id=f"jenkins_docs:pipeline-steps/{plugin_id}/{command}",
            url=f"https://www.jenkins.io/doc/pipeline/steps/{plugin_id}/#{command.lower()}",
            title=f"{command}: {title} (Pipeline step)", source="jenkins_docs", license="CC-BY-SA-4.0",
            text=f"# {command}\n\n{text}", metadata={"plugin_id": plugin_id, "step": command})

    def record(plugin_id: str, installs: int | None) -> CorpusDocument:
        return CorpusDocument(
            id=f"plugin_docs:update-center/{plugin_id}", url=f"https://plugins.jenkins.io/{plugin_id}/",
            title=f"{plugin_id} plugin", source="plugin_docs", license="MIT", tags=["update-center", "plugin"],
            text=f"# {plugin_id} plugin\n\nIts current version is 1.0.",
            metadata={"plugin_id": plugin_id} | ({} if installs is None else {"installs": str(installs)}))

    return [
        step("rare-chat", "rareChatSend", "Send a chat message", "Sends a chat message to a room when a build is fixed."),
        step("slack", "slackSend", "Send a Slack message", "Posts a message to a Slack channel, e.g. when a build is fixed."),
        step("gone-chat", "goneChatSend", "Send an IRC message", "Posted to an IRC channel."),
        step("unrecorded", "unrecordedSend", "Send a mail", "Mails the team."),
        step("core", "echo", "Print to the log", "Writes text to the console log."),
        PIPELINE_DOC,
        record("rare-chat", rare_installs), record("slack", 37856), record("gone-chat", None),
    ]


def test_chunks_know_the_installs_of_their_plugin(tmp_path: Path, settings, embedder):
    out = tmp_path / "index"
    first = build_index(_chat_corpus(rare_installs=12), out, settings, embedder)
    installs = {chunk.doc_id.rsplit("/", 1)[-1]: chunk.plugin_installs
                for chunk in RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True).chunks}
    assert installs["rareChatSend"] == installs["rare-chat"] == 12
    assert installs["slackSend"] == installs["slack"] == 37856
    # A plugin the update center no longer distributes has no installs; core and documentation pages are no plugin's,
    # and a plugin whose record the corpus lacks has no known count.
    assert installs["goneChatSend"] == installs["gone-chat"] == 0
    assert installs["echo"] is None and installs["docs:pipeline-demo"] is None and installs["unrecordedSend"] is None

    # New install counts are a new corpus: the chunks are rewritten, their vectors reused.
    again = build_index(_chat_corpus(rare_installs=50_000), out, settings, embedder)
    assert again.corpus_sha256 != first.corpus_sha256 and again.embedded_chunks == 0
    rare = [c for c in RetrievalIndex(out, embedder, 1, True).chunks if c.doc_id.endswith("rareChatSend")]
    assert rare[0].plugin_installs == 50_000

    # Without the update center's records nothing knows its installs, and the prior is off.
    without = build_index([doc for doc in _chat_corpus(12) if "update-center" not in doc.id], tmp_path / "plain",
                          settings, embedder)
    plain = RetrievalIndex(tmp_path / "plain", embedder, 1, True, plugin_prior=0.5)
    assert without.chunks and all(c.plugin_installs is None for c in plain.chunks)
    assert not plain.ranks_by_installs


def test_a_rarely_installed_plugin_ranks_below_a_common_one(tmp_path: Path, settings, embedder):
    out = tmp_path / "index"
    build_index(_chat_corpus(rare_installs=12), out, settings, embedder)
    question = "How do I send a chat message when a build is fixed?"

    by_text = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True, plugin_prior=0.0)
    first, second = (hit.chunk.doc_id for hit in by_text.search(question, 2))
    assert (first, second) == ("jenkins_docs:pipeline-steps/rare-chat/rareChatSend",
                               "jenkins_docs:pipeline-steps/slack/slackSend")

    with_prior = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True, plugin_prior=0.5)
    hits = with_prior.search(question, 20)
    ranked = [hit.chunk.doc_id for hit in hits]
    assert ranked[0] == second and ranked.index(first) > 0
    # The most installed plugin keeps its score, the documentation page too; the rare plugin keeps
    # 1 - 0.5 x (1 - log 13 / log 37857) of its score.
    scores, plain_scores = ({hit.chunk.doc_id: hit.score for hit in found} for found in (hits, by_text.search(question, 20)))
    assert scores[second] == pytest.approx(plain_scores[second])
    assert scores[first] == pytest.approx(plain_scores[first] * (1 - 0.5 * (1 - np.log(13) / np.log(37857))))


def _cli_corpus() -> list[CorpusDocument]:
    """Pages that talk about disabling the Jenkins CLI at length, and the system properties page, whose one entry
    names the property a question asks about among others in the same words."""
    talk = [CorpusDocument(id=f"docs:cli-{n}", url=f"https://www.jenkins.io/doc/book/managing/cli-{n}/",
                           title=f"Jenkins CLI {n}", source="jenkins_docs", license="CC-BY-SA-4.0",
                           text=f"# Jenkins CLI {n}\n\n" + "What does the Jenkins CLI do when it is disabled? " * 6)
            for n in range(4)]
    entries = "".join(f"##### name: {name}\n\n**Default**: `false`\n\n{text}\n\n" for name, text in (
        ("hudson.model.ParametersAction.keepUndefinedParameters", "Keeps parameters a job does not define."),
        ("jenkins.CLI.disabled", "Turns off the old remoting-based CLI endpoint."),
        ("hudson.TcpSlaveAgentListener.hostName", "The host name inbound agents connect to."),
    ))
    properties = CorpusDocument(id="docs:system-properties", url="https://www.jenkins.io/doc/book/managing/system-properties/",
                                title="System properties", source="jenkins_docs", license="CC-BY-SA-4.0",
                                text=f"# System properties\n\n{entries}")
    step = CorpusDocument(id="jenkins_docs:pipeline-steps/bumblebee/runTest",
                          url="https://www.jenkins.io/doc/pipeline/steps/bumblebee/#runtest",
                          title="runTest: Run a test (Pipeline step)", source="jenkins_docs", license="CC-BY-SA-4.0",
                          text="# runTest\n\n**`retryCount`** (int, optional): how often a failed test is run again.")
    return talk + [properties, step]


def test_a_name_the_ranking_misses_gets_a_passage_that_holds_it(tmp_path: Path, settings, embedder):
    out = tmp_path / "index"
    build_index(_cli_corpus(), out, settings, embedder)
    ranked = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True, named_passages=0)
    named = RetrievalIndex(out, embedder, faiss_threads=1, hybrid=True, named_passages=2)
    question = "What does `jenkins.CLI.disabled` do?"

    before = ranked.search(question, 3)
    # The premise: the property's own entry ranks below pages that repeat the question's words.
    assert not any("jenkins.cli.disabled" in hit.chunk.text.lower() for hit in before)
    after = named.search(question, 3)
    assert [hit.chunk.id for hit in after[:2]] == [hit.chunk.id for hit in before[:2]]
    assert after[2].named == "jenkins.CLI.disabled" and "remoting-based CLI" in after[2].chunk.text
    assert after[2].chunk.doc_id == "docs:system-properties" and not any(hit.named for hit in after[:2])

    # A name no chunk holds changes nothing (the prompt then says that no passage mentions it); neither does a name the
    # question ties to a step that only another step's parameter has.
    for other in ("What does `jenkins.model.Jenkins.autoScaleExecutors` do?",
                  "What is the default of the retryCount option of the sh step?"):
        assert [hit.chunk.id for hit in named.search(other, 3)] == [hit.chunk.id for hit in ranked.search(other, 3)]
    # The first passage is never given up, and none at all when the setting is 0.
    assert [hit.chunk.id for hit in named.search(question, 1)] == [hit.chunk.id for hit in ranked.search(question, 1)]
