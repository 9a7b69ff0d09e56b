"""The further Jenkins knowledge folders of ../shared/data, as corpus documents.

Beside the jenkins.io docs, blog and plugin docs (`local_sources.iter_local_documents`), ../shared/data holds:

* `jenkins-pipeline-steps/jenkins-data.json`: the Pipeline Steps Reference (one document per step, naming its
  plugin and every parameter; the declarative sections and directives; the Pipeline environment variables),
* `jenkins-update-center/update-center.json`: one document per plugin (version, required core, dependencies,
  deprecation, security warnings written out as sentences), per removed plugin that has warnings or a
  deprecation notice, and one for the security warnings of Jenkins core,
* `jenkins-plugins-more/`: READMEs, docs and inline field help of 525 more plugins (`iter_plugin_docs`, as for
  `jenkins-plugins`),
* `jenkins-core-text/`: Jenkins core's inline field help (`help*.html`),
* `jenkins-plugins-wiki/`: the archived wiki pages of plugins that have no current docs in the two plugin folders.

`iter_shared_documents(shared_data)` yields every source present (a missing folder is skipped with a log line), in
a stable order, with ids unique across sources. Each loader can be used on its own.
"""

from __future__ import annotations

import html
import json
import logging
import re
import textwrap
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path

from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.scraper.html_clean import html_to_markdown, tidy_markdown
from jenkins_assistant.scraper.local_sources import (
    DOCS_LICENSE,
    HELP_FILE,
    HTML_COMMENT,
    PLUGIN_SITE,
    SITE,
    _clean_plugin_markdown,
    demote_headings,
    help_document_text,
    iter_local_documents,
    iter_plugin_docs,
    plugin_display_name,
    read_plugin_manifest,
)

log = logging.getLogger(__name__)

# Provenance of each folder when its README does not say (the READMEs name `github.com/<repo> @ <commit>`).
DEFAULT_PROVENANCE = {
    "jenkins-pipeline-steps": ("Maarti/JenkinsDocExtension", "83709a27b2e04811bca5767250045a3f3ce837a3"),
    "jenkins-update-center": ("zhcode-fun/jenkins-update-center-cn", "47f9926a0940e7c74b1ae03abca46c92d9545b06"),
    "jenkins-core-text": ("jenkinsci/jenkins", "ff9430ee1dc6e319349a488650d914444fe141f3"),
    "jenkins-plugins-wiki": ("jenkins-infra/plugins-wiki-docs", "85f6e7611c376eb3e82ea5f8d083ea2083ae5ba8"),
}
README_SOURCE = re.compile(r"github\.com/([\w.-]+/[\w.-]+) @ ([0-9a-f]{40})")


def folder_provenance(root: Path) -> tuple[str, str]:
    """(repository, commit) a shared-data folder was taken from, as its README names them."""
    readme = Path(root) / "README.md"
    if readme.is_file():
        match = README_SOURCE.search(readme.read_text(encoding="utf-8", errors="replace"))
        if match:
            return match.group(1), match.group(2)
    return DEFAULT_PROVENANCE.get(Path(root).name, ("", ""))


