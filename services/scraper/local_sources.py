"""Local Jenkins knowledge sources: the jenkins.io docs (Antora), the blog and plugin docs.

`iter_local_documents` is the entry point other services use (the inference index builder calls it
directly), so its name and signature are a contract:

    iter_local_documents(docs_root=None, blog_root=None, plugins_root=None) -> Iterator[CorpusDocument]

Each root is the folder of one source, laid out like the checkouts in ../shared/data:

* docs_root: a docs.jenkins.io checkout (the folder holding `docs/<component>/antora.yml`),
* blog_root: a folder holding `content/blog/**.adoc` (jenkins.io layout), optionally with the site's
  `blog-index.json` (metadata of the posts: title, date, tags, authors, summary),
* plugins_root: `<plugin-id>/<path in the plugin repository>` with a `MANIFEST.tsv` naming each
  file's repository, commit, public page and licence.

A root left as None is not ingested. Documents come out in a stable order (sorted paths).

`iter_plugin_docs` also reads `jenkins-plugins-more` (inline field help `help*.html` included). The other folders
of ../shared/data (Pipeline Steps Reference, update center, core field help, plugin wiki) and
`iter_shared_documents(shared_data)` over all of them are in `shared_sources`, re-exported here.
"""

from __future__ import annotations

import csv
import json
import logging
import posixpath
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.scraper.asciidoc import ConvertedPage, convert_asciidoc
from jenkins_assistant.scraper.html_clean import html_to_markdown, tidy_markdown

log = logging.getLogger(__name__)

SITE = "https://www.jenkins.io"
PLUGIN_SITE = "https://plugins.jenkins.io"
DOCS_LICENSE = "CC-BY-SA-4.0"

# Site attributes the jenkins.io build defines for every page (the docs reference them as {plugin}git[...]).
DEFAULT_SITE_ATTRIBUTES = {
    "plugin": f"{PLUGIN_SITE}/",
    "jira": "https://issues.jenkins.io/browse/",
    "jep": "https://github.com/jenkinsci/jep/tree/master/jep/",
    "jenkins-stable": "2.504.3",
    "jenkins-weekly": "2.516",
    "gitter": "https://app.gitter.im/#/room/",
    "security": f"{SITE}/security/",
}

# Where each Antora component is published on www.jenkins.io. None: not a page of the site.
COMPONENT_URL_PREFIX: dict[str, str | None] = {
    "user-docs": "/doc/book/",
    "dev-docs": "/doc/developer/",
    "tutorials": "/doc/tutorials/",
    "solutions": "/solutions/",
    "projects": "/projects/",
    "sigs": "/sigs/",
    "project": "/project/",
    "download": "/download/",
    "images": None,
    "template": None,
}
# Pages published outside their component's tree (the Guided Tour lives under /doc/pipeline/tour/).
URL_OVERRIDES = {("user-docs", "pipeline", "tour"): "/doc/pipeline/tour/"}
SKIPPED_MODULES = {"template"}

ANTORA_RESOURCE = re.compile(
    r"^(?:(?P<version>[^@:$]+)@)?(?:(?P<component>[^:$]*):)?(?:(?P<module>[^:$]*):)?(?:(?P<family>[a-z]+)\$)?(?P<path>.+)$"
)


def public_link(target: str, base: str = SITE) -> str:
    """A link target as a public URL: site-relative paths get the jenkins.io origin."""
    target = target.strip()
    if target.startswith("/"):
        return base + target
    return target


# --------------------------------------------------------------------------------------------
# jenkins.io documentation (Antora)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AntoraPage:
    component: str
    module: str
    relative: str  # page path inside pages/, without the .adoc suffix ("tour/getting-started")
    path: Path


