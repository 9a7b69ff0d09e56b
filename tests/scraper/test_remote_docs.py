"""Production inputs: git checkouts of the docs/blog and the plugin docs download (loopback only)."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from jenkins_assistant.common.records import read_documents_jsonl
from jenkins_assistant.scraper.config import ScrapeSettings
from jenkins_assistant.scraper.core import run_scrape
from tests.scraper.test_remote_sources import tree_snapshot

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org"}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def make_origin(path: Path, files: dict[str, str]) -> str:
    path.mkdir(parents=True)
    git("init", "--quiet", "--initial-branch=main", cwd=path)
    git("config", "uploadpack.allowfilter", "true", cwd=path)
    commit(path, files, "initial")
    return f"file://{path}"


def commit(path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git("add", "-A", cwd=path)
    git("commit", "--quiet", "-m", message, cwd=path)


def offline(tmp_path: Path, **overrides) -> ScrapeSettings:
    options = {"output_dir": tmp_path / "out", "state_dir": tmp_path / "state", "discourse_url": "",
               "stackexchange_url": "", "docs_git_url": "", "blog_git_url": "", "plugins_update_center_url": "",
               "requests_per_second": 100}
    options.update(overrides)
    return ScrapeSettings(**options)


def test_docs_and_blog_come_from_git_and_an_unchanged_remote_is_a_no_op(tmp_path, shared_data):
    docs = shared_data / "jenkins-docs" / "docs"
    docs_url = make_origin(tmp_path / "docs-origin", {
        "docs/user-docs/antora.yml": (docs / "user-docs" / "antora.yml").read_text(),
        "docs/user-docs/modules/pipeline/pages/syntax.adoc":
            (docs / "user-docs/modules/pipeline/pages/syntax.adoc").read_text(),
    })
    post = "2024/06/2024-06-11-require-java-17.adoc"
    blog_url = make_origin(tmp_path / "site-origin", {
        f"content/blog/{post}": (shared_data / "jenkins-blog" / "content" / "blog" / post).read_text(),
        "content/doc/book/unrelated.adoc": "= Not part of the blog\n",
    })
    settings = offline(tmp_path, docs_git_url=docs_url, blog_git_url=blog_url)
    first = run_scrape(settings, sources=["jenkins_docs", "jenkins_blog"])
    documents = {doc.id: doc for doc in read_documents_jsonl(first.dataset.documents_path)}
    assert documents["jenkins_docs:user-docs/pipeline/syntax"].url == "https://www.jenkins.io/doc/book/pipeline/syntax/"
    assert documents["jenkins_blog:2024/06/2024-06-11-require-java-17"].url == \
        "https://www.jenkins.io/blog/2024/06/11/require-java-17/"
    # The blog clone is sparse: only content/blog is checked out.
    site = settings.state_dir / "sources" / "jenkins.io"
    assert (site / "content" / "blog").is_dir() and not (site / "content" / "doc").exists()

    before = tree_snapshot(settings.output_dir, settings.state_dir / "local")
    second = run_scrape(settings, sources=["jenkins_docs", "jenkins_blog"])
    assert not second.written
    assert tree_snapshot(settings.output_dir, settings.state_dir / "local") == before

    commit(tmp_path / "docs-origin", {"docs/user-docs/modules/pipeline/pages/syntax.adoc":
                                      "= Pipeline syntax\n\nRewritten upstream.\n"}, "edit")
    third = run_scrape(settings, sources=["jenkins_docs", "jenkins_blog"])
    assert third.written
    docs_now = {doc.id: doc for doc in read_documents_jsonl(third.dataset.documents_path)}
    assert "Rewritten upstream." in docs_now["jenkins_docs:user-docs/pipeline/syntax"].text


def test_unreachable_repository_is_unavailable(tmp_path):
    from jenkins_assistant.common.errors import Unavailable

    settings = offline(tmp_path, docs_git_url=f"file://{tmp_path}/missing-repo")
    with pytest.raises(Unavailable, match="jenkins_docs: git clone failed"):
        run_scrape(settings, sources=["jenkins_docs"])


def _content(path: Path, repo_path: str) -> dict:
    text = path.read_text()
    return {"name": Path(repo_path).name, "path": repo_path, "sha": f"sha-{len(text)}", "type": "file",
            "encoding": "base64", "content": base64.b64encode(text.encode()).decode()}


def test_plugin_docs_of_the_most_installed_plugins_are_fetched(tmp_path, shared_data, replay_server):
    plugins = shared_data / "jenkins-plugins"
    replay_server.set_json("/current/update-center.actual.json", {"connectionCheckUrl": "https://www.google.com/",
        "id": "default", "plugins": {
            "git": {"name": "git", "title": "Git", "popularity": 300000, "scm": "https://github.com/jenkinsci/git-plugin"},
            "ansicolor": {"name": "ansicolor", "title": "AnsiColor", "popularity": 200000,
                          "scm": "https://github.com/jenkinsci/ansicolor-plugin"},
            "rarely-used": {"name": "rarely-used", "title": "Rare", "popularity": 12,
                            "scm": "https://github.com/jenkinsci/rarely-used-plugin"},
        }})
    replay_server.set_json("/repos/jenkinsci/git-plugin/readme", _content(plugins / "git" / "README.adoc", "README.adoc"))
    replay_server.set_json("/repos/jenkinsci/git-plugin/license", {"license": {"key": "mit", "spdx_id": "MIT"}})
    replay_server.set_json("/repos/jenkinsci/ansicolor-plugin/readme",
                           _content(plugins / "ansicolor" / "README.md", "README.md"))
    usage = tmp_path / "usage.md"
    usage.write_text("# Usage\n\nWrap the steps in `ansiColor('xterm') { ... }`.\n")
    replay_server.set_json("/repos/jenkinsci/ansicolor-plugin/contents/docs", [
        {"name": "usage.md", "path": "docs/usage.md", "type": "file"},
        {"name": "logo.png", "path": "docs/logo.png", "type": "file"}])
    replay_server.set_json("/repos/jenkinsci/ansicolor-plugin/contents/docs/usage.md", _content(usage, "docs/usage.md"))
    settings = offline(tmp_path, plugins_update_center_url=replay_server.url + "/current/update-center.actual.json",
                       github_api_url=replay_server.url, plugins_top_n=2)
    first = run_scrape(settings, sources=["plugin_docs"])
    documents = {doc.id: doc for doc in read_documents_jsonl(first.dataset.documents_path)}
    assert set(documents) == {"plugin_docs:git/README.adoc", "plugin_docs:ansicolor/README.md",
                              "plugin_docs:ansicolor/docs/usage.md"}
    git_doc = documents["plugin_docs:git/README.adoc"]
    assert git_doc.url == "https://plugins.jenkins.io/git/" and git_doc.license == "MIT"
    assert git_doc.title == "Git Plugin" and "## Introduction" in git_doc.text
    assert documents["plugin_docs:ansicolor/README.md"].license == "NOASSERTION"  # the licence API said 404
    assert "ansiColor('xterm')" in documents["plugin_docs:ansicolor/docs/usage.md"].text
    assert replay_server.requests_to("/repos/jenkinsci/rarely-used-plugin") == []  # not in the top 2

    before = len(replay_server.log)
    second = run_scrape(settings, sources=["plugin_docs"])
    assert not second.written
    assert {seen.status for seen in replay_server.log[before:]} <= {304, 404}
    shutil.rmtree(settings.state_dir / "sources")  # a lost volume only costs a full download
    assert not run_scrape(settings, sources=["plugin_docs"]).written
