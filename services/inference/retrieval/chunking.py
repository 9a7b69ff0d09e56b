"""Splitting corpus documents (markdown) into overlapping passages for retrieval.

langchain-text-splitters does the work: first by markdown headings (so a passage never straddles two
sections and carries its heading path; fenced code is not mistaken for headings), then by the markdown
separators (headings, code fences, paragraphs, lines) to the target size with overlap.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from langchain_text_splitters import Language, MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from jenkins_assistant.common.records import CorpusDocument

_HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3")]


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
        self._by_heading = MarkdownHeaderTextSplitter(_HEADINGS, strip_headers=False)
        self._by_size = RecursiveCharacterTextSplitter.from_language(
            Language.MARKDOWN, chunk_size=chunk_chars, chunk_overlap=overlap_chars
        )

    def split(self, doc: CorpusDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in self._by_heading.split_text(doc.text):
            path = " > ".join(section.metadata[key] for _, key in _HEADINGS if key in section.metadata)
            for piece in self._by_size.split_text(section.page_content):
                if not piece.strip():
                    continue
                digest = hashlib.sha256(f"{doc.id}\0{len(chunks)}\0{piece}".encode()).hexdigest()[:16]
                chunks.append(Chunk(
                    id=digest, doc_id=doc.id, url=doc.url, title=doc.title, section=path,
                    text=piece.strip(), license=doc.license, source=doc.source,
                ))
        return chunks