HTML_TAG = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*\b[^>]*>")
HTML_BLOCK = re.compile(r"<(table|ul|ol|dl|pre|blockquote|div)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)


def mixed_markdown(text: str) -> str:
    """Markdown of text that is mostly markdown with HTML left in (the steps reference, update-center excerpts):
    HTML blocks (tables, lists, pre) and paragraphs holding tags go through html_to_markdown, the rest is kept.
    Headings become bold lines: a description is part of a section, not a section of its own."""
    text = (text or "").replace("\r\n", "\n")
    text = HTML_COMMENT.sub("", text)
    text = re.sub(r"^[ \t]+$", "", text, flags=re.MULTILINE)
    pieces: list[str] = []
    position = 0
    for block in HTML_BLOCK.finditer(text):
        pieces.extend(_paragraphs(text[position:block.start()]))
        pieces.append(html_to_markdown(block.group(0)))
        position = block.end()
    pieces.extend(_paragraphs(text[position:]))
    markdown = "\n\n".join(piece for piece in pieces if piece.strip())
    return tidy_markdown(demote_headings(markdown))


def _paragraphs(text: str) -> list[str]:
    out = []
    for paragraph in re.split(r"\n\s*\n", text):
        if HTML_TAG.search(paragraph):
            out.append(html_to_markdown(paragraph))
        else:
            out.append(html.unescape(textwrap.dedent(paragraph.strip("\n")).strip()))
    return out


# --------------------------------------------------------------------------------------------
# Pipeline Steps Reference
# --------------------------------------------------------------------------------------------

STEPS_FILE = "jenkins-data.json"
STEPS_REPO_PATH = "src/jenkins-data.json"  # where the collector repository keeps it
STEPS_SITE = f"{SITE}/doc/pipeline/steps/"
ENV_VARS_URL = f"{SITE}/doc/book/pipeline/jenkinsfile/#using-environment-variables"


def _parameter_markdown(parameter: dict) -> str:
    """One parameter as a paragraph (or several): name, type, required or not, description, allowed values."""
    kind = str(parameter.get("type") or "").strip() or "unknown type"
    required = "optional" if parameter.get("isOptional", True) else "required"
    text = f"**`{parameter.get('name', '')}`** ({kind}, {required})"
    description = mixed_markdown(parameter.get("description", ""))
    if description:
        text += f": {description}"
    values = [str(v) for v in parameter.get("values") or [] if str(v).strip()]
    if values:
        text += ("\n\nValues: " if kind == "Enum" else "\n\nAllowed values: ") + ", ".join(f"`{v}`" for v in values)
    return text


def _step_title(step: dict, plugin_name: str) -> str:
    return f"{step.get('name') or step['command']} (Pipeline step, {plugin_name})"


def iter_pipeline_steps(steps_root: Path) -> Iterator[CorpusDocument]:
    """One document per step of the Pipeline Steps Reference (plus declarative sections and directives and the
    Pipeline environment variables). Each names the step, its function and its plugin in the title, so every
    chunk of it does too."""
    root = Path(steps_root)
    data = json.loads((root / STEPS_FILE).read_text(encoding="utf-8"))
    repository, commit = folder_provenance(root)
    snapshot = str(data.get("date", ""))[:10]
    plugins = {p["id"].lower(): p for p in data.get("plugins", []) if p.get("id")}

    def provenance(entry: str) -> dict[str, str]:
        return {"repository": repository, "commit": commit, "path": STEPS_REPO_PATH, "entry": entry,
                "snapshot": snapshot}

    steps = sorted(data.get("instructions", []), key=lambda s: (s.get("plugin", ""), s.get("url", "")))
    for step in steps:
        url = step.get("url") or ""
        command = step.get("command") or ""
        if not url.startswith(STEPS_SITE) or not command:
            log.warning("pipeline step without a reference URL or command: %r", step.get("name"))
            continue
        page, _, anchor = url.removeprefix(STEPS_SITE).partition("/#")
        plugin = plugins.get(step.get("plugin", "").lower(), {})
        # The reference page keeps the plugin id's case (Office-365-Connector); the JSON's ids are lower-cased.
        plugin_id = page.strip("/") or plugin.get("id", "")
        plugin_name = plugin_display_name(plugin.get("name", ""), plugin_id)
        title = _step_title(step, plugin_name)
        intro = (f"`{command}` is a Pipeline step of the {plugin_name} (plugin id `{plugin_id}`), from the Pipeline "
                 f"Steps Reference ({snapshot} snapshot).")
        if re.fullmatch(r"\w+", command):
            intro += f" Call it in a Jenkinsfile as `{command}(...)`."
        lines = [f"# {title}", "", intro]
        description = mixed_markdown(step.get("description", ""))
        if description:
            lines += ["", description]
        parameters = step.get("parameters") or []
        if parameters:
            lines += ["", f"## Parameters of the `{command}` step", ""]
            lines += "\n\n".join(_parameter_markdown(p) for p in parameters).split("\n")
        else:
            lines += ["", f"The `{command}` step takes no parameters."]
        yield CorpusDocument(
            id=f"jenkins_docs:pipeline-steps/{plugin_id}/{anchor or command}",
            url=url,
            title=title,
            text=tidy_markdown("\n".join(lines)) + "\n",
            source="jenkins_docs",
            license=DOCS_LICENSE,
            tags=["pipeline-steps", plugin_id, command],
            metadata={**provenance(anchor or command), "plugin_id": plugin_id, "step": command},
        )

    for kind, entries in (("section", data.get("sections", [])), ("directive", data.get("directives", []))):
        for entry in sorted(entries, key=lambda e: e.get("name", "")):
            name = entry.get("name", "")
            if not name:
                continue
            title = f"{name} ({kind} of Declarative Pipeline)"
            lines = [f"# {title}", "", mixed_markdown(entry.get("description", ""))]
            required = "optional" if entry.get("isOptional", True) else "required"
            lines += ["", f"- The `{name}` {kind} is {required}."]
            if entry.get("allowed"):
                lines.append(f"- Allowed: {entry['allowed']}.")
            inner = [str(i) for i in entry.get("innerInstructions") or []]
            if inner:
                lines.append(f"- Options inside `{name}`: " + ", ".join(f"`{i}`" for i in inner) + ".")
            yield CorpusDocument(
                id=f"jenkins_docs:pipeline-syntax/{kind}/{name}",
                url=entry.get("url") or f"{SITE}/doc/book/pipeline/syntax/#{name}",
                title=title,
                text=tidy_markdown("\n".join(lines)) + "\n",
                source="jenkins_docs",
                license=DOCS_LICENSE,
                tags=["pipeline-steps", "declarative", kind],
                metadata=provenance(f"{kind}s/{name}"),
            )

    variables = data.get("environmentVariables") or []
    if variables:
        title = "Environment variables available in a Pipeline (env)"
        lines = [f"# {title}", "", ("Jenkins sets these environment variables for every Pipeline; read them as "
                                    "`env.NAME` in Groovy or `$NAME` in a shell step."), ""]
        lines += [f"- **`{v['name']}`**: {mixed_markdown(v.get('description', ''))}" for v in variables if v.get("name")]
        yield CorpusDocument(
            id="jenkins_docs:pipeline-steps/environment-variables",
            url=ENV_VARS_URL,
            title=title,
            text=tidy_markdown("\n".join(lines)) + "\n",
            source="jenkins_docs",
            license=DOCS_LICENSE,
            tags=["pipeline-steps", "environment-variables"],
            metadata=provenance("environmentVariables"),
        )


# --------------------------------------------------------------------------------------------
# Update center
# --------------------------------------------------------------------------------------------

UPDATE_CENTER_FILE = "update-center.json"
# The repository is MIT; the metadata itself is the Jenkins project's (README of jenkins-update-center).
UPDATE_CENTER_LICENSE = "MIT"
UPDATE_CENTER_LICENSE_NOTE = ("repository licence MIT (zhcode-fun/jenkins-update-center-cn, a mirror of the "
                              "official update center); the metadata is published by the Jenkins project")
CORE_ADVISORIES_URL = f"{SITE}/security/advisories/"


@lru_cache(maxsize=4)
def _load_update_center(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    # Jenkins downloads it as JSONP: `updateCenter.post(` JSON `);`.
    start, end = text.find("{"), text.rfind("}")
    return json.loads(text[start:end + 1])


def load_update_center(update_center_root: Path) -> dict:
    return _load_update_center(Path(update_center_root).resolve() / UPDATE_CENTER_FILE)


def _date(timestamp: str) -> str:
    return str(timestamp or "")[:10]


def _rfc3339(timestamp: str) -> str | None:
    match = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})", str(timestamp or ""))
    return f"{match.group(1)}Z" if match else None