class AntoraSite:
    """The docs checkout: finds pages and partials and computes each page's public URL."""

    def __init__(self, docs_root: Path) -> None:
        root = Path(docs_root)
        self.content_root = root / "docs" if (root / "docs").is_dir() else root
        self.components = sorted(p.parent.name for p in self.content_root.glob("*/antora.yml"))
        if not self.components:
            raise FileNotFoundError(f"no Antora components (*/antora.yml) under {self.content_root}")
        self._manifest = _read_manifest(root / "MANIFEST.tsv", key="path")

    def pages(self) -> list[AntoraPage]:
        found: list[AntoraPage] = []
        for component in self.components:
            if COMPONENT_URL_PREFIX.get(component, f"/{component}/") is None:
                continue
            for module_dir in sorted((self.content_root / component / "modules").glob("*")):
                if module_dir.name in SKIPPED_MODULES:
                    continue
                pages_dir = module_dir / "pages"
                for path in sorted(pages_dir.rglob("*.adoc")):
                    relative = path.relative_to(pages_dir).with_suffix("").as_posix()
                    # Files and folders starting with "_" are partials kept beside the pages.
                    if any(part.startswith("_") for part in relative.split("/")):
                        continue
                    found.append(AntoraPage(component, module_dir.name, relative, path))
        return found

    def page_url(self, component: str, module: str, relative: str) -> str | None:
        prefix = COMPONENT_URL_PREFIX.get(component, f"/{component}/")
        if prefix is None:
            return None
        parts = [p for p in relative.split("/") if p]
        if parts and parts[-1] == "index":
            parts.pop()
        if parts and (component, module, parts[0]) in URL_OVERRIDES:
            prefix = URL_OVERRIDES[(component, module, parts[0])]
            parts = parts[1:]
        elif module != "ROOT":
            parts.insert(0, module)
        path = prefix + "".join(part + "/" for part in parts)
        return SITE + path

    def resource_file(self, target: str, family: str, component: str, module: str, current: Path) -> Path | None:
        """Resolve an Antora resource id (or a path relative to the current file) to a file."""
        match = ANTORA_RESOURCE.match(target)
        if match is None:
            return None
        has_coordinates = match.group("component") is not None or match.group("family") is not None
        if not has_coordinates:
            relative_file = (current.parent / target).resolve()
            if relative_file.is_file():
                return relative_file
        target_component = match.group("component") or component
        target_module = match.group("module")
        if match.group("component") is not None and match.group("module") is None:
            # Two coordinates (`module:page`) mean module and page, in the current component.
            target_module, target_component = target_component, component
        target_module = target_module or (module if match.group("component") is None else "ROOT")
        resource_family = match.group("family") or family
        relative = match.group("path")
        module_dir = self.content_root / target_component / "modules" / target_module
        candidates = {
            "page": [module_dir / "pages" / relative],
            "partial": [module_dir / "partials" / relative, module_dir / "pages" / "_partials" / relative],
            "example": [module_dir / "examples" / relative],
            "attachment": [module_dir / "attachments" / relative],
        }.get(resource_family, [])
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        return None

    def xref(self, target: str, component: str, module: str, current_relative: str) -> tuple[str, str] | None:
        """(url, title) of an xref target such as `user-docs:pipeline:syntax.adoc#stages`."""
        page_part, _, fragment = target.partition("#")
        if not page_part:  # same-page anchor
            url = self.page_url(component, module, current_relative)
            return (f"{url}#{fragment}", fragment.replace("-", " ")) if url else None
        if not page_part.endswith(".adoc"):
            page_part += ".adoc"
        match = ANTORA_RESOURCE.match(page_part)
        if match is None:
            return None
        relative = match.group("path")
        target_component = match.group("component")
        target_module = match.group("module")
        if target_component is not None and target_module is None:
            target_module, target_component = target_component, None
        target_component = target_component or component
        if target_module is None or target_module == "":
            target_module = module if match.group("component") is None else "ROOT"
        if match.group("component") is None and target_module == module:
            # A page name without coordinates is relative to the referring page's folder.
            relative = posixpath.normpath(posixpath.join(posixpath.dirname(current_relative), relative))
        relative = relative.removesuffix(".adoc")
        url = self.page_url(target_component, target_module, relative)
        if url is None:
            return None
        path = self.content_root / target_component / "modules" / target_module / "pages" / (relative + ".adoc")
        title = _adoc_title(path) if path.is_file() else ""
        return (url + (f"#{fragment}" if fragment else ""), title)

    def provenance(self, path: Path) -> dict[str, str]:
        relative = path.relative_to(self.content_root.parent).as_posix()
        row = self._manifest.get(relative, {})
        meta = {"path": relative}
        if row.get("source_repo"):
            meta["repository"] = row["source_repo"]
        if row.get("source_commit"):
            meta["commit"] = row["source_commit"]
        return meta


