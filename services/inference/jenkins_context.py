"""The user's Jenkins (core version, installed plugins, page, locale) applied to an answer. Pure: no gRPC, no I/O but
reading the update center file.

Three effects, each checkable on its own:

* `rerank`: retrieved passages about installed plugins move up, passages about plugins that are not installed or
  that need a newer core move down, by a bounded number of places: a context says which of two close passages fits
  this controller better, it does not make an unrelated passage about an installed plugin beat a relevant one.
* `context_note`: a stated fact in the user's turn when the passages rely on a plugin that is not installed, on a
  newer plugin or core than the installed one, or on a plugin version a security warning covers. Small models
  follow a stated fact far more reliably than an instruction to compare versions themselves.
* `UpdateCenter.findings`: security warnings whose affected-version patterns match an installed version, and
  deprecations, from the update center document Jenkins itself downloads.

A passage is "about" a plugin when its URL is that plugin's page (https://plugins.jenkins.io/<id>/, which is also
where the index puts the plugin's README and update-center record) or its Pipeline steps reference
(https://www.jenkins.io/doc/pipeline/steps/<id>/).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from jenkins_assistant.common.errors import InvalidInput

log = logging.getLogger(__name__)

# A controller has 100-300 plugins; 500 leaves room and bounds the work per request (findings, prompt note).
MAX_PLUGINS = 500
MAX_FIELD_CHARS = 200
# How many places a context may move a passage. Two keeps a passage about an installed plugin from overtaking a
# much better match, and lets one from just below the cut (the extra candidates searched) into the prompt.
RANK_SHIFT = 2
# At most this many plugins are named in the prompt note: each costs tokens of a small context window.
MAX_NOTED_PLUGINS = 4

_PLUGIN_URL = re.compile(r"^https?://plugins\.jenkins\.io/([A-Za-z0-9_.-]+)(?:/|$)")
_STEPS_URL = re.compile(r"^https?://(?:www\.)?jenkins\.io/doc/pipeline/steps/([A-Za-z0-9_.-]+)(?:/|$)")
# "requires Jenkins 2.479.3 or newer" (the update-center records), "Jenkins 2.361 or later", "since Jenkins 2.414".
_CORE_REQUIREMENT = re.compile(
    r"(?:requires?\s+Jenkins\s+(?:core\s+)?(?:version\s+)?|since\s+Jenkins\s+(?:core\s+)?(?:version\s+)?|"
    r"Jenkins\s+(?=\d+\.\d+(?:\.\d+)?\s+or\s+(?:newer|later|above|higher)))(\d+\.\d+(?:\.\d+)?)",
    re.IGNORECASE)
# "Its current version is 5.10.1" (update-center records): the version a plugin's page describes.
_CURRENT_VERSION = re.compile(r"Its current version is ([0-9][\w.-]*\w)")


# --------------------------------------------------------------------------------------------- the context
@dataclass(frozen=True)
class JenkinsPage:
    name: str = ""
    type: str = ""
    last_build_result: str = ""


@dataclass(frozen=True)
class JenkinsContext:
    core_version: str = ""
    plugins: tuple[tuple[str, str], ...] = ()  # (plugin id, version), as the controller listed them
    page: JenkinsPage = field(default_factory=JenkinsPage)
    locale: str = ""

    @property
    def empty(self) -> bool:
        return not (self.core_version or self.plugins or self.page != JenkinsPage() or self.locale)

    @property
    def installed(self) -> dict[str, str]:
        """Plugin id (lower case: the update center and URLs differ in case now and then) -> installed version."""
        return {pid.lower(): version for pid, version in self.plugins}


def validate(ctx: JenkinsContext) -> None:
    """Raises InvalidInput naming the limit a context exceeds (INVALID_ARGUMENT on the wire)."""
    if len(ctx.plugins) > MAX_PLUGINS:
        raise InvalidInput(f"context lists {len(ctx.plugins)} plugins; the limit is {MAX_PLUGINS}")
    fields = [("context.core_version", ctx.core_version), ("context.locale", ctx.locale),
              ("context.page.name", ctx.page.name), ("context.page.type", ctx.page.type),
              ("context.page.last_build_result", ctx.page.last_build_result)]
    for i, (pid, version) in enumerate(ctx.plugins):
        if not pid.strip():
            raise InvalidInput(f"context.plugins[{i}].plugin_id is empty")
        fields += [(f"context.plugins[{i}].plugin_id", pid), (f"context.plugins[{i}].version", version)]
    for name, value in fields:
        if len(value) > MAX_FIELD_CHARS:
            raise InvalidInput(f"{name} has {len(value)} characters; the limit is {MAX_FIELD_CHARS}")
        if value and not value.isprintable():
            raise InvalidInput(f"{name} must be printable characters")


# --------------------------------------------------------------------------------------------- versions
def _parts(version: str) -> list[int]:
    """The leading numeric components of a Jenkins version: "2.452.3" -> [2, 452, 3], "1385.v7d2d9ec4d909" ->
    [1385], "3.20.0-109.ve43756e2d2b_4" -> [3, 20, 0, 109]. Incremental versions (the "v<hash>" part) order only
    by their number, which is what Jenkins's VersionNumber does for them as well."""
    out = []
    for piece in re.split(r"[.-]", version.strip()):
        if not piece.isdigit():
            break
        out.append(int(piece))
    return out