def version_affected(version: str, warning: dict) -> bool | None:
    """Whether a version matches one of a warning's affected-version patterns (Java regexes; None if unreadable)."""
    readable = False
    for affected in warning.get("versions") or []:
        try:
            if re.fullmatch(affected.get("pattern", ""), version):
                return True
            readable = True
        except re.error:
            continue
    return False if readable else None


def _affected_versions(warning: dict) -> str:
    ranges = []
    for affected in warning.get("versions") or []:
        first, last = affected.get("firstVersion"), affected.get("lastVersion")
        if last and first:
            ranges.append(f"{first} to {last}")
        elif last:
            ranges.append(f"{last} and earlier")
        elif affected.get("pattern"):
            ranges.append(f"versions matching `{affected['pattern']}`")
    return "; ".join(ranges) or "not stated"


def _warning_sentence(warning: dict, current: str) -> str:
    message = " ".join(str(warning.get("message", "")).split()).rstrip(".")
    sentence = (f"- **{warning.get('id', '')}**: {message}. "
                f"Affected versions: {_affected_versions(warning)}.")
    if current:
        affected = version_affected(current, warning)
        if affected:
            sentence += f" The current version {current} is still affected (no fixed release yet)."
        elif affected is False:
            sentence += f" The current version {current} is not affected."
    if warning.get("url"):
        sentence += f" Advisory: {warning['url']}"
    return sentence