@lru_cache(maxsize=4096)
def _adoc_title(path: Path) -> str:
    """The `= Title` of a page, read from its first lines only (used for xrefs without text)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for _, line in zip(range(40), handle):
            if line.startswith("= "):
                return line[2:].strip()
    return ""


def _read_manifest(path: Path, key: str) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as handle:
        return {row[key]: row for row in csv.DictReader(handle, delimiter="\t") if row.get(key)}


def _convert(text: str, path: Path, attributes: dict[str, str], site: AntoraSite | None, component: str,
             module: str, relative: str, link_base: str = SITE) -> ConvertedPage:
    def resolve_include(target: str, current: Path) -> Path | None:
        if site is not None:
            return site.resource_file(target, "page", component, module, current)
        candidate = (current.parent / target).resolve()
        return candidate if candidate.is_file() else None

    def resolve_xref(target: str) -> tuple[str, str] | None:
        # Outside an Antora site (blog posts, plugin READMEs) an xref has no page to point at.
        return site.xref(target, component, module, relative) if site is not None else None

    return convert_asciidoc(
        text,
        path,
        attributes=attributes,
        resolve_include=resolve_include,
        resolve_xref=resolve_xref,
        resolve_link=lambda target: public_link(target, link_base),
        html_to_markdown=html_to_markdown,
    )


def iter_docs(docs_root: Path, attributes: dict[str, str] | None = None) -> Iterator[CorpusDocument]:
    site = AntoraSite(docs_root)
    for page in site.pages():
        url = site.page_url(page.component, page.module, page.relative)
        if url is None:
            continue
        text = page.path.read_text(encoding="utf-8", errors="replace")
        front, body = split_front_matter(text)
        if front.get("layout") == "redirect":
            continue  # a stub that only forwards the reader to another page
        body = LEGACY_METADATA.sub(r"\1", body)
        converted = _convert(body, page.path, {**DEFAULT_SITE_ATTRIBUTES, **(attributes or {})}, site,
                             page.component, page.module, page.relative)
        for warning in converted.warnings:
            log.warning("%s", warning)
        if not converted.markdown.strip():
            continue
        metadata = site.provenance(page.path)
        metadata.update(component=page.component, module=page.module)
        if converted.includes:
            metadata["includes"] = ",".join(
                sorted(p.relative_to(site.content_root.parent).as_posix() for p in set(converted.includes)))
        tags = [page.component] + ([page.module] if page.module != "ROOT" else [])
        yield CorpusDocument(
            id=f"jenkins_docs:{page.component}/{page.module}/{page.relative}",
            url=url,
            title=converted.title or page.relative.rsplit("/", 1)[-1].replace("-", " ").capitalize(),
            text=converted.markdown,
            source="jenkins_docs",
            license=DOCS_LICENSE,
            tags=tags,
            metadata=metadata,
        )


# --------------------------------------------------------------------------------------------
# jenkins.io blog
# --------------------------------------------------------------------------------------------

# A few legacy pages put site metadata (`description: ...`, `tags:` lists) under the title, closed by `---`.
LEGACY_METADATA = re.compile(r"\A(= [^\n]*\n)\s*\n(?:[a-z_]+:[^\n]*\n(?:[ \t-][^\n]*\n)*)+---[ \t]*\n")
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
BLOG_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(.+)$")


def split_front_matter(text: str) -> tuple[dict, str]:
    """YAML front matter (jenkins.io writes keys both as `title:` and as `:title:`) and the body."""
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    raw = re.sub(r"^:([A-Za-z0-9_-]+):", r"\1:", match.group(1), flags=re.MULTILINE)
    try:
        data = yaml.safe_load(raw) or {}
    except yaml.YAMLError as exc:
        log.warning("unreadable front matter: %s", exc)
        data = {}
    return (data if isinstance(data, dict) else {}), text[match.end() :]


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(item).strip() for item in value if str(item).strip()]


def iter_blog(blog_root: Path, attributes: dict[str, str] | None = None) -> Iterator[CorpusDocument]:
    root = Path(blog_root)
    posts_dir = root / "content" / "blog" if (root / "content" / "blog").is_dir() else root
    index: dict[str, dict] = {}
    index_file = root / "blog-index.json"
    if index_file.is_file():
        for entry in json.loads(index_file.read_text(encoding="utf-8")):
            slug = entry.get("url", "").rstrip("/").rsplit("/", 1)[-1]
            if slug:
                index[slug] = entry
    manifest = _read_manifest(root / "MANIFEST.tsv", key="path")
    paths = sorted(posts_dir.rglob("*.adoc"))
    if not paths:
        raise FileNotFoundError(f"no blog posts (*.adoc) under {posts_dir}")
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        front, body = split_front_matter(text)
        entry = index.get(path.stem, {})
        name = BLOG_NAME.match(path.stem)
        date = str(front.get("date") or (f"{name[1]}-{name[2]}-{name[3]}" if name else "") or entry.get("date") or "")
        date = date[:10]
        # jenkins.io publishes `YYYY-MM-DD-slug.adoc` at /blog/YYYY/MM/DD/slug/ (the posts' own
        # cross-links use that form). The index of the vendored copy has other URLs (a day of 01 and
        # the date kept in the slug), so it only supplies metadata and is recorded as index_url.
        if name:
            url = f"{SITE}/blog/{name[1]}/{name[2]}/{name[3]}/{name[4]}/"
        elif entry.get("url"):
            url = SITE + entry["url"]
        else:
            url = f"{SITE}/blog/{path.relative_to(posts_dir).with_suffix('').as_posix()}/"
        converted = _convert(body, path, {**DEFAULT_SITE_ATTRIBUTES, **(attributes or {})}, None, "", "", "")
        title = str(front.get("title") or entry.get("title") or converted.title or path.stem)
        markdown = converted.markdown
        if not markdown.lstrip().startswith("# "):
            markdown = f"# {title}\n\n{markdown}"
        authors = _as_list(front.get("authors") or front.get("author") or entry.get("authors"))
        tags = _as_list(front.get("tags") or entry.get("tags"))
        relative = path.relative_to(root).as_posix()
        metadata = {"path": relative, "date": date}
        if entry.get("url"):
            metadata["index_url"] = SITE + entry["url"]
        if authors:
            metadata["authors"] = ",".join(authors)
        row = manifest.get(relative, {})
        if row.get("source_repo"):
            metadata["repository"] = row["source_repo"]
            metadata["commit"] = row.get("source_commit", "")
        description = front.get("description") or entry.get("summary")
        if description:
            metadata["summary"] = " ".join(str(description).split())
        yield CorpusDocument(
            id=f"jenkins_blog:{path.relative_to(posts_dir).with_suffix('').as_posix()}",
            url=url,
            title=title,
            text=markdown,
            source="jenkins_blog",
            license=DOCS_LICENSE,
            tags=tags,
            updated_at=f"{date}T00:00:00Z" if re.match(r"^\d{4}-\d{2}-\d{2}$", date) else None,
            metadata=metadata,
        )


# --------------------------------------------------------------------------------------------
# Plugin documentation
# --------------------------------------------------------------------------------------------

# An SPDX id leads the MANIFEST licence column ("MIT (per README)", "Apache-2.0"); "see repo" has none.
SPDX_PREFIX = re.compile(r"^([A-Z][A-Za-z0-9.+]*(?:-[A-Za-z0-9.+]+)*)(?=\s|$)")
HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
MD_LINKED_IMAGE = re.compile(r"\[\s*!\[[^\]]*\]\([^)]*\)\s*\]\([^)]*\)")
MD_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)(\s+\"[^\"]*\")?\)")
HTML_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
HTML_TAG_LINE = re.compile(r"^\s*</?(p|div|details|summary|br|center|picture|source|a)\b[^>]*>\s*$", re.IGNORECASE | re.MULTILINE)
LIQUID_TAG = re.compile(r"\{%.*?%\}", re.DOTALL)
MD_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SETEXT_HEADING = re.compile(r"^([^\n`|<>-][^\n]*)\n(=+|-+)[ \t]*$", re.MULTILINE)


KNOWN_SPDX = frozenset({
    "MIT", "MIT-0", "Apache-2.0", "Apache-1.1", "BSD-2-Clause", "BSD-3-Clause", "ISC", "MPL-2.0", "EPL-1.0",
    "EPL-2.0", "CDDL-1.0", "CDDL-1.1", "GPL-2.0", "GPL-3.0", "LGPL-2.1", "LGPL-3.0", "AGPL-3.0", "Unlicense",
})
# jenkins-plugins-more's MANIFEST gives the first line of the repository's LICENSE file ("The MIT License
# (MIT) (LICENSE)", "Apache License (LICENSE.txt)"). Only first lines that name one licence (and version) map to
# an SPDX id; "GNU GENERAL PUBLIC LICENSE" (no version), copyright lines and "see repo" stay NOASSERTION.
LICENSE_FIRST_LINES = (
    (re.compile(r"^\W*(?:the\s+)?mit\s+no\s+attribution", re.IGNORECASE), "MIT-0"),
    (re.compile(r"^\W*(?:the\s+)?mit\s+licen[cs]e", re.IGNORECASE), "MIT"),
    (re.compile(r"^permission is hereby granted, free of charge", re.IGNORECASE), "MIT"),
    # The Apache 2.0 LICENSE file starts "Apache License" / "Version 2.0, January 2004" (1.1 starts otherwise).
    (re.compile(r"^apache licen[cs]e(?:,?\s+version\s+2\.0)?(?:\s+\(|$)", re.IGNORECASE), "Apache-2.0"),
    (re.compile(r"^\W*eclipse public licen[cs]e\s*-\s*v\s*2\.0", re.IGNORECASE), "EPL-2.0"),
    (re.compile(r"^bsd 3-clause licen[cs]e", re.IGNORECASE), "BSD-3-Clause"),
    (re.compile(r"^common development and distribution licen[cs]e \(cddl\) version 1\.1", re.IGNORECASE), "CDDL-1.1"),
)


def plugin_license(manifest_value: str) -> tuple[str, str]:
    """(SPDX id or NOASSERTION, note) from a MANIFEST licence column: an SPDX id leading it ("MIT (per README)"),
    or the first line of the repository's LICENSE file ("The MIT License (LICENSE)"); "see repo" has none."""
    value = (manifest_value or "").strip()
    for pattern, spdx in LICENSE_FIRST_LINES:
        if pattern.match(value):
            return spdx, value
    match = SPDX_PREFIX.match(value)
    return (match.group(1) if match and match.group(1) in KNOWN_SPDX else "NOASSERTION"), value


