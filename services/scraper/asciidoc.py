"""AsciiDoc (Antora flavour) to markdown, for the retrieval corpus and the fine-tuning data.

No maintained pure-Python AsciiDoc converter exists (Asciidoctor is Ruby), and converting through
HTML would lose the code block languages we want to keep, so this is a small line-oriented
converter for the subset jenkins.io really uses:

* preprocessor: attribute entries, `ifdef`/`ifndef`/`ifeval`, `include::` of Antora resource ids
  (`component:module:partial$file.adoc`) and relative paths, with `leveloffset`; a missing
  include is dropped and reported in `ConvertedPage.warnings`;
* blocks: document title and section titles (`=` -> `#`), listing/source blocks as fenced code
  with their language (`[source,groovy]`, `[pipeline]`), literal blocks, example/sidebar/open/quote
  blocks, admonitions (`NOTE:` and `[NOTE]` blocks) as block quotes, tables as pipe tables, lists,
  definition lists, comments, passthrough HTML (through markdownify);
* inline: `{attribute}` references, `xref:`, `link:`, bare URL macros, `<<anchor,text>>`,
  `kbd:`/`btn:`/`menu:`/`footnote:`, bold/italic/monospace, images and anchors removed.

Cross references are turned into public URLs by a caller-supplied `resolve_xref` function, so
this module knows nothing about the jenkins.io site layout.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# Built-in character replacement attributes of Asciidoctor.
BUILTIN_ATTRIBUTES = {
    "nbsp": " ",
    "sp": " ",
    "empty": "",
    "blank": "",
    "zwsp": "",
    "startsb": "[",
    "endsb": "]",
    "vbar": "|",
    "caret": "^",
    "asterisk": "*",
    "tilde": "~",
    "backslash": "\\",
    "backtick": "`",
    "plus": "+",
    "amp": "&",
    "lt": "<",
    "gt": ">",
    "apos": "'",
    "quot": '"',
    "two-colons": "::",
    "two-semicolons": ";;",
    "cpp": "C++",
    "pp": "++",
}

# Conditions that hold when jenkins.io renders a page (HTML backend, not GitHub's preview).
DEFINED_WHEN_RENDERED = {"backend-html5", "basebackend-html", "env-site", "site-gen-antora"}

MAX_INCLUDE_DEPTH = 8

ADMONITIONS = ("NOTE", "TIP", "IMPORTANT", "WARNING", "CAUTION")
ADMONITION_LABEL = {name: name.capitalize() for name in ADMONITIONS}

# Resolves an xref target (as written, without the `xref:` prefix and the `[text]`) to a URL.
XrefResolver = Callable[[str], "tuple[str, str] | None"]
# Resolves an include target to a file, relative to the including file.
IncludeResolver = Callable[[str, Path], "Path | None"]


@dataclass
class ConvertedPage:
    title: str
    markdown: str
    attributes: dict[str, str] = field(default_factory=dict)
    includes: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Preprocessor: includes, conditionals, attribute entries
# --------------------------------------------------------------------------------------------

ATTRIBUTE_ENTRY = re.compile(r"^:(!?)([A-Za-z0-9_][A-Za-z0-9_-]*)(!?):(?:\s+(.*))?$")
CONDITIONAL = re.compile(r"^(ifdef|ifndef|ifeval|endif)::([^\[]*)\[(.*)\]\s*$")
INCLUDE = re.compile(r"^include::([^\[]+)\[(.*)\]\s*$")
SECTION = re.compile(r"^(={1,6}|#{1,6})\s+(\S.*?)\s*$")
LISTING_DELIMITER = re.compile(r"^(-{4,}|\.{4,}|```.*)$")
ATTRIBUTE_REF = re.compile(r"(\\?)\{([A-Za-z0-9_][A-Za-z0-9_-]*)\}")


def _parse_attrlist(text: str) -> tuple[list[str], dict[str, str]]:
    """`source,groovy,subs="attributes+"` -> (['source', 'groovy'], {'subs': 'attributes+'})."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for match in re.finditer(r'\s*(?:([A-Za-z0-9_-]+)\s*=\s*)?("[^"]*"|\'[^\']*\'|[^,]*)\s*(?:,|$)', text):
        key, value = match.group(1), match.group(2).strip()
        if match.group(0) == "":
            break
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key:
            named[key] = value
        else:
            positional.append(value)
    return positional, named


