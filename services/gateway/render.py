"""Answers are markdown from a language model: render them to HTML that is safe to insert into the page.

Raw HTML in the answer is escaped (markdown-it's `html` option off) and links go through markdown-it's
validateLink, which refuses javascript:, vbscript:, file: and data: URLs. The page's Content-Security-Policy
forbids inline scripts as a second line of defence.
"""

from __future__ import annotations

from markdown_it import MarkdownIt

_LINK_REL = "noopener noreferrer nofollow"


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])

    def link_open(renderer, tokens, idx, options, env):
        # Links open in a new tab so the conversation stays where it is.
        tokens[idx].attrSet("target", "_blank")
        tokens[idx].attrSet("rel", _LINK_REL)
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MARKDOWN = _markdown()


def answer_html(markdown_text: str) -> str:
    """The answer as HTML fragments (paragraphs, lists, code blocks, tables, links), no raw HTML."""
    return _MARKDOWN.render(markdown_text)