def _clean_plugin_markdown(text: str, repository_url: str, commit: str, file_path: str) -> str:
    text = HTML_COMMENT.sub("", text)
    text = LIQUID_TAG.sub("", text)
    text = MD_LINKED_IMAGE.sub("", text)  # badges
    text = MD_IMAGE.sub("", text)
    text = HTML_IMG.sub("", text)
    text = HTML_TAG_LINE.sub("", text)
    directory = posixpath.dirname(file_path)

    def absolute(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            return f"[{label}]({target})"
        if target.startswith("/"):
            path = target.lstrip("/")
        else:
            path = posixpath.normpath(posixpath.join(directory, target))
        return f"[{label}]({repository_url}/blob/{commit or 'HEAD'}/{path})"

    text = MD_LINK.sub(absolute, text)
    # Setext headings (`Title` over `====`) become '#' headings like everywhere else in the corpus.
    text = SETEXT_HEADING.sub(lambda m: ("# " if m.group(2)[0] == "=" else "## ") + m.group(1).strip(), text)
    return tidy_markdown(text) + "\n"


# Inline help of a configuration form: `help.html` (the whole describable) or `help-<field>.html`.
HELP_FILE = re.compile(r"^help(?:-(?P<field>[^/]+))?\.html$")
RESOURCE_ROOTS = ("src/main/resources/", "src/main/webapp/")


def plugin_display_name(title: str, plugin_id: str) -> str:
    """The update-center title (or the id) naming a plugin in prose: "Git plugin", "Pipeline: SCM Step plugin"."""
    name = (title or plugin_id).strip()
    return name if re.search(r"plug-?in$", name, re.IGNORECASE) else f"{name} plugin"


def help_file_subject(file_path: str) -> tuple[str, str]:
    """(class, field) an inline help file documents, from its path: `.../hudson/model/Slave/help-remoteFS.html`
    is ("hudson.model.Slave", "remoteFS"); `help.html` documents the class itself (field ""); files under
    `src/main/webapp/` keep their folder path ("help/tools")."""
    match = HELP_FILE.match(posixpath.basename(file_path))
    field = (match.group("field") or "") if match else ""
    folder = posixpath.dirname(file_path)
    for marker in RESOURCE_ROOTS:
        if marker in folder + "/":
            inside = (folder + "/").split(marker, 1)[1].rstrip("/")
            return (inside.replace("/", ".") if marker.endswith("resources/") else inside) or folder, field
    return folder, field


FENCED_CODE = re.compile(r"(^(?:```|~~~)[^\n]*\n.*?^(?:```|~~~)[ \t]*$)", re.MULTILINE | re.DOTALL)
HEADING_LINE = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)  # one line, unlike MD_HEADING