def _evaluate_condition(kind: str, target: str, expression: str, attributes: dict[str, str]) -> bool:
    if kind == "ifeval":
        # Only simple comparisons appear in practice; an expression we cannot read keeps the text.
        return True
    names = [name for name in re.split(r"[,+]", target) if name]
    defined = [name in attributes or name in DEFINED_WHEN_RENDERED for name in names]
    any_defined = all(defined) if "+" in target else any(defined)
    return any_defined if kind == "ifdef" else not any_defined


class Preprocessor:
    """Expands includes and conditionals and collects attribute entries, line by line."""

    def __init__(self, resolve_include: IncludeResolver, attributes: dict[str, str]) -> None:
        self._resolve_include = resolve_include
        self.attributes = attributes
        self.includes: list[Path] = []
        self.warnings: list[str] = []

    def run(self, text: str, path: Path, depth: int = 0, leveloffset: int = 0) -> list[str]:
        out: list[str] = []
        skipping: list[bool] = []  # stack of "this conditional's body is skipped"
        in_comment = False
        in_listing = ""  # the delimiter of the listing block we are in: no attribute entries there
        pending = text.splitlines()
        index = 0
        while index < len(pending):
            line = pending[index]
            index += 1
            stripped = line.rstrip()
            if stripped == "////" and not in_listing:
                in_comment = not in_comment
                out.append(stripped)
                continue
            if in_comment:
                out.append(line)
                continue
            if in_listing:
                if stripped == ("```" if in_listing.startswith("```") else in_listing):
                    in_listing = ""
            elif LISTING_DELIMITER.match(stripped):
                in_listing = stripped
            conditional = CONDITIONAL.match(stripped)
            if conditional:
                kind, target, body = conditional.groups()
                if kind == "endif":
                    if skipping:
                        skipping.pop()
                    continue
                keep = _evaluate_condition(kind, target, body, self.attributes)
                if body and kind != "ifeval":  # single-line form: ifdef::attr[content line]
                    if keep and not any(skipping):
                        pending.insert(index, body)  # processed like any line (it may set an attribute)
                    continue
                skipping.append(not keep)
                continue
            if any(skipping):
                continue
            entry = None if in_listing else ATTRIBUTE_ENTRY.match(stripped)
            if entry:
                unset = entry.group(1) or entry.group(3)
                name, value = entry.group(2), entry.group(4) or ""
                if unset:
                    self.attributes.pop(name, None)
                else:
                    self.attributes[name] = _substitute_attributes(value, self.attributes)
                continue
            include = INCLUDE.match(stripped)
            if include:
                out.extend(self._include(include.group(1), include.group(2), path, depth, leveloffset))
                continue
            if leveloffset:
                section = SECTION.match(stripped)
                if section and section.group(1)[0] == "=":
                    level = max(1, min(6, len(section.group(1)) + leveloffset))
                    line = "=" * level + " " + section.group(2)
            out.append(line)
        return out

    def _include(self, target: str, attrlist: str, path: Path, depth: int, leveloffset: int) -> list[str]:
        target = _substitute_attributes(target, self.attributes)
        if depth >= MAX_INCLUDE_DEPTH:
            self.warnings.append(f"include depth limit reached at {target} in {path.name}")
            return []
        resolved = self._resolve_include(target, path)
        if resolved is None or not resolved.is_file():
            message = f"include not found, dropped: {target} (in {path})"
            self.warnings.append(message)
            log.debug(message)
            return []
        _, named = _parse_attrlist(attrlist)
        offset = leveloffset
        if "leveloffset" in named:
            value = named["leveloffset"]
            offset = leveloffset + int(value) if value[:1] in "+-" else int(value) - 1
        self.includes.append(resolved)
        text = resolved.read_text(encoding="utf-8", errors="replace")
        if resolved.suffix not in (".adoc", ".asciidoc", ".txt"):
            return text.splitlines()  # code examples are included verbatim
        return self.run(text, resolved, depth + 1, offset)


