"""Plain record types shared by the services, with their protobuf and JSONL forms.

`CorpusDocument` is the in-memory form of `jenkins_assistant.v1.Document`. The document corpus on
disk is JSONL with one Document per line in protobuf's JSON mapping (camelCase keys), so any
protobuf runtime (the Jenkins plugin's Java one included) can read it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import json_format

from jenkins_assistant.common.files import atomic_open
from jenkins_assistant.v1 import common_pb2

# SourceKind names without the enum prefix, as used in CSVs and metadata ("jenkins_docs", ...).
SOURCE_KINDS = tuple(
    name.removeprefix("SOURCE_KIND_").lower()
    for name in common_pb2.SourceKind.keys()  # noqa: SIM118 - an enum wrapper, not a dict
    if name != "SOURCE_KIND_UNSPECIFIED"
)


def source_kind_to_pb(kind: str) -> int:
    return common_pb2.SourceKind.Value("SOURCE_KIND_" + kind.upper())


def source_kind_from_pb(value: int) -> str:
    return common_pb2.SourceKind.Name(value).removeprefix("SOURCE_KIND_").lower()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class CorpusDocument:
    id: str
    url: str
    title: str
    text: str
    source: str  # one of SOURCE_KINDS
    license: str
    tags: list[str] = field(default_factory=list)
    updated_at: str | None = None  # RFC 3339
    content_sha256: str = ""
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.source not in SOURCE_KINDS:
            raise ValueError(f"unknown source kind {self.source!r}; expected one of {SOURCE_KINDS}")
        if not self.content_sha256:
            self.content_sha256 = sha256_text(self.text)

    def to_pb(self) -> common_pb2.Document:
        doc = common_pb2.Document(
            id=self.id,
            url=self.url,
            title=self.title,
            text=self.text,
            source=source_kind_to_pb(self.source),
            license=self.license,
            tags=self.tags,
            content_sha256=self.content_sha256,
            metadata=self.metadata,
        )
        if self.updated_at:
            doc.updated_at.FromJsonString(self.updated_at)
        return doc

    @classmethod
    def from_pb(cls, doc: common_pb2.Document) -> CorpusDocument:
        return cls(
            id=doc.id,
            url=doc.url,
            title=doc.title,
            text=doc.text,
            source=source_kind_from_pb(doc.source),
            license=doc.license,
            tags=list(doc.tags),
            updated_at=doc.updated_at.ToJsonString() if doc.HasField("updated_at") else None,
            content_sha256=doc.content_sha256,
            metadata=dict(doc.metadata),
        )

    def to_json_line(self) -> str:
        return json.dumps(json_format.MessageToDict(self.to_pb()), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json_line(cls, line: str) -> CorpusDocument:
        return cls.from_pb(json_format.Parse(line, common_pb2.Document()))


def write_documents_jsonl(path: Path, documents: Iterable[CorpusDocument]) -> int:
    """Write atomically: a killed run never leaves a partial corpus."""
    count = 0
    with atomic_open(path) as out:
        for doc in documents:
            out.write(doc.to_json_line() + "\n")
            count += 1
    return count


def read_documents_jsonl(path: Path) -> Iterator[CorpusDocument]:
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    yield CorpusDocument.from_json_line(line)
                except json_format.ParseError as exc:
                    raise ValueError(f"{path}:{number}: not a Document: {exc}") from exc


@dataclass(frozen=True)
class SourceRef:
    """A document an answer was grounded on (the domain form of `jenkins_assistant.v1.Source`)."""

    url: str
    title: str = ""
    snippet: str = ""
    score: float = 0.0
    license: str = ""
    citation: int = 0  # the [n] an answer cites it by; 0 = none
    section: str = ""
    passage: str = ""  # the whole passage given to the model (not stored in memory)

    def to_pb(self) -> common_pb2.Source:
        return common_pb2.Source(
            url=self.url, title=self.title, snippet=self.snippet, score=self.score, license=self.license,
            citation=self.citation, section=self.section, passage=self.passage,
        )

    @classmethod
    def from_pb(cls, source: common_pb2.Source) -> SourceRef:
        return cls(
            url=source.url, title=source.title, snippet=source.snippet, score=source.score, license=source.license,
            citation=source.citation, section=source.section, passage=source.passage,
        )