def demote_headings(markdown: str) -> str:
    """Headings (outside fenced code) as bold lines: for text that is part of a section, not sections of its own
    (the chunker splits at headings)."""
    parts = FENCED_CODE.split(markdown)
    for index in range(0, len(parts), 2):
        parts[index] = HEADING_LINE.sub(lambda m: f"**{m.group(1)}**", parts[index])
    return "".join(parts)


def help_markdown(html: str) -> str:
    """Markdown of an inline help file (licence header comments dropped; headings demoted, they are not sections)."""
    return demote_headings(html_to_markdown(HTML_COMMENT.sub("", html)))


def help_document_text(display: str, plugin_id: str, file_path: str, html: str) -> tuple[str, str, dict[str, str]]:
    """(title, markdown, metadata) of an inline help file, naming what it belongs to (display: "Git plugin",
    "Jenkins core"; plugin_id: "git", or "" for core) and the class and field it explains."""
    subject, field = help_file_subject(file_path)
    short = subject.rsplit(".", 1)[-1]
    owner = f"{display} ({plugin_id})" if plugin_id else display
    owner_prose = f"{display} (`{plugin_id}`)" if plugin_id else display
    if field:
        title = f"{owner} field help: {short} › {field}"
        lead = (f"Inline help the {owner_prose} shows beside the **{field}** field of `{subject}` in the Jenkins "
                "configuration form.")
    else:
        title = f"{owner} help: {short}"
        lead = f"Inline help the {owner_prose} shows for `{subject}` in the Jenkins configuration form."
    body = help_markdown(html)
    metadata = {"help_class": subject}
    if field:
        metadata["help_field"] = field
    markdown = f"# {title}\n\n{lead}\n\n{body}\n" if body else ""
    return title, markdown, metadata