def _substitute_attributes(text: str, attributes: dict[str, str]) -> str:
    if "{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return match.group(0)[1:]
        name = match.group(2)
        if name in attributes:
            return attributes[name]
        if name in BUILTIN_ATTRIBUTES:
            return BUILTIN_ATTRIBUTES[name]
        return match.group(0)  # unknown attribute: Asciidoctor leaves the reference as written

    return ATTRIBUTE_REF.sub(replace, text)


# --------------------------------------------------------------------------------------------
# Inline conversion
# --------------------------------------------------------------------------------------------

PLACEHOLDER = "\x00{}\x00"
PLACEHOLDER_RE = re.compile("\x00(\\d+)\x00")

CODE_SPAN = re.compile(r"(?<![\w`\\])(`+)(?=\S)(.+?)(?<=\S)\1(?![\w`])")
PASS_MACRO = re.compile(r"pass:[a-z,]*\[(.*?)\]")
TRIPLE_PLUS = re.compile(r"\+\+\+(.+?)\+\+\+")
DOUBLE_PLUS = re.compile(r"\+\+(.+?)\+\+")
XREF_MACRO = re.compile(r"xref:([^\[\s]+)\[([^\]]*)\]")
XREF_ANGLE = re.compile(r"<<([^,>]+?)(?:,\s*([^>]+?))?>>")
LINK_MACRO = re.compile(r"link:(\+\+.+?\+\+|[^\[\s]+)\[([^\]]*)\]")
MAILTO_MACRO = re.compile(r"mailto:([^\[\s]+)\[([^\]]*)\]")
URL_MACRO = re.compile(r"(?<![\w/(<\"'=])((?:https?|ftp|irc)://[^\s\[\]<>\"]+)\[([^\]]*)\]")
IMAGE_INLINE = re.compile(r"image:[^\s\[]*\[[^\]]*\]")
ICON_INLINE = re.compile(r"icon:[^\s\[]+\[[^\]]*\]")
KBD_MACRO = re.compile(r"kbd:\[([^\]]*)\]")
BTN_MACRO = re.compile(r"btn:\[([^\]]*)\]")
MENU_MACRO = re.compile(r"menu:([^\[\s]+)\[([^\]]*)\]")
FOOTNOTE_MACRO = re.compile(r"footnote(?:ref)?:[^\[\s]*\[([^\]]*)\]")
ANCHOR_INLINE = re.compile(r"\[\[[^\]]*\]\]|anchor:[^\[\s]+\[[^\]]*\]")
ROLE_SPAN = re.compile(r"\[[.#][^\]]*\]#([^#]+)#")
HIGHLIGHT = re.compile(r"(?<![\w#])#([^#\s](?:[^#]*?[^#\s])?)#(?![\w#])")
STRONG_UNCONSTRAINED = re.compile(r"\*\*(.+?)\*\*")
STRONG = re.compile(r"(?<![\w*\\])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])")
EMPHASIS_UNCONSTRAINED = re.compile(r"__(.+?)__")
EMPHASIS = re.compile(r"(?<![\w_\\])_(?=\S)([^_]+?)(?<=\S)_(?![\w_])")
CURVED_QUOTES = re.compile(r"\"`(.+?)`\"|'`(.+?)`'")
CALLOUT = re.compile(r"\s*(?://|#|--|;;)?\s*(?:<(?:\d+|\.)>\s*)+$")
HARD_BREAK = re.compile(r"\s\+$")
HARD_BREAK_MARK = "\x01"


