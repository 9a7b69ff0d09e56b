"""StackExchange API 2.3: questions tagged jenkins with an accepted answer, and those answers.

`/questions?tagged=jenkins&sort=votes&min=<score+1>&filter=withbody` pages (100 items) until
`has_more` is false, the quota runs out or the page limit is reached; then
`/answers/{ids}?filter=withbody` for the accepted answers (100 ids a call). The API's rules are
honoured: a `backoff` field makes us wait that many seconds before the next call, and a
`quota_remaining` of 0 stops the crawl (the state keeps the cursor, so the next run continues).

Resumable like the Discourse crawler: the page cursor and each question's pair (keyed by its
`last_activity_date`) live in the state file; an unchanged question is not asked for again.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable

from jenkins_assistant.scraper.html_clean import html_to_markdown
from jenkins_assistant.scraper.http import JsonResponse, PoliteClient, SourceError
from jenkins_assistant.scraper.qa import QARow, epoch_to_rfc3339, spdx_from_label
from jenkins_assistant.scraper.state import StateFile

log = logging.getLogger(__name__)

PAGE_SIZE = 100
Progress = Callable[[int, int, int], None]


class QuotaExhausted(SourceError):
    """The API quota for today is used up; the crawl stops and resumes on a later run."""


class StackExchangeCrawler:
    def __init__(
        self,
        client: PoliteClient,
        base_url: str,
        state: StateFile,
        *,
        site: str = "stackoverflow",
        tag: str = "jenkins",
        min_score: int = 5,
        max_pages: int = 20,
        api_key: str | None = None,
        body_filter: str = "withbody",
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_backoff_s: float = 300.0,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.state = state
        self.site = site
        self.tag = tag
        self.min_score = min_score
        self.max_pages = max_pages
        self.api_key = api_key
        self.body_filter = body_filter
        self.progress = progress or (lambda done, total, kept: None)
        self._sleep = sleep
        self._max_backoff_s = max_backoff_s
        self._backoff_until = 0.0
        self.quota_remaining: int | None = None
        self.stopped_early = ""

    def _params(self, **extra) -> dict:
        params = {"site": self.site, "filter": self.body_filter, **extra}
        if self.api_key:
            params["key"] = self.api_key
        return params

    def _get(self, path: str, params: dict) -> JsonResponse:
        wait = self._backoff_until - time.monotonic()
        if wait > 0:
            self._sleep(wait)
        response = self.client.get_json(f"{self.base_url}{path}", params)
        data = response.data if isinstance(response.data, dict) else None
        if data is None or "items" not in data:
            message = (data or {}).get("error_message") or "no items in the answer"
            raise SourceError(f"StackExchange {path}: {message}")
        if not response.not_modified:
            backoff = data.get("backoff")
            if backoff:
                # The API asks clients to pause this long before calling again.
                self._backoff_until = time.monotonic() + min(float(backoff), self._max_backoff_s)
            if "quota_remaining" in data:
                self.quota_remaining = int(data["quota_remaining"])
        return response

    @property
    def _questions(self) -> dict:
        return self.state.data.setdefault("questions", {})

    def crawl(self) -> list[QARow]:
        cursor = self.state.data.setdefault("cursor", {"next_page": 1, "complete": True})
        if cursor.get("complete"):
            cursor.update(next_page=1, complete=False)  # a refresh starts again at page 1
        page = int(cursor["next_page"])
        done = 0
        while page <= self.max_pages:
            if self.quota_remaining == 0:
                self.stopped_early = "quota exhausted"
                log.warning("StackExchange quota exhausted: stopping at page %d (resumes next run)", page)
                break
            response = self._get("/questions", self._params(
                page=page, pagesize=PAGE_SIZE, order="desc", sort="votes", min=self.min_score + 1,
                tagged=self.tag))
            items = response.data["items"]
            wanted = [item for item in items
                      if item.get("accepted_answer_id") and int(item.get("score", 0)) > self.min_score]
            changed = self._pair(wanted)
            done += len(items)
            self.progress(done, 0, self._kept())
            page += 1
            cursor["next_page"] = page
            if not response.data.get("has_more"):
                cursor.update(next_page=1, complete=True)
            if changed:  # a page that brought nothing new is cheap to ask again after a kill
                self.state.save()
            if cursor["complete"]:
                break
        else:
            cursor.update(next_page=1, complete=True)
        self.state.save()
        return [QARow.from_dict(entry["row"]) for _, entry in sorted(self._questions.items()) if entry.get("row")]

    def _kept(self) -> int:
        return sum(1 for entry in self._questions.values() if entry.get("row"))

    def _pair(self, questions: list[dict]) -> bool:
        """Fetch the accepted answers of new or changed questions. True when the state changed."""
        stale = [q for q in questions
                 if self._questions.get(str(q["question_id"]), {}).get("activity") != q.get("last_activity_date")]
        if not stale:
            return False
        answers: dict[int, dict] = {}
        ids = [str(q["accepted_answer_id"]) for q in stale]
        for start in range(0, len(ids), PAGE_SIZE):
            chunk = ";".join(ids[start : start + PAGE_SIZE])
            response = self._get(f"/answers/{chunk}", self._params(pagesize=PAGE_SIZE))
            for answer in response.data["items"]:
                answers[int(answer["answer_id"])] = answer
        for question in stale:
            answer = answers.get(int(question["accepted_answer_id"]))
            row = self._row(question, answer) if answer else None
            self._questions[str(question["question_id"])] = {
                "activity": question.get("last_activity_date"),
                "row": row.to_dict() if row else None,
            }
        return True

    def _row(self, question: dict, answer: dict) -> QARow:
        title = html.unescape(str(question.get("title") or "")).strip()
        body = html_to_markdown(question.get("body") or "")
        license = spdx_from_label(answer.get("content_license") or question.get("content_license"))
        return QARow(
            id=f"stackexchange:{question['question_id']}",
            question=f"{title}\n\n{body}".strip(),
            answer=html_to_markdown(answer.get("body") or ""),
            source="stackexchange",
            url=str(question.get("link") or f"https://stackoverflow.com/q/{question['question_id']}"),
            license=license,
            score=int(question.get("score") or 0),
            created_at=epoch_to_rfc3339(question.get("creation_date")),
            tags=[str(tag) for tag in question.get("tags") or []],
            title=title,
        )