def _warnings_section(subject: str, warnings: list[dict], current: str) -> list[str]:
    if not warnings:
        return []
    open_ones = [w for w in warnings if current and version_affected(current, w)]
    lines = ["", f"## Security warnings of the {subject}", ""]
    summary = f"The Jenkins security team published {len(warnings)} security warning(s) for the {subject}."
    if current:
        if open_ones:
            summary += (f" The current version {current} is still vulnerable to "
                        + ", ".join(w.get("id", "") for w in open_ones) + ".")
        else:
            summary += f" The current version {current} is not affected by any of them: update to it to be safe."
    lines += [summary, ""]
    lines += [_warning_sentence(w, current) for w in warnings]
    return lines


def _plugin_record_markdown(plugin_id: str, plugin: dict | None, warnings: list[dict], deprecation: dict | None,
                            generated: str) -> tuple[str, str]:
    """(title, markdown) of one plugin's update-center record."""
    name = plugin_display_name((plugin or {}).get("title", ""), plugin_id)
    title = f"{name} ({plugin_id}): version, requirements, dependencies and security"
    lines = [f"# {title}", ""]
    if plugin is None:
        lines.append(f"The {name} (plugin id `{plugin_id}`) is no longer distributed by the Jenkins update center "
                     f"(as of {generated}): it cannot be installed from the plugin manager.")
        current = ""
    else:
        current = str(plugin.get("version", ""))
        excerpt = mixed_markdown(plugin.get("excerpt", ""))
        if excerpt:
            lines += [f"The {name} (plugin id `{plugin_id}`): {excerpt}", ""]
        facts = [f"The {name} (id `{plugin_id}`) requires Jenkins {plugin.get('requiredCore', '?')} or newer."]
        released = _date(plugin.get("releaseTimestamp", ""))
        facts.append(f"Its current version is {current}" + (f", released on {released}" if released else "")
                     + f" (update center of {generated}).")
        if plugin.get("compatibleSinceVersion"):
            facts.append(f"Versions before {plugin['compatibleSinceVersion']} are not compatible with the current "
                         "settings format (read the changelog before upgrading).")
        popularity = plugin.get("popularity")
        if isinstance(popularity, int) and popularity > 0:
            facts.append(f"It is installed on about {popularity:,} Jenkins controllers.")
        lines += [" ".join(facts), ""]
        labels = [str(label) for label in plugin.get("labels") or []]
        if labels:
            lines.append("- Categories (labels): " + ", ".join(labels))
        if plugin.get("scm"):
            lines.append(f"- Source code: {plugin['scm']}")
        trackers = [t.get("viewUrl") for t in plugin.get("issueTrackers") or [] if t.get("viewUrl")]
        if trackers:
            lines.append("- Issues: " + ", ".join(trackers))
        developers = [d.get("name") or d.get("developerId") for d in plugin.get("developers") or []]
        developers = [d for d in developers if d]
        if developers:
            lines.append("- Maintainers: " + ", ".join(developers))
        if "adopt-this-plugin" in labels:
            lines.append(f"- The {name} is up for adoption: it is looking for a new maintainer.")
        dependencies = plugin.get("dependencies") or []
        required = [d for d in dependencies if not d.get("optional")]
        optional = [d for d in dependencies if d.get("optional")]
        # A paragraph, not a section: most records then stay one chunk. Names only (the minimum versions are
        # long build ids that no question asks about; the plugin manager resolves them).
        lines.append("")
        if not dependencies:
            lines.append(f"The {name} depends on no other plugin.")
        if required:
            lines.append(f"Dependencies: the {name} needs these plugins (installed with it): "
                         + ", ".join(d["name"] for d in required) + ".")
        if optional:
            lines += [""] if required else []
            lines.append(f"Optional dependencies of the {name} (features that work when these plugins are installed): "
                         + ", ".join(d["name"] for d in optional) + ".")
    if deprecation:
        lines += ["", f"## The {name} is deprecated", "",
                  (f"The {name} is deprecated: do not use it in new setups. "
                   f"The reason and the replacement are explained at {deprecation.get('url', '')}")]
    lines += _warnings_section(name, warnings, current)
    return title, tidy_markdown("\n".join(lines)) + "\n"