class InlineConverter:
    """Converts one paragraph's text; links and code spans are protected by placeholders."""

    def __init__(self, attributes: dict[str, str], resolve_xref: XrefResolver, resolve_link: Callable[[str], str]):
        self._attributes = attributes
        self._resolve_xref = resolve_xref
        self._resolve_link = resolve_link

    def convert(self, text: str) -> str:
        saved: list[str] = []

        def keep(value: str) -> str:
            saved.append(value)
            return PLACEHOLDER.format(len(saved) - 1)

        # Literal passthroughs first: their content must not be formatted or substituted.
        text = PASS_MACRO.sub(lambda m: keep(m.group(1)), text)
        text = TRIPLE_PLUS.sub(lambda m: keep(m.group(1)), text)
        text = CODE_SPAN.sub(lambda m: keep(self._code_span(m.group(2))), text)
        text = DOUBLE_PLUS.sub(lambda m: keep(m.group(1)), text)
        text = _substitute_attributes(text, self._attributes)
        # Attribute values may hold code spans (`{jenkins-stable}` in backticks is already done).
        text = CODE_SPAN.sub(lambda m: keep(self._code_span(m.group(2))), text)
        text = IMAGE_INLINE.sub("", text)
        text = ICON_INLINE.sub("", text)
        text = ANCHOR_INLINE.sub("", text)
        text = XREF_MACRO.sub(lambda m: keep(self._xref(m.group(1), m.group(2))), text)
        text = XREF_ANGLE.sub(lambda m: keep(self._xref(m.group(1), m.group(2) or "")), text)
        text = LINK_MACRO.sub(lambda m: keep(self._link(m.group(1), m.group(2))), text)
        text = MAILTO_MACRO.sub(lambda m: keep(self._link("mailto:" + m.group(1), m.group(2))), text)
        text = URL_MACRO.sub(lambda m: keep(self._link(m.group(1), m.group(2))), text)
        text = KBD_MACRO.sub(lambda m: keep(f"`{m.group(1)}`"), text)
        text = BTN_MACRO.sub(lambda m: f"**{m.group(1)}**", text)
        text = MENU_MACRO.sub(lambda m: "**" + " > ".join([m.group(1), *filter(None, m.group(2).split(">"))]) + "**",
                              text)
        text = FOOTNOTE_MACRO.sub(lambda m: f" ({m.group(1)})" if m.group(1) else "", text)
        text = CURVED_QUOTES.sub(lambda m: f"\u201c{m.group(1)}\u201d" if m.group(1) else f"\u2018{m.group(2)}\u2019",
                                 text)
        text = ROLE_SPAN.sub(r"\1", text)
        text = HIGHLIGHT.sub(r"\1", text)
        text = STRONG_UNCONSTRAINED.sub(lambda m: keep(f"**{m.group(1)}**") if "\x00" not in m.group(1)
                                        else f"**{m.group(1)}**", text)
        text = STRONG.sub(r"**\1**", text)
        text = EMPHASIS_UNCONSTRAINED.sub(r"_\1_", text)
        text = EMPHASIS.sub(r"_\1_", text)
        text = text.replace("\\*", "*").replace("\\_", "_").replace("\\{", "{")
        # Placeholders can nest (a link whose text holds a code span), so restore until stable.
        for _ in range(4):
            if "\x00" not in text:
                break
            text = PLACEHOLDER_RE.sub(lambda m: saved[int(m.group(1))], text)
        return text

    @staticmethod
    def _code_span(content: str) -> str:
        # `+literal+` is AsciiDoc's escaped monospace; markdown needs no escaping inside backticks.
        if len(content) >= 2 and content[0] == "+" and content[-1] == "+":
            content = content[1:-1]
        fence = "``" if "`" in content else "`"
        return f"{fence}{content}{fence}"

    def _xref(self, target: str, text: str) -> str:
        target = target.strip()
        text = text.strip()
        if "#" not in target and not target.endswith(".adoc"):
            target = "#" + target  # `<<anchor>>` and `xref:anchor[]` point inside the current page
        resolved = self._resolve_xref(target)
        if resolved is None:
            return text or target
        url, title = resolved
        return f"[{text or title or url}]({url})"

    def _link(self, target: str, text: str) -> str:
        if target.startswith("++") and target.endswith("++"):
            target = target[2:-2]
        positional, _named = _parse_attrlist(text) if "=" in text else ([text], {})
        label = (positional[0] if positional else "").strip().rstrip("^")
        url = self._resolve_link(target)
        if not label:
            return url
        return f"[{label}]({url})"


