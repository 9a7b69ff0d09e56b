"""Plain record types shared by the services, with their protobuf and JSONL forms.

`AnswerRecord` and `AnswerFeedback` are what the memory service keeps of a finished answer and its rating (inference
writes them, the dataset export reads them). `CorpusDocument` is the in-memory form of `jenkins_assistant.v1.Document`. The document corpus on
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
from google.protobuf.timestamp_pb2 import Timestamp

from jenkins_assistant.common.files import atomic_open
from jenkins_assistant.v1 import common_pb2, memory_pb2

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


RATINGS = ("helpful", "not_helpful")
FINISH_REASONS = ("stop", "length", "cancelled", "repetition", "readout")
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "time_to_first_token_ms", "tokens_per_s", "retrieval_ms",
                "total_ms", "queue_ms")


def _seconds(stamp: Timestamp, present: bool) -> float:
    return stamp.seconds + stamp.nanos / 1e9 if present else 0.0


def _stamp(unix_s: float) -> Timestamp:
    stamp = Timestamp()
    # Clamped into what a Timestamp holds (up to 9999-12-31), so a stored value can never make a read fail.
    stamp.FromNanoseconds(int(min(max(unix_s, 0.0), 253_402_300_799) * 1e9))
    return stamp


def rating_to_pb(rating: str) -> int:
    return common_pb2.Rating.Value("RATING_" + rating.upper()) if rating in RATINGS else common_pb2.RATING_UNSPECIFIED


def rating_from_pb(value: int) -> str:
    """'helpful', 'not_helpful', or '' for RATING_UNSPECIFIED (or a value this build does not know)."""
    name = common_pb2.Rating.Name(value) if value in common_pb2.Rating.values() else "RATING_UNSPECIFIED"
    return "" if name == "RATING_UNSPECIFIED" else name.removeprefix("RATING_").lower()


def finish_reason_to_pb(reason: str) -> int:
    return common_pb2.FinishReason.Value("FINISH_REASON_" + reason.upper()) if reason in FINISH_REASONS else 0


def finish_reason_from_pb(value: int) -> str:
    """One of FINISH_REASONS, or '' for FINISH_REASON_UNSPECIFIED (or a value this build does not know)."""
    name = common_pb2.FinishReason.Name(value) if value in common_pb2.FinishReason.values() else ""
    reason = name.removeprefix("FINISH_REASON_").lower()
    return reason if reason in FINISH_REASONS else ""


@dataclass
class AnswerRecord:
    """A finished answer as it was given (the domain form of `jenkins_assistant.v1.AnswerRecord`)."""

    answer_id: str
    question: str
    answer_text: str
    session_id: str = ""
    owner: str = ""
    kind: str = "chat"  # "chat" (Chat, Ask) or "explain"
    standalone_question: str = ""
    source_urls: list[str] = field(default_factory=list)
    model: str = ""
    model_quant: str = ""
    corpus_sha256: str = ""
    finish_reason: str = ""  # one of FINISH_REASONS, "" = unknown
    usage: dict[str, float] = field(default_factory=dict)  # USAGE_FIELDS -> value
    asked_at: float = 0.0  # Unix seconds; 0 = unknown
    answered_at: float = 0.0

    def to_pb(self) -> memory_pb2.AnswerRecord:
        return memory_pb2.AnswerRecord(
            answer_id=self.answer_id, session_id=self.session_id, owner=self.owner, kind=self.kind,
            question=self.question, standalone_question=self.standalone_question, answer_text=self.answer_text,
            source_urls=self.source_urls, model=self.model, model_quant=self.model_quant,
            corpus_sha256=self.corpus_sha256, finish_reason=finish_reason_to_pb(self.finish_reason),
            usage=common_pb2.Usage(**{k: v for k, v in self.usage.items() if k in USAGE_FIELDS}),
            asked_at=_stamp(self.asked_at), answered_at=_stamp(self.answered_at),
        )

    @classmethod
    def from_pb(cls, record: memory_pb2.AnswerRecord) -> AnswerRecord:
        usage = {name: getattr(record.usage, name) for name in USAGE_FIELDS}
        return cls(
            answer_id=record.answer_id, session_id=record.session_id, owner=record.owner, kind=record.kind,
            question=record.question, standalone_question=record.standalone_question,
            answer_text=record.answer_text, source_urls=list(record.source_urls), model=record.model,
            model_quant=record.model_quant, corpus_sha256=record.corpus_sha256,
            finish_reason=finish_reason_from_pb(record.finish_reason),
            usage={k: v for k, v in usage.items() if v},
            asked_at=_seconds(record.asked_at, record.HasField("asked_at")),
            answered_at=_seconds(record.answered_at, record.HasField("answered_at")),
        )


@dataclass
class AnswerFeedback:
    """A user's rating of an answer (the domain form of `jenkins_assistant.v1.AnswerFeedback`)."""

    rating: str  # one of RATINGS
    comment: str = ""
    corrected_answer: str = ""
    rated_at: float = 0.0  # Unix seconds, set by the memory service

    def to_pb(self) -> memory_pb2.AnswerFeedback:
        return memory_pb2.AnswerFeedback(rating=rating_to_pb(self.rating), comment=self.comment,
                                         corrected_answer=self.corrected_answer, rated_at=_stamp(self.rated_at))

    @classmethod
    def from_pb(cls, feedback: memory_pb2.AnswerFeedback) -> AnswerFeedback:
        return cls(rating=rating_from_pb(feedback.rating), comment=feedback.comment,
                   corrected_answer=feedback.corrected_answer,
                   rated_at=_seconds(feedback.rated_at, feedback.HasField("rated_at")))