def older(installed: str, wanted: str) -> bool:
    """Whether `installed` is older than `wanted`; False when either has no number to compare."""
    a, b = _parts(installed), _parts(wanted)
    if not a or not b:
        return False
    width = max(len(a), len(b))
    return a + [0] * (width - len(a)) < b + [0] * (width - len(b))


# --------------------------------------------------------------------------------------------- update center
@dataclass(frozen=True)
class Finding:
    kind: str  # "security_warning" | "deprecated"
    plugin_id: str
    installed_version: str
    warning_id: str
    message: str
    url: str


@dataclass(frozen=True)
class _Warning:
    id: str
    message: str
    url: str
    patterns: tuple[re.Pattern, ...]

    def covers(self, version: str) -> bool:
        # As Jenkins (UpdateSite.Warning.isRelevantToVersion): no ranges = every version; otherwise a range's Java
        # regex must match the whole version string (Matcher.matches).
        return not self.patterns or any(p.fullmatch(version) for p in self.patterns)


class UpdateCenter:
    """The update center document (`update-center.json`, JSONP as Jenkins downloads it): current plugin versions,
    required cores, security warnings and deprecations."""

    def __init__(self, data: dict) -> None:
        self.generated_at = str(data.get("generationTimestamp", ""))
        self.core_version = str((data.get("core") or {}).get("version", ""))
        self.plugins: dict[str, dict] = {pid.lower(): p for pid, p in (data.get("plugins") or {}).items()}
        self.titles = {pid: str(p.get("title") or pid) for pid, p in self.plugins.items()}
        self.deprecations = {pid.lower(): str((d or {}).get("url", ""))
                             for pid, d in (data.get("deprecations") or {}).items()}
        self.warnings: dict[str, list[_Warning]] = {}  # plugin id (lower) or "core" -> its warnings
        skipped = 0
        for w in data.get("warnings") or []:
            patterns = []
            for affected in w.get("versions") or []:
                try:
                    patterns.append(re.compile(str(affected.get("pattern", ""))))
                except re.error:  # a Java-only construct: skip the range rather than the file
                    skipped += 1
            component = "core" if w.get("type") == "core" else str(w.get("name", "")).lower()
            self.warnings.setdefault(component, []).append(
                _Warning(str(w.get("id", "")), " ".join(str(w.get("message", "")).split()), str(w.get("url", "")),
                         tuple(patterns)))
        if skipped:
            log.warning("update center: %d affected-version patterns are not Python regexes and were skipped",
                        skipped)

    @classmethod
    def load(cls, path: str | Path) -> UpdateCenter:
        text = Path(path).read_text(encoding="utf-8")
        start, end = text.find("{"), text.rfind("}")  # `updateCenter.post(` JSON `);`
        if start < 0 or end < start:
            raise ValueError(f"{path}: no JSON object in the update center file")
        return cls(json.loads(text[start:end + 1]))

    def knows(self, plugin_id: str) -> bool:
        pid = plugin_id.lower()
        return pid in self.plugins or pid in self.deprecations or pid in self.warnings

    def title(self, plugin_id: str) -> str:
        return self.titles.get(plugin_id.lower(), plugin_id)

    def findings(self, installed: dict[str, str], core_version: str = "",
                 only: set[str] | None = None) -> list[Finding]:
        """Warnings covering an installed version, then deprecations, by plugin id; `only` restricts them to some
        plugins (those an answer is about). The core's own warnings come with a core version and no `only`."""
        warnings, deprecated = [], []
        for pid, version in sorted(installed.items()):
            if only is not None and pid not in only:
                continue
            if version:
                warnings += [Finding("security_warning", pid, version, w.id, w.message, w.url)
                             for w in self.warnings.get(pid, []) if w.covers(version)]
            if pid in self.deprecations:
                deprecated.append(Finding("deprecated", pid, version, "",
                                          f"The {self.title(pid)} plugin is deprecated; the linked page explains why "
                                          "and what replaces it", self.deprecations[pid]))
        if core_version and only is None:
            warnings = [Finding("security_warning", "core", core_version, w.id, w.message, w.url)
                        for w in self.warnings.get("core", []) if w.covers(core_version)] + warnings
        return warnings + deprecated