# --------------------------------------------------------------------------------------------
# Block conversion
# --------------------------------------------------------------------------------------------

BLOCK_ATTRIBUTE = re.compile(r"^\[([^\[\]].*)?\]\s*$")
ANCHOR_LINE = re.compile(r"^\[\[[^\]]+\]\]\s*$")
BLOCK_TITLE = re.compile(r"^\.([^\s.].*)$")
DELIMITER = re.compile(r"^(-{4,}|\.{4,}|={4,}|\*{4,}|_{4,}|\+{4,}|/{4,}|--|`{3,}.*|~{4,})\s*$")
TABLE_DELIMITER = re.compile(r"^([|!,:])===+\s*$")
LIST_ITEM = re.compile(r"^\s*(\*{1,5}|-|\.{1,5}|\d+\.|<\d+>|<\.>)\s+(\S.*)$")
DESCRIPTION_ITEM = re.compile(r"^\s*(.+?)(:{2,4}|;;)(?:\s+(.*))?$")
BOLD_SPAN = re.compile(r"\*\*[^*\n]+\*\*")
ADMONITION_PARAGRAPH = re.compile(r"^(NOTE|TIP|IMPORTANT|WARNING|CAUTION):\s+(.*)$")
BLOCK_MACRO = re.compile(r"^(image|video|audio|toc)::[^\[]*\[.*\]\s*$")
THEMATIC_BREAK = re.compile(r"^('{3,}|<{3,}|\*\s\*\s\*)\s*$")
LANGUAGE_ALIASES = {"jenkinsfile": "groovy", "pipeline": "groovy", "sh": "bash", "shell": "bash", "console": "bash",
                    "yml": "yaml", "text": "", "txt": "", "none": "", "plaintext": ""}


@dataclass
class _BlockContext:
    positional: list[str] = field(default_factory=list)
    named: dict[str, str] = field(default_factory=dict)
    title: str = ""

    @property
    def style(self) -> str:
        return self.positional[0] if self.positional else ""