def iter_update_center(update_center_root: Path) -> Iterator[CorpusDocument]:
    """One document per plugin of the update center (and per removed plugin with warnings or a deprecation), plus
    one for Jenkins core's security warnings."""
    root = Path(update_center_root)
    data = load_update_center(root)
    repository, commit = folder_provenance(root)
    generated = _date(data.get("generationTimestamp", ""))
    plugins: dict[str, dict] = data.get("plugins") or {}
    deprecations: dict[str, dict] = data.get("deprecations") or {}
    by_plugin: dict[str, list[dict]] = {}
    core_warnings: list[dict] = []
    for warning in data.get("warnings") or []:
        if warning.get("type") == "core":
            core_warnings.append(warning)
        elif warning.get("name"):
            by_plugin.setdefault(warning["name"], []).append(warning)
    base_metadata = {"repository": repository, "commit": commit, "path": UPDATE_CENTER_FILE,
                     "license_note": UPDATE_CENTER_LICENSE_NOTE, "generated": generated}
    for plugin_id in sorted(set(plugins) | set(by_plugin) | set(deprecations)):
        plugin = plugins.get(plugin_id)
        warnings = by_plugin.get(plugin_id, [])
        title, markdown = _plugin_record_markdown(plugin_id, plugin, warnings, deprecations.get(plugin_id), generated)
        tags = ["update-center", "plugin", plugin_id]
        if warnings:
            tags.append("security-warning")
        if plugin_id in deprecations:
            tags.append("deprecated")
        if plugin is None:
            tags.append("removed")
        metadata = {**base_metadata, "entry": f"plugins/{plugin_id}", "plugin_id": plugin_id}
        if plugin is not None:
            metadata.update(version=str(plugin.get("version", "")), required_core=str(plugin.get("requiredCore", "")))
            if isinstance(plugin.get("popularity"), int):
                # Retrieval ranks a plugin's pages by how many controllers run it (the index builder reads this).
                metadata["installs"] = str(plugin["popularity"])
        if warnings:
            metadata["security_warnings"] = ",".join(w.get("id", "") for w in warnings)
        yield CorpusDocument(
            id=f"plugin_docs:update-center/{plugin_id}",
            url=f"{PLUGIN_SITE}/{plugin_id}/",
            title=title,
            text=markdown,
            source="plugin_docs",
            license=UPDATE_CENTER_LICENSE,
            tags=tags,
            updated_at=_rfc3339((plugin or {}).get("releaseTimestamp", "")),
            metadata=metadata,
        )
    if core_warnings:
        core = data.get("core") or {}
        current = str(core.get("version", ""))
        title = "Security warnings of Jenkins core (the Jenkins controller itself)"
        lines = [f"# {title}", "", (f"The newest Jenkins weekly release in the update center of {generated} is "
                                    f"{current}. Security advisories of Jenkins core: {CORE_ADVISORIES_URL}")]
        lines += _warnings_section("Jenkins core", core_warnings, current)
        yield CorpusDocument(
            id="jenkins_docs:update-center/core-security-warnings",
            url=CORE_ADVISORIES_URL,
            title=title,
            text=tidy_markdown("\n".join(lines)) + "\n",
            source="jenkins_docs",
            license=UPDATE_CENTER_LICENSE,
            tags=["update-center", "core", "security-warning"],
            metadata={**base_metadata, "entry": "warnings (type core)",
                      "security_warnings": ",".join(w.get("id", "") for w in core_warnings)},
        )