# --------------------------------------------------------------------------------------------- passages
def plugin_of(url: str) -> str:
    """The plugin a passage's URL is about (lower case), or ""."""
    found = _PLUGIN_URL.match(url) or _STEPS_URL.match(url)
    return found.group(1).lower() if found else ""


def required_core(text: str) -> str:
    """The newest Jenkins core version a passage states it requires, or ""."""
    versions = _CORE_REQUIREMENT.findall(text)
    newest = ""
    for v in versions:
        if not newest or older(newest, v):
            newest = v
    return newest


def passage_version(plugin_id: str, text: str, center: UpdateCenter | None) -> str:
    """The plugin version a passage describes: the one it states ("Its current version is ..."), else the update
    center's current release, which is what the plugin's page on plugins.jenkins.io documents."""
    if found := _CURRENT_VERSION.search(text):
        return found.group(1)
    if center is not None and (record := center.plugins.get(plugin_id)):
        return str(record.get("version", ""))
    return ""


def _shift(url: str, text: str, ctx: JenkinsContext) -> int:
    """Negative moves a passage up, positive down."""
    shift = 0
    installed = ctx.installed
    if installed and (pid := plugin_of(url)):
        shift += -RANK_SHIFT if pid in installed else RANK_SHIFT
    if ctx.core_version and (needed := required_core(text)) and older(ctx.core_version, needed):
        shift += RANK_SHIFT
    return shift


def candidates(k: int, ctx: JenkinsContext | None) -> int:
    """How many passages to ask the index for: k, plus RANK_SHIFT more when a context may pull one up from below
    the cut."""
    return k + RANK_SHIFT if ctx is not None and (ctx.plugins or ctx.core_version) else k


def rerank(hits: list, ctx: JenkinsContext | None, k: int) -> tuple[list, bool]:
    """The top `k` retrieval hits after the context's shifts (ties keep the index's order); whether the order
    changed. Hits are RetrievalIndex hits (`.chunk.url`, `.chunk.text`, `.named`)."""
    if ctx is None or not (ctx.plugins or ctx.core_version):
        return hits[:k], False
    # A passage the index brought in for a name the question spells out (Hit.named, last in the list) stays, last: it
    # holds what the ranking missed, and the context's shifts would cut it with the ranked tail.
    named = [h for h in hits if h.named][:max(k - 1, 0)]
    ranked_hits = [h for h in hits if not h.named]
    keyed = sorted(enumerate(ranked_hits),
                   key=lambda ih: (ih[0] + _shift(ih[1].chunk.url, ih[1].chunk.text, ctx), ih[0]))
    ranked = [h for _i, h in keyed][:k - len(named)] + named
    unshifted = ranked_hits[:k - len(named)] + named
    return ranked, [id(h) for h in ranked] != [id(h) for h in unshifted]


# --------------------------------------------------------------------------------------------- what it changed
@dataclass(frozen=True)
class VersionGap:
    plugin_id: str
    installed_version: str
    passage_version: str