class BlockConverter:
    def __init__(self, inline: InlineConverter, attributes: dict[str, str], html_to_markdown: Callable[[str], str]):
        self._inline = inline
        self._attributes = attributes
        self._html_to_markdown = html_to_markdown
        self.title = ""

    def convert(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        context = _BlockContext()
        paragraph: list[str] = []
        index = 0

        def flush_paragraph() -> None:
            if paragraph:
                out.extend(self._paragraph(paragraph, context_for_paragraph))
                out.append("")
                paragraph.clear()

        context_for_paragraph = context
        while index < len(lines):
            line = lines[index].rstrip()
            stripped = line.strip()
            if paragraph and not stripped:
                flush_paragraph()
                context = _BlockContext()
                index += 1
                continue
            if not paragraph:
                if not stripped:
                    index += 1
                    continue
                if stripped.startswith("//") and not stripped.startswith("////"):
                    index += 1
                    continue
                if ANCHOR_LINE.match(stripped):
                    index += 1
                    continue
                attribute = BLOCK_ATTRIBUTE.match(stripped)
                if attribute and not stripped.startswith("[["):
                    positional, named = _parse_attrlist(attribute.group(1) or "")
                    context.positional = positional or context.positional
                    context.named.update(named)
                    index += 1
                    continue
                title = BLOCK_TITLE.match(stripped)
                if title and not LIST_ITEM.match(stripped):
                    context.title = title.group(1)
                    index += 1
                    continue
                section = SECTION.match(stripped)
                if section and not context.style.startswith(("source", "listing")):
                    level = len(section.group(1))
                    heading = self._inline.convert(section.group(2))
                    if level == 1 and not self.title:
                        self.title = _plain_title(heading)
                    out.extend(["#" * level + " " + heading, ""])
                    context = _BlockContext()
                    index += 1
                    continue
                delimiter = DELIMITER.match(stripped)
                table = TABLE_DELIMITER.match(stripped)
                if delimiter or table:
                    if out and out[-1].strip():
                        out.append("")
                    end = self._find_closing(lines, index, stripped)
                    body = lines[index + 1 : end]
                    out.extend(self._delimited(stripped, body, context, bool(table)))
                    out.append("")
                    context = _BlockContext()
                    index = end + 1
                    continue
                if BLOCK_MACRO.match(stripped) or THEMATIC_BREAK.match(stripped):
                    if stripped.startswith("'''"):
                        out.extend(["---", ""])
                    context = _BlockContext()
                    index += 1
                    continue
                if stripped == "+":  # list continuation: the attached block follows on its own
                    index += 1
                    continue
                if context.style in ("source", "listing", "literal", "pipeline") and not context.named.get("subs"):
                    # A source block without delimiters is one paragraph of code.
                    end = index
                    while end < len(lines) and lines[end].strip():
                        end += 1
                    out.extend(self._code(lines[index:end], context))
                    out.append("")
                    context = _BlockContext()
                    index = end
                    continue
                if line.startswith((" ", "\t")) and not LIST_ITEM.match(line):
                    # An indented paragraph is a literal block in AsciiDoc.
                    end = index
                    while end < len(lines) and lines[end].strip():
                        end += 1
                    out.extend(self._code(_dedent(lines[index:end]), _BlockContext(positional=["literal"])))
                    out.append("")
                    context = _BlockContext()
                    index = end
                    continue
                context_for_paragraph = context
            if not (stripped.startswith("//") and not stripped.startswith("////")):
                paragraph.append(line)
            index += 1
            # A list item or description item ends at the next item even without a blank line.
            if index < len(lines) and paragraph and (
                LIST_ITEM.match(lines[index]) or lines[index].strip() == "+" or
                _starts_block(lines[index].strip()) or
                (DESCRIPTION_ITEM.match(lines[index]) and DESCRIPTION_ITEM.match(paragraph[0]) is not None
                 and not lines[index].startswith(" "))
            ):
                flush_paragraph()
                out.pop()  # keep list items together
                context = _BlockContext()
                context_for_paragraph = context
        flush_paragraph()
        return out

    @staticmethod
    def _find_closing(lines: list[str], start: int, opener: str) -> int:
        closer = opener if not opener.startswith("```") else "```"
        for end in range(start + 1, len(lines)):
            if lines[end].rstrip() == closer:
                return end
        return len(lines)

    def _delimited(self, opener: str, body: list[str], context: _BlockContext, table: bool) -> list[str]:
        out: list[str] = []
        if context.title and not opener.startswith("////"):
            out.extend([f"**{self._inline.convert(context.title)}**", ""])
        style = context.style
        if table:
            return out + self._table(body, context)
        if opener.startswith("////"):
            return []
        if opener.startswith("```"):
            language = opener.strip("`").strip()
            return out + self._code(body, _BlockContext(positional=["source", language]))
        if opener.startswith(("----", "~~~~")) or (opener == "--" and style == "source"):
            return out + self._code(body, context if style else _BlockContext(positional=["listing"]))
        if opener.startswith("...."):
            return out + self._code(body, _BlockContext(positional=["literal"]))
        if opener.startswith("++++"):
            html = "\n".join(body)
            converted = self._html_to_markdown(html).strip() if html.strip() else ""
            return out + ([converted] if converted else [])
        inner = self.convert(body)
        while inner and not inner[-1].strip():
            inner.pop()
        if style in ADMONITIONS:
            return out + _quote([f"**{ADMONITION_LABEL[style]}:**", "", *inner])
        if opener.startswith("____") or style in ("quote", "verse"):
            return out + _quote(inner)
        return out + inner

    def _code(self, body: list[str], context: _BlockContext) -> list[str]:
        language = ""
        if context.style == "source" and len(context.positional) > 1:
            language = context.positional[1]
        elif context.style == "pipeline":
            language = "groovy"
        elif context.named.get("language"):
            language = context.named["language"]
        elif context.style == "source" and self._attributes.get("source-language"):
            language = self._attributes["source-language"]
        language = language.strip().lower()
        language = LANGUAGE_ALIASES.get(language, language)
        subs = context.named.get("subs", "")
        code: list[str] = []
        for raw in body:
            line = raw.rstrip()
            if "attributes" in subs:
                line = _substitute_attributes(line, self._attributes)
            line = CALLOUT.sub("", line) if "<" in line else line
            code.append(line)
        while code and not code[0].strip():
            code.pop(0)
        while code and not code[-1].strip():
            code.pop()
        fence = "````" if any(line.lstrip().startswith("```") for line in code) else "```"
        return [fence + language, *code, fence]

    def _paragraph(self, lines: list[str], context: _BlockContext) -> list[str]:
        out: list[str] = []
        if context.title:
            out.extend([f"**{self._inline.convert(context.title)}**", ""])
        first = lines[0].strip()
        admonition = ADMONITION_PARAGRAPH.match(first)
        if admonition or context.style in ADMONITIONS:
            label = admonition.group(1) if admonition else context.style
            body_lines = [admonition.group(2)] + lines[1:] if admonition else lines
            text = self._join(body_lines)
            return out + _quote([f"**{ADMONITION_LABEL[label]}:** {text}"])
        item = LIST_ITEM.match(lines[0])
        if item:
            marker, rest = item.groups()
            depth = len(marker) if marker[0] in "*." and marker != "<.>" else 1
            bullet = "1." if marker[0] in ".<" or marker[0].isdigit() else "-"
            rest = re.sub(r"^\[([ x*])\]\s+", lambda m: "[x] " if m.group(1) != " " else "[ ] ", rest)
            text = self._join([rest, *lines[1:]])
            return out + ["  " * (depth - 1) + f"{bullet} {text}"]
        description = DESCRIPTION_ITEM.match(lines[0])
        if description and not first.startswith(("http", "link:", "xref:")) and "`" not in description.group(1):
            term, marker, rest = description.groups()
            text = self._join([rest or "", *lines[1:]]).strip()
            term_md = self._inline.convert(term.strip())
            # A term the page emphasises itself (`*Description*::`, 225 entries of the system properties page) is
            # not wrapped again: `****Description****` is no markdown and shows as asterisks.
            if not BOLD_SPAN.fullmatch(term_md):
                term_md = f"**{term_md}**"
            return out + [f"- {term_md}" + (f": {text}" if text else "")]
        if context.style in ("quote", "verse"):
            return out + _quote([self._join(lines)])
        return out + [self._join(lines)]

    def _join(self, lines: list[str]) -> str:
        # Inline macros may span lines (`link:url[long\ntext]`): convert the paragraph as one string.
        parts = [line.strip()[:-2].rstrip() + HARD_BREAK_MARK if HARD_BREAK.search(line.strip()) else line.strip()
                 for line in lines]
        converted = self._inline.convert(" ".join(part for part in parts if part))
        return converted.replace(HARD_BREAK_MARK + " ", "  \n").replace(HARD_BREAK_MARK, "  \n").strip()

    def _table(self, body: list[str], context: _BlockContext) -> list[str]:
        columns = 0
        cols_spec = context.named.get("cols", "")
        if cols_spec:
            columns = sum(int(part.split("*")[0]) if "*" in part and part.split("*")[0].isdigit() else 1
                          for part in cols_spec.split(","))
        cells: list[str] = []
        first_row_cells = 0
        header_rows_seen = False
        current: list[str] | None = None
        blank_after_first = False
        for line_number, raw in enumerate(body):
            line = raw.rstrip()
            if not line.strip():
                if cells and not header_rows_seen:
                    header_rows_seen = True
                    blank_after_first = line_number > 0
                if current is not None:
                    current.append("")
                continue
            if re.match(r"^[a-z0-9.*+^<>]*\|", line):
                # Every unescaped '|' starts a cell; a cell spec (`2+|`, `a|`) may stand before it.
                parts = re.split(r"(?:(?<=\s)[0-9.*+^<>]*[adehlmsv]?)?(?<!\\)\|", line)
                if line_number == 0 or not header_rows_seen:
                    first_row_cells += len(parts) - 1
                if current is not None:
                    cells.append(" ".join(current))
                cells.extend(parts[1:-1])
                current = [parts[-1]]
            elif current is not None:
                current.append(line)
        if current is not None:
            cells.append(" ".join(current))
        if not columns:
            columns = first_row_cells or 1
        converted = [
            self._inline.convert(re.sub(r"\s+\+(?=\s|$)", " ", re.sub(r"\s+", " ", cell)).strip().replace("\\|", "|"))
            .replace("|", "\\|")
            for cell in cells
        ]
        rows = [converted[i : i + columns] for i in range(0, len(converted), columns)]
        if not rows:
            return []
        rows[-1] += [""] * (columns - len(rows[-1]))
        has_header = blank_after_first or "header" in context.named.get("options", "") or "%header" in context.positional
        header = rows[0] if has_header else [""] * columns
        body_rows = rows[1:] if has_header else rows
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * columns]
        lines.extend("| " + " | ".join(row) + " |" for row in body_rows)
        return lines


