"""Production inputs of the local-source converters: git checkouts and the plugin docs download.

* `sync_git_checkout` keeps a shallow (optionally sparse) clone of a repository up to date: the
  jenkins.io docs (jenkins-infra/docs.jenkins.io) and the blog (jenkins-infra/jenkins.io,
  `content/blog` only). When the remote head has not moved nothing in the work tree is touched,
  so the file fingerprint of the converters stays the same and the run stays a no-op.
* `PluginDocsFetcher` builds the plugin docs folder the converter reads (`<plugin-id>/<path>` plus
  `MANIFEST.tsv`): the Jenkins update center's plugin list, most-installed first, then each
  plugin's GitHub README, a few user-guide pages of its `docs/` folder and its licence, all
  through the polite client (conditional requests: an unchanged repository costs one 304).
  Files are rewritten only when their content changed.
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from jenkins_assistant.common.files import atomic_write_text
from jenkins_assistant.scraper.http import PoliteClient, SourceError

log = logging.getLogger(__name__)

DOC_SUFFIXES = (".md", ".adoc", ".markdown", ".asciidoc")
MANIFEST_COLUMNS = ["plugin", "repo", "path", "commit", "chars", "plugin_page_url", "license", "note"]
GITHUB_REPO = re.compile(r"github\.com[/:]([^/\s]+)/([^/\s#?]+?)(?:\.git)?/?$")


def _git(args: list[str], cwd: Path | None, timeout_s: float) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout_s,
                              check=False, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"git {args[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise SourceError(f"git {args[0]} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return done.stdout.strip()


def sync_git_checkout(url: str, dest: Path, *, ref: str = "", sparse_paths: list[str] | None = None,
                      timeout_s: float = 900) -> str:
    """Clone or fast-forward a shallow checkout; returns the checked-out commit."""
    dest = Path(dest)
    target = ref or "HEAD"
    if (dest / ".git").is_dir():
        _git(["fetch", "--depth", "1", "origin", target], dest, timeout_s)
        fetched = _git(["rev-parse", "FETCH_HEAD"], dest, timeout_s)
        current = _git(["rev-parse", "HEAD"], dest, timeout_s)
        if fetched != current:
            _git(["reset", "--hard", "--quiet", fetched], dest, timeout_s)
            log.info("checkout %s moved %s -> %s", dest, current[:12], fetched[:12])
        return fetched
    dest.parent.mkdir(parents=True, exist_ok=True)
    args = ["clone", "--depth", "1", "--quiet"]
    if ref:
        args += ["--branch", ref]
    if sparse_paths:
        args += ["--filter=blob:none", "--sparse"]
    _git([*args, url, str(dest)], None, timeout_s)
    if sparse_paths:
        _git(["sparse-checkout", "set", *sparse_paths], dest, timeout_s)
    return _git(["rev-parse", "HEAD"], dest, timeout_s)


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8", errors="replace") == text:
        return False
    atomic_write_text(path, text)
    return True


class PluginDocsFetcher:
    def __init__(
        self,
        client: PoliteClient,
        dest: Path,
        *,
        update_center_url: str,
        github_api_url: str = "https://api.github.com",
        top_n: int = 100,
        max_doc_pages: int = 3,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.client = client
        self.dest = Path(dest)
        self.update_center_url = update_center_url
        self.github_api_url = github_api_url.rstrip("/")
        self.top_n = top_n
        self.max_doc_pages = max_doc_pages
        self.progress = progress or (lambda done, total: None)
        self.files_written = 0

    def popular_plugins(self) -> list[tuple[str, str, str]]:
        """(plugin id, owner/repo, title) of the most-installed plugins with a GitHub repository."""
        data = self.client.get_json(self.update_center_url).data
        plugins = (data or {}).get("plugins") if isinstance(data, dict) else None
        if not isinstance(plugins, dict):
            raise SourceError(f"{self.update_center_url}: no 'plugins' object in the update center answer")
        ranked = sorted(plugins.values(), key=lambda p: (-int(p.get("popularity") or 0), str(p.get("name"))))
        chosen = []
        for plugin in ranked:
            match = GITHUB_REPO.search(str(plugin.get("scm") or ""))
            if match and plugin.get("name"):
                chosen.append((str(plugin["name"]), f"{match.group(1)}/{match.group(2)}",
                               str(plugin.get("title") or plugin["name"])))
            if len(chosen) >= self.top_n:
                break
        return chosen

    def _get_or_none(self, url: str) -> object:
        """The JSON at url, None when GitHub answers 404 (no such file, folder or licence)."""
        try:
            return self.client.get_json(url).data
        except SourceError as exc:
            if exc.status == 404:
                return None
            raise

    def _contents(self, url: str, default_path: str) -> dict | None:
        """A file from the GitHub contents API ({path, sha, text}), None when absent."""
        item = self._get_or_none(url)
        if not isinstance(item, dict) or item.get("encoding") != "base64" or not item.get("content"):
            return None
        text = base64.b64decode(item["content"]).decode("utf-8", errors="replace")
        return {"path": item.get("path", default_path), "sha": item.get("sha", ""), "text": text}

    def _file(self, repo: str, path: str) -> dict | None:
        return self._contents(f"{self.github_api_url}/repos/{repo}/contents/{path}", path)

    def _readme(self, repo: str) -> dict | None:
        return self._contents(f"{self.github_api_url}/repos/{repo}/readme", "README.md")

    def _license(self, repo: str) -> str:
        data = self._get_or_none(f"{self.github_api_url}/repos/{repo}/license")
        spdx = ((data or {}).get("license") or {}).get("spdx_id") if isinstance(data, dict) else None
        return str(spdx or "NOASSERTION")

    def _doc_pages(self, repo: str) -> list[dict]:
        for folder in ("docs", "doc"):
            listing = self._get_or_none(f"{self.github_api_url}/repos/{repo}/contents/{folder}")
            if isinstance(listing, list):
                names = sorted(item["path"] for item in listing
                               if item.get("type") == "file" and str(item.get("name", "")).lower().endswith(DOC_SUFFIXES))
                pages = [self._file(repo, name) for name in names[: self.max_doc_pages]]
                return [page for page in pages if page]
        return []

    def sync(self) -> Path:
        plugins = self.popular_plugins()
        rows: list[dict] = []
        for done, (plugin_id, repo, _title) in enumerate(plugins, 1):
            readme = self._readme(repo)
            files = ([readme] if readme else []) + self._doc_pages(repo)
            license = self._license(repo) if files else "NOASSERTION"
            for item in files:
                if _write_if_changed(self.dest / plugin_id / item["path"], item["text"]):
                    self.files_written += 1
                rows.append({"plugin": plugin_id, "repo": repo, "path": item["path"], "commit": "HEAD",
                             "chars": len(item["text"]), "plugin_page_url": f"https://plugins.jenkins.io/{plugin_id}/",
                             "license": license, "note": f"blob {item['sha']}" if item["sha"] else ""})
            self.progress(done, len(plugins))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        if _write_if_changed(self.dest / "MANIFEST.tsv", buffer.getvalue()):
            self.files_written += 1
        return self.dest