@dataclass
class ContextUse:
    """What the context changed about one answer (AnswerMetadata.jenkins_context)."""

    core_version: str = ""
    installed_plugins: int = 0
    page: JenkinsPage = field(default_factory=JenkinsPage)
    locale: str = ""
    reranked: bool = False
    installed_plugins_used: list[str] = field(default_factory=list)
    missing_plugins: list[str] = field(default_factory=list)
    outdated_plugins: list[VersionGap] = field(default_factory=list)
    required_core_version: str = ""
    findings: list[Finding] = field(default_factory=list)


def assess(ctx: JenkinsContext, passages: list, center: UpdateCenter | None, reranked: bool) -> ContextUse:
    """The context against the passages an answer is given (prompt Passages: `.url`, `.text`)."""
    use = ContextUse(core_version=ctx.core_version, installed_plugins=len(ctx.plugins), page=ctx.page,
                     locale=ctx.locale, reranked=reranked)
    installed = ctx.installed
    about = list(dict.fromkeys(pid for p in passages if (pid := plugin_of(p.url))))
    if installed:
        use.installed_plugins_used = [pid for pid in about if pid in installed]
        use.missing_plugins = [pid for pid in about if pid not in installed]
        for pid in use.installed_plugins_used:
            texts = " ".join(p.text for p in passages if plugin_of(p.url) == pid)
            wanted = passage_version(pid, texts, center)
            if wanted and older(installed[pid], wanted):
                use.outdated_plugins.append(VersionGap(pid, installed[pid], wanted))
        if center is not None:
            use.findings = center.findings(installed, only=set(use.installed_plugins_used))
    if ctx.core_version:
        needed = required_core(" ".join(p.text for p in passages))
        if needed and older(ctx.core_version, needed):
            use.required_core_version = needed
    return use


def _names(pids: list[str], center: UpdateCenter | None) -> str:
    named = [f"{center.title(pid)} (`{pid}`)" if center is not None and center.title(pid) != pid else f"`{pid}`"
             for pid in pids[:MAX_NOTED_PLUGINS]]
    return ", ".join(named)


def context_note(ctx: JenkinsContext, use: ContextUse, center: UpdateCenter | None) -> str:
    """Sentences for the user's turn stating what the controller lacks for the passages' advice ("" when nothing):
    a plugin that is not installed, an installed plugin or core older than the passages describe, an installed
    version a security warning covers, a deprecated plugin."""
    notes = []
    if ctx.page.name:
        # The page says what "this job" or "the last build" in a question means.
        kind = f" ({ctx.page.type})" if ctx.page.type else ""
        result = f", last build {ctx.page.last_build_result}" if ctx.page.last_build_result else ""
        notes.append(f"The user is looking at `{ctx.page.name}`{kind}{result}.")
    if use.missing_plugins:
        notes.append(f"These plugins are NOT installed on the user's Jenkins: {_names(use.missing_plugins, center)}. "
                     "If your answer relies on one, say that it must be installed first.")
    for gap in use.outdated_plugins[:MAX_NOTED_PLUGINS]:
        notes.append(f"The user has `{gap.plugin_id}` {gap.installed_version}, older than the version "
                     f"{gap.passage_version} the passages describe: say that an option may need an update of the "
                     "plugin.")
    if use.required_core_version:
        notes.append(f"The user's Jenkins is {ctx.core_version}; a passage requires Jenkins "
                     f"{use.required_core_version} or newer: say so if your answer relies on it.")
    for f in use.findings[:MAX_NOTED_PLUGINS]:
        if f.kind == "security_warning":
            notes.append(f"The installed `{f.plugin_id}` {f.installed_version} is affected by security warning "
                         f"{f.warning_id} ({f.message}): tell the user to update it; advisory: {f.url}")
        else:
            notes.append(f"`{f.plugin_id}` is deprecated: mention it and its replacement, explained at {f.url}")
    if not notes:
        return ""
    return "About the user's Jenkins:\n" + "\n".join(f"- {n}" for n in notes)


def with_note(messages: list[dict], note: str) -> list[dict]:
    """The chat messages with `note` at the end of the last (user) turn, after the question and the passages it is
    about. The grounded prompt itself stays as it is."""
    if not note or not messages:
        return messages
    last = dict(messages[-1])
    last["content"] = f"{last['content']}\n\n{note}"
    return [*messages[:-1], last]