def update_center_titles(update_center_root: Path | None) -> dict[str, str]:
    """Plugin id -> title ("Git", "Pipeline: SCM Step"), empty when the update center is absent."""
    if update_center_root is None or not (Path(update_center_root) / UPDATE_CENTER_FILE).is_file():
        return {}
    plugins = load_update_center(update_center_root).get("plugins") or {}
    return {plugin_id: str(p.get("title") or "") for plugin_id, p in plugins.items()}


# --------------------------------------------------------------------------------------------
# More plugins, Jenkins core field help
# --------------------------------------------------------------------------------------------


def manifest_plugins(plugins_root: Path | None) -> set[str]:
    if plugins_root is None or not (Path(plugins_root) / "MANIFEST.tsv").is_file():
        return set()
    return {row["plugin"] for row in read_plugin_manifest(Path(plugins_root))}


def iter_more_plugin_docs(more_root: Path, plugins_root: Path | None = None,
                          update_center_root: Path | None = None) -> Iterator[CorpusDocument]:
    """jenkins-plugins-more through iter_plugin_docs (skipping plugins jenkins-plugins already has)."""
    yield from iter_plugin_docs(Path(more_root), plugin_titles=update_center_titles(update_center_root),
                                skip_plugins=manifest_plugins(plugins_root), tags=("plugins-more",))


CORE_LICENSE = "MIT"


def iter_core_help(core_root: Path) -> Iterator[CorpusDocument]:
    """Jenkins core's inline field help (`help*.html`). Messages.properties are left out: 110 KB of one-line
    messages with `{0}` placeholders and no context, noise for retrieval."""
    root = Path(core_root)
    repository, commit = folder_provenance(root)
    paths = sorted(p for p in root.rglob("help*.html") if HELP_FILE.match(p.name))
    for path in paths:
        relative = path.relative_to(root).as_posix()
        title, markdown, extra = help_document_text("Jenkins core", "", relative,
                                                    path.read_text(encoding="utf-8", errors="replace"))
        if not markdown:
            continue
        yield CorpusDocument(
            id=f"jenkins_docs:core-help/{relative}",
            url=f"https://github.com/{repository}/blob/{commit or 'HEAD'}/{relative}",
            title=title,
            text=markdown,
            source="jenkins_docs",
            license=CORE_LICENSE,
            tags=["core", "field-help"],
            metadata={"repository": repository, "commit": commit, "path": relative, **extra},
        )


# --------------------------------------------------------------------------------------------
# Archived plugin wiki
# --------------------------------------------------------------------------------------------

# The README of jenkins-plugins-wiki: the repository has no licence file, the pages come from the Jenkins wiki the
# project published under CC BY-SA; record NOASSERTION and credit "Jenkins project wiki" when quoting. Included on
# those terms: the licence stays NOASSERTION, metadata says where each page comes from.
WIKI_LICENSE = "NOASSERTION"
WIKI_CREDIT = "Jenkins project wiki"
WIKI_MIN_CHARS = 80  # a handful of exported pages are empty or one line


