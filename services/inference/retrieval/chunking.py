"""Splitting corpus documents (markdown) into overlapping passages for retrieval.

langchain-text-splitters does the work: first by markdown headings (so a passage never straddles two
sections and carries its heading path; fenced code is not mistaken for headings), then by paragraphs,
lines and words to the target size with overlap, keeping fenced code blocks whole when they fit.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from jenkins_assistant.common.records import CorpusDocument

_HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3")]
# Recorded in the index manifest: a change of splitting logic must re-chunk everything on the next build.
SPLITTER = ("v3: MarkdownHeaderTextSplitter(#,##,###) + RecursiveCharacterTextSplitter(paragraph, line, word; "
            "code kept; indentation kept)")
# Stands in for an empty line inside a fenced code block while splitting (a word joiner: never in the corpus).
_BLANK_IN_CODE = "\u2060"
# Stand in for a line's leading spaces and tabs while splitting: MarkdownHeaderTextSplitter strips every line, code
# included, which turned the corpus's YAML into invalid YAML and its Jenkinsfiles into unindented ones, in the
# passages the model copies from and in the sources the user reads. Printable symbols (the splitter drops
# unprintable characters) that the corpus never contains.
_INDENT = {" ": "\u2420", "\t": "\u2409"}
_MASK = str.maketrans(_INDENT)
_UNMASK = str.maketrans({mask: raw for raw, mask in _INDENT.items()})


def mask_indentation(markdown: str) -> str:
    """Leading whitespace of each line made non-blank, except before a code fence (both splitters find fences by their
    stripped line) and before a heading outside code (`## Title` indented by up to three spaces is still one)."""
    lines, in_fence = [], False
    for line in markdown.split("\n"):
        body = line.lstrip(" \t")
        if body.startswith(("```", "~~~")):
            in_fence = not in_fence
        elif body and body != line and (in_fence or not body.startswith("#")):
            line = line[: len(line) - len(body)].translate(_MASK) + body
        lines.append(line)
    return "\n".join(lines)


def unmask_indentation(text: str) -> str:
    return text.translate(_UNMASK)


def heading_sections(markdown: str, strip_headers: bool) -> list[tuple[str, str]]:
    """The document split at #, ## and ### headings: (heading path "A > B", section text). The text's indentation
    is still masked, so that a further split may strip lines without losing it; unmask_indentation restores it."""
    splitter = MarkdownHeaderTextSplitter(_HEADINGS, strip_headers=strip_headers)
    return [(" > ".join(part.metadata[key] for _, key in _HEADINGS if key in part.metadata), part.page_content)
            for part in splitter.split_text(mask_indentation(markdown))]


def _protect_code(markdown: str) -> str:
    lines, in_fence = [], False
    for line in markdown.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        lines.append(_BLANK_IN_CODE if in_fence and not line.strip() else line)
    return "\n".join(lines)


@dataclass
class Chunk:
    id: str
    doc_id: str
    url: str
    title: str
    # Heading path inside the document ("Pipeline syntax > Agent > Parameters").
    section: str
    text: str
    license: str
    source: str
    # Controllers that run the plugin the chunk's document is about (the update center's count of installs); None for
    # a page about no one plugin and for a plugin whose update center record is not in the corpus.
    plugin_installs: int | None = None

    @property
    def embedding_text(self) -> str:
        """What is embedded and keyword-indexed: the passage with the page title and section it belongs to."""
        heading = self.title if not self.section or self.section == self.title else f"{self.title} > {self.section}"
        return f"{heading}\n{self.text}"

    def to_dict(self) -> dict:
        return asdict(self)


class Chunker:
    def __init__(self, chunk_chars: int, overlap_chars: int) -> None:
        if overlap_chars >= chunk_chars:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self.chunk_chars = chunk_chars
        self.overlap_chars = overlap_chars
        # Paragraphs first, then lines, then words. The markdown preset splits at closing code fences,
        # which strands a fence opener in a chunk of its own; blank lines inside fences are masked instead
        # (`_protect_code`), so a code block that fits stays whole.
        self._by_size = RecursiveCharacterTextSplitter(
            separators=["\n\n", "\n", " ", ""], chunk_size=chunk_chars, chunk_overlap=overlap_chars,
            keep_separator=False,
        )

    def split(self, doc: CorpusDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for path, section in heading_sections(doc.text, strip_headers=False):
            for masked in self._by_size.split_text(_protect_code(section)):
                # Stripped while the indentation is masked: the first line keeps its own.
                piece = unmask_indentation(masked.replace(_BLANK_IN_CODE, "").strip())
                if not piece:
                    continue
                digest = hashlib.sha256(f"{doc.id}\0{len(chunks)}\0{piece}".encode()).hexdigest()[:16]
                chunks.append(Chunk(
                    id=digest, doc_id=doc.id, url=doc.url, title=doc.title, section=path,
                    text=piece, license=doc.license, source=doc.source,
                ))
        return chunks
