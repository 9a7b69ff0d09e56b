"""Question/answer rows (the fine-tuning dataset) and the CSV importers.

`QARow` is the in-memory form of `jenkins_assistant.v1.QAPair`. The dataset CSV has exactly the
columns `question, answer, source, url, license, score, created_at, tags` (tags joined with ';').

Two CSV shapes are imported:
* a StackExchange Data Explorer export (the seed's path): question title, body, accepted answer
  body and score, HTML bodies; column names vary with the query, so common aliases are accepted;
* a plain Q&A file with `question`/`answer` columns (curated or generated pairs).
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from jenkins_assistant.common.errors import InvalidInput
from jenkins_assistant.common.records import CorpusDocument
from jenkins_assistant.scraper.html_clean import html_to_markdown, tidy_markdown

QA_COLUMNS = ["question", "answer", "source", "url", "license", "score", "created_at", "tags"]


@dataclass
class QARow:
    id: str
    question: str  # markdown: the title, a blank line, then the body
    answer: str  # markdown
    source: str  # discourse | stackexchange | qa_file
    url: str
    license: str
    score: int = 0
    created_at: str = ""  # RFC 3339, "" when unknown
    tags: list[str] = field(default_factory=list)
    title: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> QARow:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})

    def csv_record(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "source": self.source,
            "url": self.url,
            "license": self.license,
            "score": int(self.score),
            "created_at": self.created_at,
            "tags": ";".join(self.tags),
        }

    def to_document(self) -> CorpusDocument:
        """The pair as a retrieval document: a solved question is good context for similar ones."""
        title = self.title or self.question.split("\n", 1)[0][:200]
        body = self.question
        if body.startswith(title):
            body = body[len(title) :].lstrip()
        text = f"# {title}\n\n{body}\n\n## Accepted answer\n\n{self.answer}\n".replace("\n\n\n", "\n\n")
        metadata = {"score": str(self.score)}
        return CorpusDocument(
            id=self.id,
            url=self.url,
            title=title,
            text=text,
            source=self.source,
            license=self.license,
            tags=list(self.tags),
            updated_at=self.created_at or None,
            metadata=metadata,
        )


def epoch_to_rfc3339(value) -> str:
    try:
        return datetime.fromtimestamp(int(value), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


def normalise_timestamp(value) -> str:
    """Any timestamp we meet (ISO with millis, '2019-03-12 10:00:00', epoch) as RFC 3339 UTC, or ""."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value == "":
        return ""
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return epoch_to_rfc3339(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        return ""
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def spdx_from_label(label: str | None, default: str = "NOASSERTION") -> str:
    """'CC BY-SA 4.0' (StackExchange's content_license) -> 'CC-BY-SA-4.0'."""
    if not label:
        return default
    return re.sub(r"\s+", "-", label.strip())


def parse_tags(value) -> list[str]:
    """'<jenkins><groovy>' (Data Explorer), '|jenkins|groovy|', 'a;b', 'a, b' or a list."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return []
    if isinstance(value, list | tuple):
        return [str(tag) for tag in value if str(tag)]
    text = str(value)
    if "<" in text and ">" in text:
        return re.findall(r"<([^<>]+)>", text)
    return [tag.strip() for tag in re.split(r"[|;,]", text) if tag.strip()]


# Column aliases of Data Explorer exports and plain Q&A files, lower-cased.
ALIASES = {
    "title": ("title", "questiontitle", "question_title", "question title"),
    "body": ("body", "questionbody", "question_body", "question body"),
    "answer_body": ("acceptedanswerbody", "accepted_answer_body", "answerbody", "answer_body", "accepted answer",
                    "acceptedanswer", "answer body"),
    "question": ("question",),
    "answer": ("answer",),
    "score": ("score", "questionscore", "question_score"),
    "id": ("id", "questionid", "question_id", "post link", "postid"),
    "created_at": ("creationdate", "creation_date", "created_at", "createdat"),
    "tags": ("tags",),
    "url": ("url", "link"),
    "license": ("license", "licence"),
}


def _column(frame: pd.DataFrame, name: str) -> str | None:
    lookup = {str(column).strip().lower(): column for column in frame.columns}
    for alias in ALIASES[name]:
        if alias in lookup:
            return lookup[alias]
    return None


def _cell(row, column: str | None):
    if column is None:
        return None
    value = row[column]
    return None if isinstance(value, float) and pd.isna(value) else value


def import_qa_csv(path: Path, *, license: str = "NOASSERTION", site_url: str = "https://stackoverflow.com") -> list[QARow]:
    """Rows of a Data Explorer export or of a plain question/answer CSV."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=object, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise InvalidInput(f"cannot read Q&A CSV {path}: {exc}") from exc
    title_col, body_col, answer_body_col = (_column(frame, n) for n in ("title", "body", "answer_body"))
    question_col, answer_col = _column(frame, "question"), _column(frame, "answer")
    explorer = title_col is not None and answer_body_col is not None
    if not explorer and (question_col is None or answer_col is None):
        raise InvalidInput(
            f"{path}: expected Data Explorer columns (Title, Body, AcceptedAnswerBody, Score) "
            f"or question/answer columns; found {list(frame.columns)}"
        )
    score_col, id_col, created_col = _column(frame, "score"), _column(frame, "id"), _column(frame, "created_at")
    tags_col, url_col, license_col = _column(frame, "tags"), _column(frame, "url"), _column(frame, "license")
    digest = hashlib.sha256(path.name.encode()).hexdigest()[:8]
    rows: list[QARow] = []
    for number, row in frame.iterrows():
        if explorer:
            title = html.unescape(str(_cell(row, title_col) or "")).strip()
            body = html_to_markdown(str(_cell(row, body_col) or ""))
            question = f"{title}\n\n{body}".strip()
            answer = html_to_markdown(str(_cell(row, answer_body_col) or ""))
            source = "stackexchange"
            row_license = spdx_from_label(_cell(row, license_col), "CC-BY-SA-4.0")
        else:
            title = ""
            question = tidy_markdown(str(_cell(row, question_col) or ""))
            answer = tidy_markdown(str(_cell(row, answer_col) or ""))
            source = "qa_file"
            row_license = spdx_from_label(_cell(row, license_col), license)
        raw_id = _cell(row, id_col)
        question_id = str(raw_id).strip() if raw_id is not None else ""
        url = str(_cell(row, url_col) or "")
        if not url and explorer and question_id.isdigit():
            url = f"{site_url}/q/{question_id}"
        try:
            score = int(float(_cell(row, score_col) or 0))
        except ValueError:
            score = 0
        rows.append(QARow(
            id=f"{source}:{question_id}" if (explorer and question_id) else f"{source}:{digest}:{number}",
            question=question,
            answer=answer,
            source=source,
            url=url,
            license=row_license,
            score=score,
            created_at=normalise_timestamp(_cell(row, created_col)),
            tags=parse_tags(_cell(row, tags_col)),
            title=title,
        ))
    return rows