def _starts_block(line: str) -> bool:
    """Like Asciidoctor, a paragraph ends at a block attribute line or a block delimiter."""
    if line.startswith("[["):
        return False
    return bool(BLOCK_ATTRIBUTE.match(line) or DELIMITER.match(line) or TABLE_DELIMITER.match(line))


def _dedent(lines: list[str]) -> list[str]:
    indents = [len(line) - len(line.lstrip()) for line in lines if line.strip()]
    cut = min(indents) if indents else 0
    return [line[cut:] for line in lines]


def _quote(lines: list[str]) -> list[str]:
    return [("> " + line) if line.strip() else ">" for line in "\n".join(lines).splitlines()]


def _plain_title(markdown: str) -> str:
    """A title without markdown links or emphasis."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    return re.sub(r"[*`]", "", text).strip()


def _tidy(lines: list[str]) -> str:
    text = "\n".join(lines)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def convert_asciidoc(
    text: str,
    path: Path,
    *,
    attributes: dict[str, str] | None = None,
    resolve_include: IncludeResolver,
    resolve_xref: XrefResolver,
    resolve_link: Callable[[str], str],
    html_to_markdown: Callable[[str], str],
) -> ConvertedPage:
    """Convert one AsciiDoc page (front matter already removed) to markdown."""
    page_attributes = dict(attributes or {})
    preprocessor = Preprocessor(resolve_include, page_attributes)
    lines = preprocessor.run(text, path)
    inline = InlineConverter(page_attributes, resolve_xref, resolve_link)
    blocks = BlockConverter(inline, page_attributes, html_to_markdown)
    markdown_lines = blocks.convert(lines)
    title = blocks.title or page_attributes.get("doctitle", "")
    return ConvertedPage(
        title=title,
        markdown=_tidy(markdown_lines),
        attributes=page_attributes,
        includes=preprocessor.includes,
        warnings=preprocessor.warnings,
    )