def iter_plugin_wiki(wiki_root: Path, update_center_root: Path | None = None,
                     current_docs: Iterable[str] = ()) -> Iterator[CorpusDocument]:
    """Archived wiki pages of plugins without current docs (current_docs: ids covered by jenkins-plugins and
    jenkins-plugins-more). With the update center at hand, only plugins it still distributes are kept (a
    removed plugin's wiki page describes something that cannot be installed; its update-center record says so)."""
    root = Path(wiki_root)
    repository, commit = folder_provenance(root)
    titles = update_center_titles(update_center_root)
    covered = {plugin_id.lower() for plugin_id in current_docs}
    for path in sorted(root.glob("*/README.md")):
        plugin_id = path.parent.name
        if plugin_id.lower() in covered:
            continue
        if titles and plugin_id not in titles:
            continue
        relative = path.relative_to(root).as_posix()
        markdown = _clean_plugin_markdown(path.read_text(encoding="utf-8", errors="replace"),
                                          f"https://github.com/{repository}", commit, relative)
        if len(markdown.strip()) < WIKI_MIN_CHARS:
            continue
        name = plugin_display_name(titles.get(plugin_id, ""), plugin_id)
        title = f"{name} ({plugin_id}): archived Jenkins wiki page"
        text = (f"# {title}\n\n> From the retired Jenkins wiki (archived when it closed): it may describe an old "
                f"version of the {name}; the plugin page {PLUGIN_SITE}/{plugin_id}/ has the current state.\n\n"
                + markdown)
        yield CorpusDocument(
            id=f"plugin_docs:wiki/{plugin_id}",
            url=f"{PLUGIN_SITE}/{plugin_id}/" if titles else f"https://github.com/{repository}/blob/{commit}/{relative}",
            title=title,
            text=tidy_markdown(text) + "\n",
            source="plugin_docs",
            license=WIKI_LICENSE,
            tags=["plugin", plugin_id, "plugins-wiki"],
            metadata={"plugin_id": plugin_id, "repository": repository, "commit": commit, "path": relative,
                      "source_url": f"https://github.com/{repository}/blob/{commit}/{relative}",
                      "credit": WIKI_CREDIT, "license_note": "Jenkins wiki content (CC BY-SA), no licence file "
                      "in the repository: NOASSERTION"},
        )


# --------------------------------------------------------------------------------------------
# Everything in ../shared/data
# --------------------------------------------------------------------------------------------

# Folder of each source, in the order iter_shared_documents yields them.
SHARED_FOLDERS = ("jenkins-docs", "jenkins-blog", "jenkins-plugins", "jenkins-plugins-more", "jenkins-pipeline-steps",
                  "jenkins-update-center", "jenkins-core-text", "jenkins-plugins-wiki")


def iter_shared_source(shared_data: Path, folder: str) -> Iterator[CorpusDocument]:
    """The documents of one folder of ../shared/data (an absent folder yields nothing)."""
    shared = Path(shared_data)
    root = shared / folder
    if not root.is_dir():
        log.info("shared data: %s is absent, skipped", root)
        return

    def present(name: str) -> Path | None:
        return shared / name if (shared / name).is_dir() else None

    if folder == "jenkins-docs":
        yield from iter_local_documents(docs_root=root)
    elif folder == "jenkins-blog":
        yield from iter_local_documents(blog_root=root)
    elif folder == "jenkins-plugins":
        yield from iter_local_documents(plugins_root=root)
    elif folder == "jenkins-plugins-more":
        yield from iter_more_plugin_docs(root, present("jenkins-plugins"), present("jenkins-update-center"))
    elif folder == "jenkins-pipeline-steps":
        yield from iter_pipeline_steps(root)
    elif folder == "jenkins-update-center":
        yield from iter_update_center(root)
    elif folder == "jenkins-core-text":
        yield from iter_core_help(root)
    elif folder == "jenkins-plugins-wiki":
        current = manifest_plugins(present("jenkins-plugins")) | manifest_plugins(present("jenkins-plugins-more"))
        yield from iter_plugin_wiki(root, present("jenkins-update-center"), current)
    else:
        raise ValueError(f"unknown shared data folder {folder!r}; expected one of {SHARED_FOLDERS}")


def iter_shared_documents(shared_data: Path, folders: Iterable[str] = SHARED_FOLDERS) -> Iterator[CorpusDocument]:
    """Every document of the given folders of ../shared/data (default: all), folder by folder, in a stable order."""
    for folder in folders:
        yield from iter_shared_source(shared_data, folder)