def read_plugin_manifest(plugins_root: Path) -> list[dict[str, str]]:
    """The rows of a plugin-docs folder's MANIFEST.tsv (one per file; `_source` rows are not plugin docs)."""
    manifest_file = Path(plugins_root) / "MANIFEST.tsv"
    if not manifest_file.is_file():
        raise FileNotFoundError(f"{manifest_file} is missing (it names each file's plugin, repository and licence)")
    with open(manifest_file, encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle, delimiter="\t")]
    return [row for row in rows if row.get("plugin") and not row["plugin"].startswith("_")]


def iter_plugin_docs(
    plugins_root: Path,
    plugin_titles: Mapping[str, str] | None = None,
    skip_plugins: Collection[str] = (),
    tags: Sequence[str] = (),
) -> Iterator[CorpusDocument]:
    """The READMEs, docs/ pages and inline help (`help*.html`) of a plugin-docs folder (`jenkins-plugins`,
    `jenkins-plugins-more`), per its MANIFEST.tsv. plugin_titles (id -> update-center title) names plugins in
    help titles; skip_plugins leaves out plugins another folder already covers; tags are added to every document."""
    root = Path(plugins_root)
    rows = [row for row in read_plugin_manifest(root) if row["plugin"] not in skip_plugins]
    rows.sort(key=lambda row: (row["plugin"], row["path"]))
    titles = plugin_titles or {}
    for row in rows:
        plugin_id, file_path = row["plugin"], row["path"]
        path = root / plugin_id / file_path
        if not path.is_file():
            log.warning("plugin doc listed in MANIFEST.tsv but missing: %s", path)
            continue
        repository = row.get("repo", "")
        repository_url = f"https://github.com/{repository}" if repository else ""
        commit = row.get("commit", "")
        page_url = row.get("plugin_page_url") or f"{PLUGIN_SITE}/{plugin_id}/"
        text = path.read_text(encoding="utf-8", errors="replace")
        extra: dict[str, str] = {}
        help_file = HELP_FILE.match(path.name) is not None
        if help_file:
            title, markdown, extra = help_document_text(
                plugin_display_name(titles.get(plugin_id, ""), plugin_id), plugin_id, file_path, text)
        elif path.suffix in (".adoc", ".asciidoc"):
            _front, body = split_front_matter(text)
            converted = _convert(body, path, dict(DEFAULT_SITE_ATTRIBUTES), None, "", "", "",
                                 link_base=repository_url + f"/blob/{commit or 'HEAD'}")
            markdown, title = converted.markdown, converted.title
        else:
            front, body = split_front_matter(text)
            markdown = _clean_plugin_markdown(body, repository_url, commit, file_path)
            heading = MD_HEADING.search(markdown)
            title = str(front.get("title") or (heading.group(1) if heading else ""))
        if not markdown.strip():
            continue
        if not help_file:
            if not title:
                first_heading = MD_HEADING.search(markdown)
                title = first_heading.group(1) if first_heading else ""
            title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title or "").strip()
            if not file_path.lower().startswith("readme"):
                # docs/ pages have generic titles ("User guide"): say which plugin they belong to.
                title = f"{plugin_id} plugin: {title}" if title else f"{plugin_id} plugin: {file_path}"
            title = title or plugin_id
        spdx, note = plugin_license(row.get("license", ""))
        # Every file of a plugin cites the plugin's public page; the exact file is in source_url.
        metadata = {"plugin_id": plugin_id, "path": file_path, "license_note": note, **extra}
        if repository_url:
            metadata["source_url"] = f"{repository_url}/blob/{commit or 'HEAD'}/{file_path}"
        if repository:
            metadata["repository"] = repository
        if commit:
            metadata["commit"] = commit
        if row.get("note"):
            metadata["note"] = row["note"]
        yield CorpusDocument(
            id=f"plugin_docs:{plugin_id}/{file_path}",
            url=page_url,
            title=title,
            text=markdown,
            source="plugin_docs",
            license=spdx,
            tags=["plugin", plugin_id, *(["field-help"] if help_file else []), *tags],
            metadata=metadata,
        )


def iter_local_documents(
    docs_root: Path | None = None,
    blog_root: Path | None = None,
    plugins_root: Path | None = None,
) -> Iterator[CorpusDocument]:
    """Every document of the given local sources (None = skip that source), in a stable order."""
    if docs_root is not None:
        yield from iter_docs(Path(docs_root))
    if blog_root is not None:
        yield from iter_blog(Path(blog_root))
    if plugins_root is not None:
        yield from iter_plugin_docs(Path(plugins_root))


# The loaders of the other shared-data folders build on this module; re-exported lazily (no import cycle).
_SHARED_EXPORTS = frozenset({
    "iter_shared_documents", "iter_shared_source", "iter_pipeline_steps", "iter_update_center",
    "iter_more_plugin_docs", "iter_core_help", "iter_plugin_wiki", "SHARED_FOLDERS",
})


def __getattr__(name: str):
    if name in _SHARED_EXPORTS:
        from jenkins_assistant.scraper import shared_sources

        return getattr(shared_sources, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
