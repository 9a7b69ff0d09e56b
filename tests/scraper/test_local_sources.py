"""The real jenkins.io docs, blog and plugin docs of ../shared/data through the converter."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from jenkins_assistant.common.records import CorpusDocument, read_documents_jsonl, write_documents_jsonl
from jenkins_assistant.scraper.local_sources import iter_local_documents


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> dict[str, CorpusDocument]:
    documents = list(
        iter_local_documents(
            shared_data / "jenkins-docs", shared_data / "jenkins-blog", shared_data / "jenkins-plugins"
        )
    )
    by_id = {doc.id: doc for doc in documents}
    assert len(by_id) == len(documents), "document ids must be unique"
    return by_id


def test_every_source_is_ingested_with_licence_and_public_url(corpus):
    counts = {kind: sum(doc.source == kind for doc in corpus.values())
              for kind in ("jenkins_docs", "jenkins_blog", "plugin_docs")}
    # 860 .adoc files minus partials, nav files and template pages; 358 blog posts; 108 plugin files.
    assert counts["jenkins_docs"] > 700
    assert counts["jenkins_blog"] == 358
    assert counts["plugin_docs"] == 108
    for doc in corpus.values():
        assert doc.url.startswith(("https://www.jenkins.io/", "https://plugins.jenkins.io/")), doc.id
        assert doc.title and doc.text.strip(), doc.id
        assert doc.license, doc.id
        if doc.source != "plugin_docs":
            assert doc.license == "CC-BY-SA-4.0"


def test_docs_page_title_url_includes_and_attributes(corpus):
    docker = corpus["jenkins_docs:user-docs/installing-jenkins/docker"]
    assert docker.title == "Docker"
    assert docker.url == "https://www.jenkins.io/doc/book/installing-jenkins/docker/"
    assert docker.tags == ["user-docs", "installing-jenkins"]
    # include::user-docs:installing-jenkins:partial$_installation_requirements.adoc[] is resolved ...
    assert "Minimum hardware requirements" in docker.text
    assert "include::" not in docker.text
    assert "_installation_requirements.adoc" in docker.metadata["includes"]
    # ... and {jenkins-stable} is substituted inside the included `subs="attributes+"` source block.
    assert "FROM jenkins/jenkins:2.504.3-jdk17" in docker.text
    assert "```bash\ndocker network create jenkins\n```" in docker.text
    # xref:user-docs:pipeline:tour/getting-started.adoc#prerequisites[...] becomes a public link.
    assert "[Guided Tour prerequisites](https://www.jenkins.io/doc/pipeline/tour/getting-started/#prerequisites)" \
        in docker.text
    # [CAUTION] example blocks are admonitions, rendered as block quotes.
    assert "> **Caution:**" in docker.text


def test_source_block_languages_and_headings(corpus):
    syntax = corpus["jenkins_docs:user-docs/pipeline/syntax"]
    assert syntax.title == "Pipeline syntax"
    assert syntax.text.startswith("# Pipeline syntax\n")
    assert "\n## Declarative Pipeline\n" in syntax.text
    assert "```groovy\npipeline {\n    /* insert Declarative Pipeline here */\n}\n```" in syntax.text
    # The `[pipeline]` block style of jenkins.io is Groovy too.
    docker_pipeline = corpus["jenkins_docs:user-docs/pipeline/docker"]
    assert re.search(r"```groovy\n// Declarative //\npipeline \{", docker_pipeline.text)
    # {plugin}docker-workflow[Docker Pipeline] is a plugins.jenkins.io link.
    assert "[Docker Pipeline](https://plugins.jenkins.io/docker-workflow)" in docker_pipeline.text


def test_definition_list_terms_are_bold_once(corpus):
    # `*Description*::` is a term the page emphasises itself; wrapped again it was `****Description****`.
    properties = corpus["jenkins_docs:user-docs/managing/system-properties"]
    assert "- **Description**: This property determines the behavior during the SetupWizard" in properties.text
    assert "***" not in properties.text
    managing = corpus["jenkins_docs:user-docs/managing/index"]
    assert "- **Credential Providers**: " in managing.text
    # A plain term is made bold, as before.
    scaling = corpus["jenkins_docs:user-docs/scaling/scaling-jenkins-on-kubernetes"]
    assert "- **Run builds in parallel**: " in scaling.text


def test_partial_from_partials_folder_is_included(corpus):
    page = corpus["jenkins_docs:user-docs/pipeline/getting-started"]
    assert "Blue Ocean will not receive further functionality updates." in page.text
    assert "blueocean/partials/blue-ocean-status.adoc" in page.metadata["includes"]


def test_component_urls(corpus):
    assert corpus["jenkins_docs:user-docs/ROOT/index"].url == "https://www.jenkins.io/doc/book/"
    assert corpus["jenkins_docs:user-docs/pipeline/tour/getting-started"].url == \
        "https://www.jenkins.io/doc/pipeline/tour/getting-started/"
    assert corpus["jenkins_docs:dev-docs/FIPS-140/index"].url == "https://www.jenkins.io/doc/developer/FIPS-140/"
    assert not any(doc_id.startswith("jenkins_docs:template/") for doc_id in corpus)


def test_blog_post_front_matter_and_url(corpus):
    post = corpus["jenkins_blog:2024/06/2024-06-11-require-java-17"]
    assert post.title == "Jenkins requires Java 17 or newer"
    # jenkins.io's own URL form (/blog/YYYY/MM/DD/slug/), as the posts link to each other; the vendored
    # index's different URL is kept as metadata.
    assert post.url == "https://www.jenkins.io/blog/2024/06/11/require-java-17/"
    assert post.metadata["index_url"] == "https://www.jenkins.io/blog/2024/06/01/2024-06-11-require-java-17/"
    assert post.tags == ["announcement", "core", "developer", "jenkins"]
    assert post.metadata["authors"] == "basil"
    assert post.updated_at == "2024-06-11T00:00:00Z"
    assert post.text.startswith("# Jenkins requires Java 17 or newer\n")
    assert "## Upgrading to Java 17 or 21" in post.text
    assert "image:" not in post.text


def test_plugin_docs_licence_and_page(corpus):
    git = corpus["plugin_docs:git/README.adoc"]
    assert git.url == "https://plugins.jenkins.io/git/"
    assert git.title == "Git Plugin"
    assert git.license == "NOASSERTION"  # MANIFEST says "see repo": no licence is invented
    assert git.metadata["repository"] == "jenkinsci/git-plugin"
    ansicolor = corpus["plugin_docs:ansicolor/README.md"]
    assert ansicolor.license == "MIT"
    assert corpus["plugin_docs:job-dsl/README.md"].license == "Apache-2.0"
    # Relative links of a README point into its repository at the recorded commit.
    k8s = corpus["plugin_docs:kubernetes/README.md"]
    assert "](https://github.com/jenkinsci/kubernetes-plugin/blob/" in k8s.text
    assert "![" not in k8s.text


def test_missing_include_is_dropped_with_a_warning(shared_data, caplog):
    with caplog.at_level(logging.WARNING):
        documents = [doc for doc in iter_local_documents(docs_root=shared_data / "jenkins-docs")
                     if doc.id == "jenkins_docs:user-docs/platform-information/upgrade-java-to-21"]
    assert len(documents) == 1
    assert "example$check-nodes-script.groovy" in caplog.text
    assert "include::" not in documents[0].text


def test_corpus_round_trips_through_jsonl(corpus, tmp_path):
    path = tmp_path / "documents.jsonl"
    written = write_documents_jsonl(path, corpus.values())
    assert written == len(corpus)
    again = {doc.id: doc for doc in read_documents_jsonl(path)}
    assert again["jenkins_docs:user-docs/pipeline/syntax"] == corpus["jenkins_docs:user-docs/pipeline/syntax"]
