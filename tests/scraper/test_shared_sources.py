"""The further sources of ../shared/data through their loaders: Pipeline Steps Reference, update center, more
plugin docs and field help, Jenkins core field help, the archived plugin wiki (each skipped when its folder is
absent)."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.scraper.local_sources import help_file_subject, plugin_license
from jenkins_assistant.scraper.shared_sources import (
    iter_shared_documents,
    iter_shared_source,
    mixed_markdown,
    version_affected,
)

RAW_HTML = re.compile(r"</?(table|tbody|tr|td|div|em|blockquote|ul|li|span)\b[^>]*>", re.IGNORECASE)


def raw_html(markdown: str) -> bool:
    """HTML tags left in prose (tags quoted in inline code or fenced blocks are text)."""
    prose = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)
    return bool(RAW_HTML.search(re.sub(r"`[^`\n]*`", "", prose)))


def load(shared_data: Path, folder: str) -> dict[str, CorpusDocument]:
    if not (shared_data / folder).is_dir():
        pytest.skip(f"{folder} is not in the shared data")
    documents = list(iter_shared_source(shared_data, folder))
    by_id = {doc.id: doc for doc in documents}
    assert len(by_id) == len(documents), "document ids must be unique"
    for doc in documents:
        assert doc.title and doc.text.strip() and doc.url.startswith("https://"), doc.id
        assert doc.license and doc.metadata.get("repository") and doc.metadata.get("commit"), doc.id
    return by_id


@pytest.fixture(scope="module")
def steps(shared_data: Path) -> dict[str, CorpusDocument]:
    return load(shared_data, "jenkins-pipeline-steps")


@pytest.fixture(scope="module")
def update_center(shared_data: Path) -> dict[str, CorpusDocument]:
    return load(shared_data, "jenkins-update-center")


@pytest.fixture(scope="module")
def more_plugins(shared_data: Path) -> dict[str, CorpusDocument]:
    return load(shared_data, "jenkins-plugins-more")


def test_pipeline_step_document_names_step_plugin_and_parameters(steps):
    sh = steps["jenkins_docs:pipeline-steps/workflow-durable-task-step/sh-shell-script"]
    assert sh.url == "https://www.jenkins.io/doc/pipeline/steps/workflow-durable-task-step/#sh-shell-script"
    assert sh.title == "sh: Shell Script (Pipeline step, Pipeline: Nodes and Processes plugin)"
    assert sh.source == "jenkins_docs" and sh.license == "CC-BY-SA-4.0"
    assert sh.metadata["repository"] == "Maarti/JenkinsDocExtension"
    assert sh.metadata["path"] == "src/jenkins-data.json"
    assert sh.metadata["plugin_id"] == "workflow-durable-task-step" and sh.metadata["step"] == "sh"
    assert "pipeline-steps" in sh.tags
    assert sh.text.startswith("# sh: Shell Script (Pipeline step, Pipeline: Nodes and Processes plugin)\n")
    assert "plugin id `workflow-durable-task-step`" in sh.text
    assert "## Parameters of the `sh` step" in sh.text
    assert "**`script`** (String, required): Runs a Bourne shell script" in sh.text
    assert "**`returnStdout`** (boolean, optional): If checked, standard output" in sh.text
    # Allowed values are listed; the reference's URL keeps the plugin id's case.
    checkout = steps["jenkins_docs:pipeline-steps/workflow-scm-step/checkout-check-out-from-version-control"]
    assert "Allowed values: `$class: 'AWSCodePipelineSCM'`" in checkout.text and "`$class: 'GitSCM'`" in checkout.text
    office = [doc for doc in steps.values() if doc.id.startswith("jenkins_docs:pipeline-steps/Office-365-Connector/")]
    assert office and office[0].url.startswith("https://www.jenkins.io/doc/pipeline/steps/Office-365-Connector/#")


def test_pipeline_steps_cover_the_reference_and_declarative_syntax(steps):
    step_docs = [doc for doc in steps.values() if "step" in doc.metadata]
    assert len(step_docs) == 1425
    assert len({doc.metadata["plugin_id"] for doc in step_docs}) == 588
    when = steps["jenkins_docs:pipeline-syntax/directive/when"]
    assert when.url == "https://www.jenkins.io/doc/book/pipeline/syntax/#when"
    assert "Allowed: Inside a `stage` directive." in when.text and "`anyOf`" in when.text
    agent = steps["jenkins_docs:pipeline-syntax/section/agent"]
    assert "The `agent` section is required." in agent.text
    env = steps["jenkins_docs:pipeline-steps/environment-variables"]
    assert "**`BUILD_NUMBER`**" in env.text
    # HTML left in the scraped descriptions is converted: tables become markdown tables, headings bold lines.
    assert not [doc.id for doc in steps.values() if raw_html(doc.text)]
    sonargraph = next(doc for doc in steps.values() if "Sonargraph Explorer" in doc.text)
    assert "| Sonargraph Explorer | Changing virtual models is not supported" in sonargraph.text
    assert "\n### Licensing" not in sonargraph.text and "**Licensing**" in sonargraph.text


def test_update_center_record_of_git(update_center):
    git = update_center["plugin_docs:update-center/git"]
    assert git.url == "https://plugins.jenkins.io/git/"
    assert git.title.startswith("Git plugin (git)")
    assert git.source == "plugin_docs" and git.license == "MIT"
    assert "Jenkins project" in git.metadata["license_note"]
    assert git.metadata["repository"] == "zhcode-fun/jenkins-update-center-cn"
    assert git.metadata["required_core"] == "2.504.3" and git.metadata["version"] == "5.10.1"
    assert git.metadata["installs"] == "267611"  # the update center's popularity, which retrieval ranks by
    assert {"update-center", "git", "security-warning"} <= set(git.tags)
    text = git.text
    assert "The Git plugin (id `git`) requires Jenkins 2.504.3 or newer." in text
    assert "Its current version is 5.10.1, released on 2026-03-25" in text
    assert "This plugin integrates [Git](https://git-scm.com/) with Jenkins." in text  # excerpt HTML converted
    assert "Source code: https://github.com/jenkinsci/git-plugin" in text
    assert re.search(r"needs these plugins \(installed with it\): [^\n]*git-client, ", text)
    assert re.search(r"Optional dependencies of the Git plugin [^\n]*configuration-as-code", text)
    assert not re.search(r"needs these plugins [^\n]*configuration-as-code", text)
    assert "## Security warnings of the Git plugin" in text
    assert ("- **SECURITY-528**: CSRF vulnerability in Git plugin allows capturing credentials. Affected versions: "
            "3.3.1 and earlier; 3.4.0-beta-1 and earlier. The current version 5.10.1 is not affected.") in text
    assert "The current version 5.10.1 is not affected by any of them" in text
    assert "https://jenkins.io/security/advisory/2017-07-10/" in text


def test_update_center_open_warnings_removed_plugins_and_core(update_center):
    anchor = update_center["plugin_docs:update-center/AnchorChain"]
    assert "The current version 1.0 is still vulnerable to SECURITY-3529." in anchor.text
    assert "up for adoption" in anchor.text
    # Removed plugins with warnings or a deprecation notice keep a record saying so.
    dotci = update_center["plugin_docs:update-center/DotCi"]
    assert "removed" in dotci.tags and "deprecated" in dotci.tags
    assert "no longer distributed by the Jenkins update center" in dotci.text
    assert "installs" not in dotci.metadata
    assert "## The DotCi plugin is deprecated" in dotci.text
    core = update_center["jenkins_docs:update-center/core-security-warnings"]
    assert core.url == "https://www.jenkins.io/security/advisories/" and "core-2_44" in core.text
    plugins = [doc for doc in update_center.values() if "plugin" in doc.tags and "removed" not in doc.tags]
    assert len(plugins) == 2082


def test_version_affected_reads_the_warning_patterns():
    warning = {"versions": [{"lastVersion": "3.3.1", "pattern": r"([012][.].*|3[.][012]|3[.]3[.][01])(|[-.].*)"}]}
    assert version_affected("3.3.1", warning) is True
    assert version_affected("3.4.0", warning) is False
    assert version_affected("1.0", {"versions": [{"pattern": "(unclosed"}]}) is None


def test_more_plugin_docs_and_field_help(more_plugins, shared_data):
    regex = more_plugins[
        "plugin_docs:scm-api/src/main/resources/jenkins/scm/impl/trait/RegexSCMHeadFilterTrait/help-regex.html"]
    assert regex.url == "https://plugins.jenkins.io/scm-api/"
    assert regex.title == "SCM API plugin (scm-api) field help: RegexSCMHeadFilterTrait › regex"
    assert regex.metadata["help_class"] == "jenkins.scm.impl.trait.RegexSCMHeadFilterTrait"
    assert regex.metadata["help_field"] == "regex"
    assert regex.metadata["repository"] == "jenkinsci/scm-api-plugin"
    assert regex.license == "NOASSERTION"  # MANIFEST: "see repo"
    assert "[Java regular expression](https://docs.oracle.com/" in regex.text
    assert "The MIT License" not in regex.text  # the licence header comment of the help file is dropped
    assert {"field-help", "plugins-more"} <= set(regex.tags)
    # A LICENSE file's first line in the MANIFEST maps to its SPDX id.
    assert more_plugins["plugin_docs:workflow-api/README.md"].license == "MIT"
    assert more_plugins["plugin_docs:jackson2-api/README.md"].license == "Apache-2.0"
    assert not any(raw_html(doc.text) for doc in more_plugins.values() if "field-help" in doc.tags)
    # Plugins already in jenkins-plugins are not loaded twice.
    if (shared_data / "jenkins-plugins").is_dir():
        assert not any(doc.id.startswith("plugin_docs:git/") for doc in more_plugins.values())


def test_plugin_license_column_values():
    assert plugin_license("MIT (per README)")[0] == "MIT"
    assert plugin_license("Apache-2.0 (per README header)")[0] == "Apache-2.0"
    assert plugin_license("The MIT License (MIT) (LICENSE)")[0] == "MIT"
    assert plugin_license("Apache License, Version 2.0 (LICENSE)")[0] == "Apache-2.0"
    assert plugin_license("GNU GENERAL PUBLIC LICENSE (LICENSE)")[0] == "NOASSERTION"  # no version given
    assert plugin_license("Copyright (c) 2015 Checkmarx (LICENSE.txt)")[0] == "NOASSERTION"
    assert plugin_license("see repo") == ("NOASSERTION", "see repo")


def test_help_file_subject():
    assert help_file_subject("core/src/main/resources/hudson/model/Slave/help-remoteFS.html") == \
        ("hudson.model.Slave", "remoteFS")
    assert help_file_subject("src/main/resources/hudson/plugins/git/GitSCM/help.html") == ("hudson.plugins.git.GitSCM", "")
    assert help_file_subject("war/src/main/webapp/help/tools/help-label.html") == ("help/tools", "label")


def test_core_field_help(shared_data):
    core = load(shared_data, "jenkins-core-text")
    assert len(core) == 105
    remote_fs = core["jenkins_docs:core-help/core/src/main/resources/hudson/model/Slave/help-remoteFS.html"]
    assert remote_fs.url == ("https://github.com/jenkinsci/jenkins/blob/ff9430ee1dc6e319349a488650d914444fe141f3/"
                             "core/src/main/resources/hudson/model/Slave/help-remoteFS.html")
    assert remote_fs.title == "Jenkins core field help: Slave › remoteFS"
    assert remote_fs.license == "MIT" and remote_fs.source == "jenkins_docs"
    assert "`/var/jenkins`" in remote_fs.text and "<code>" not in remote_fs.text
    assert not any(doc.id.endswith(".properties") for doc in core.values())


def test_plugin_wiki_pages_only_where_no_current_docs(shared_data):
    wiki = load(shared_data, "jenkins-plugins-wiki")
    anchor = wiki["plugin_docs:wiki/AnchorChain"]
    assert anchor.url == "https://plugins.jenkins.io/AnchorChain/"
    assert anchor.license == "NOASSERTION" and anchor.metadata["credit"] == "Jenkins project wiki"
    assert anchor.metadata["repository"] == "jenkins-infra/plugins-wiki-docs"
    assert anchor.title == "AnchorChain plugin (AnchorChain): archived Jenkins wiki page"
    assert "From the retired Jenkins wiki" in anchor.text and "add some links from a text file to the sidebar" in anchor.text
    assert "plugins-wiki" in anchor.tags
    # JDK_Parameter_Plugin has current docs in jenkins-plugins-more: its wiki page is left out.
    if (shared_data / "jenkins-plugins-more").is_dir():
        assert "plugin_docs:wiki/JDK_Parameter_Plugin" not in wiki


def test_mixed_markdown_keeps_markdown_and_converts_html():
    text = "Use `sh`.\n\n \n<em>(Optional)</em> name &gt; value\n\n### Notes\n\n```bash\n# a comment\n```"
    assert mixed_markdown(text) == "Use `sh`.\n\n*(Optional)* name > value\n\n**Notes**\n\n```bash\n# a comment\n```"


def test_absent_folders_are_skipped_with_a_log_line(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="jenkins_assistant.scraper.shared_sources"):
        assert list(iter_shared_documents(tmp_path)) == []
    assert "jenkins-update-center is absent, skipped" in caplog.text


def test_sample_for_the_test_index_is_fixed(shared_data):
    from jenkins_assistant.inference.index_cli import sample_shared_data_documents

    folders = [f for f in ("jenkins-pipeline-steps", "jenkins-core-text") if (shared_data / f).is_dir()]
    if not folders:
        pytest.skip("no pipeline steps or core help in the shared data")
    keep = "https://www.jenkins.io/doc/pipeline/steps/workflow-durable-task-step/#sh-shell-script"
    first = sample_shared_data_documents(shared_data, {keep}, distractor_chars=10_000, sources=folders)
    again = sample_shared_data_documents(shared_data, {keep}, distractor_chars=10_000, sources=folders)
    assert [doc.id for doc in first] == [doc.id for doc in again]
    assert len({doc.id for doc in first}) == len(first) > 2
    if "jenkins-pipeline-steps" in folders:
        assert any(doc.url == keep for doc in first)
    for folder in folders:  # distractors stay within the budget of each folder
        kind = "pipeline-steps" if folder == "jenkins-pipeline-steps" else "core"
        distractors = [doc for doc in first if kind in doc.tags and doc.url != keep]
        assert 0 < sum(len(doc.text) for doc in distractors) <= 10_000
