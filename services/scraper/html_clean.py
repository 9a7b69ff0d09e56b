"""HTML to markdown with markdownify (BeautifulSoup underneath), tuned for forum and Q&A bodies.

Discourse "cooked" posts and StackExchange bodies are HTML. We keep code as fenced blocks with
their language (from `class="lang-groovy"`, `language-groovy` or `data-code-wrap`), links as
markdown links, and drop the noise those sites add: lightbox wrappers, image metadata, mentions'
avatars, "edited" notices, emoji images.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag
from markdownify import MarkdownConverter

# Elements that carry no text worth keeping.
NOISE_SELECTORS = (
    "script",
    "style",
    "noscript",
    "svg",
    "img",
    "picture",
    "video",
    "iframe",
    "div.lightbox-wrapper .meta",
    "aside.onebox .source",
    ".post-menu-area",
    ".badge-wrapper",
)

LANGUAGE_CLASS = re.compile(r"^(?:lang|language)-(.+)$")
LANGUAGE_ALIASES = {"jenkinsfile": "groovy", "sh": "bash", "shell": "bash", "yml": "yaml", "nohighlight": "",
                    "auto": "", "plaintext": "", "text": "", "none": "", "default": ""}


def _code_language(element: Tag) -> str:
    candidates = [element]
    code = element.find("code") if element.name == "pre" else None
    if isinstance(code, Tag):
        candidates.insert(0, code)
    for candidate in candidates:
        for css_class in candidate.get("class") or []:
            match = LANGUAGE_CLASS.match(css_class)
            if match:
                language = match.group(1).lower()
                return LANGUAGE_ALIASES.get(language, language)
        wrap = candidate.get("data-code-wrap") or candidate.get("data-lang")
        if isinstance(wrap, str) and wrap:
            return LANGUAGE_ALIASES.get(wrap.lower(), wrap.lower())
    return ""


class _Converter(MarkdownConverter):
    def convert_pre(self, el, text, parent_tags):
        code = el.get_text()
        if not code.strip():
            return ""
        language = _code_language(el)
        code = code.strip("\n")
        fence = "````" if "```" in code else "```"
        return f"\n\n{fence}{language}\n{code}\n{fence}\n\n"


_CONVERTER_OPTIONS = {"heading_style": "ATX", "bullets": "-", "strong_em_symbol": "*", "escape_underscores": False,
                      "escape_asterisks": False, "escape_misc": False}


def _remove_noise(soup: BeautifulSoup) -> None:
    for selector in NOISE_SELECTORS:
        for element in soup.select(selector):
            element.decompose()
    # Discourse mentions and hashtags render fine as plain text; keep their text only.
    for anchor in soup.select("a.mention, a.hashtag, a.hashtag-cooked"):
        anchor.replace_with(NavigableString(anchor.get_text()))


def tidy_markdown(text: str) -> str:
    """Collapse whitespace noise without touching fenced code."""
    parts = re.split(r"(^(?:```|````)[^\n]*\n.*?^(?:```|````)[ \t]*$)", text, flags=re.MULTILINE | re.DOTALL)
    for index in range(0, len(parts), 2):
        prose = parts[index]
        prose = prose.replace("\u00a0", " ").replace("\u200b", "")
        prose = re.sub(r"[ \t]+\n", "\n", prose)
        prose = re.sub(r"\n{3,}", "\n\n", prose)
        prose = re.sub(r"[ \t]{2,}(?=\S)", " ", prose)
        parts[index] = prose
    return "".join(parts).strip()


def html_to_markdown(html: str) -> str:
    """Markdown of an HTML fragment: fenced code with its language, markdown links, no noise."""
    if not html or not html.strip():
        return ""
    soup = BeautifulSoup(html, "html.parser")
    _remove_noise(soup)
    return tidy_markdown(_Converter(**_CONVERTER_OPTIONS).convert_soup(soup))


def has_code(markdown: str) -> bool:
    """True when the text holds a fenced block or inline code (the seed's text-only filter)."""
    return "```" in markdown or bool(re.search(r"`[^`\n]+`", markdown))
