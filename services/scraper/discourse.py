"""community.jenkins.io (Discourse): solved topics as question/answer pairs.

Crawl: page through each category's topic list (`/c/{slug}/{id}.json?page=N`) until a page comes
back empty or without `more_topics_url`; for every topic the discourse-solved plugin marks as
solved (`has_accepted_answer`), fetch `/t/{id}.json`, and pair the first post with the accepted
one (topic-level `accepted_answer.post_number`, or the post flagged `accepted_answer: true`; when
that post is beyond the first chunk of posts, `/t/{id}/{post_number}.json` brings it).

Resumable: the category cursor and every topic's result (keyed by its `bumped_at`) are saved in
the state file after each step. A killed run continues at the saved page; a topic that has not
been bumped since it was read is not fetched again.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from urllib.parse import quote

from jenkins_assistant.scraper.html_clean import html_to_markdown
from jenkins_assistant.scraper.http import PoliteClient, SourceError
from jenkins_assistant.scraper.qa import QARow, normalise_timestamp
from jenkins_assistant.scraper.state import StateFile

log = logging.getLogger(__name__)

LIKE_ACTION_ID = 2  # post action type "like" in actions_summary

# progress(done, total, kept): total 0 = unknown.
Progress = Callable[[int, int, int], None]


def _likes(post: dict) -> int:
    if isinstance(post.get("like_count"), int):
        return post["like_count"]
    for action in post.get("actions_summary") or []:
        if action.get("id") == LIKE_ACTION_ID:
            return int(action.get("count") or 0)
    return 0


def _tags(topic: dict) -> list[str]:
    tags = []
    for tag in topic.get("tags") or []:
        # Discourse >= 3.3 may send tags as objects ({id, name, slug}).
        name = tag.get("name") if isinstance(tag, dict) else tag
        if name:
            tags.append(str(name))
    return tags


class DiscourseCrawler:
    def __init__(
        self,
        client: PoliteClient,
        base_url: str,
        categories: list[str],
        state: StateFile,
        *,
        max_pages: int = 50,
        license: str = "NOASSERTION",
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.categories = categories
        self.state = state
        self.max_pages = max_pages
        self.license = license
        self.progress = progress or (lambda done, total, kept: None)
        self.topics_fetched = 0

    # ---- state helpers
    @property
    def _cursors(self) -> dict:
        return self.state.data.setdefault("categories", {})

    @property
    def _topics(self) -> dict:
        return self.state.data.setdefault("topics", {})

    def crawl(self) -> list[QARow]:
        """Crawl every category (resuming an interrupted run) and return all solved pairs known."""
        cursors = self._cursors
        if all(cursors.get(category, {}).get("complete") for category in self.categories):
            # The previous run finished: this is a refresh, from the first page again. The cursors
            # are reset in memory only; they are saved once a page brings something new.
            for category in self.categories:
                cursors[category] = {"next_page": 0, "complete": False}
        done = 0
        for category in self.categories:
            done = self._crawl_category(category, done)
        # Unchanged re-run: the final cursors equal the saved ones, and save() writes nothing.
        self.state.save()
        rows = [QARow.from_dict(entry["row"]) for _, entry in sorted(self._topics.items()) if entry.get("row")]
        return rows

    def _crawl_category(self, category: str, done: int) -> int:
        cursor = self._cursors.setdefault(category, {"next_page": 0, "complete": False})
        if cursor.get("complete"):
            return done
        slug_id = category.strip("/")
        page = int(cursor.get("next_page", 0))
        while page < self.max_pages:
            response = self.client.get_json(f"{self.base_url}/c/{slug_id}.json", {"page": page} if page else None)
            topic_list = (response.data or {}).get("topic_list") if isinstance(response.data, dict) else None
            if not isinstance(topic_list, dict):
                raise SourceError(f"{self.base_url}/c/{slug_id}.json?page={page}: no topic_list in the answer")
            topics = topic_list.get("topics") or []
            changed = not response.not_modified
            for topic in topics:
                if self._visit_topic(topic):
                    changed = True
                done += 1
                self.progress(done, 0, self._kept())
            page += 1
            cursor["next_page"] = page
            last_page = not topics or not topic_list.get("more_topics_url")
            if last_page:
                cursor["complete"] = True
            if changed:
                self.state.save()
            if last_page:
                break
        else:
            cursor["complete"] = True
        return done

    def _kept(self) -> int:
        return sum(1 for entry in self._topics.values() if entry.get("row"))

    def _visit_topic(self, topic: dict) -> bool:
        """Fetch and pair one listed topic when needed. True when the state changed."""
        topic_id = str(topic.get("id"))
        if topic.get("has_accepted_answer") is False or topic.get("archetype", "regular") != "regular":
            return False
        marker = topic.get("bumped_at") or topic.get("last_posted_at") or ""
        known = self._topics.get(topic_id)
        if known is not None and known.get("bumped_at") == marker:
            return False
        row = self._fetch_pair(topic_id, topic.get("slug") or "")
        self.topics_fetched += 1
        self._topics[topic_id] = {"bumped_at": marker, "row": row.to_dict() if row else None}
        return True

    def _fetch_pair(self, topic_id: str, slug: str) -> QARow | None:
        response = self.client.get_json(f"{self.base_url}/t/{topic_id}.json")
        topic = response.data if isinstance(response.data, dict) else {}
        posts = {post.get("post_number"): post for post in (topic.get("post_stream") or {}).get("posts") or []}
        accepted_number = None
        accepted_info = topic.get("accepted_answer")
        if isinstance(accepted_info, dict) and accepted_info.get("post_number"):
            accepted_number = int(accepted_info["post_number"])
        else:
            for number, post in posts.items():
                if post.get("accepted_answer") is True:
                    accepted_number = number
                    break
        if accepted_number is None or accepted_number == 1:
            return None
        if accepted_number not in posts:
            around = self.client.get_json(f"{self.base_url}/t/{topic_id}/{accepted_number}.json").data
            for post in ((around or {}).get("post_stream") or {}).get("posts") or []:
                posts.setdefault(post.get("post_number"), post)
        question_post, answer_post = posts.get(1), posts.get(accepted_number)
        if question_post is None or answer_post is None:
            log.warning("topic %s: question or accepted post missing from the answer", topic_id)
            return None
        title = html.unescape(str(topic.get("title") or topic.get("fancy_title") or "")).strip()
        body = html_to_markdown(question_post.get("cooked") or "")
        slug = topic.get("slug") or slug or "topic"
        return QARow(
            id=f"discourse:{topic_id}",
            question=f"{title}\n\n{body}".strip(),
            answer=html_to_markdown(answer_post.get("cooked") or ""),
            source="discourse",
            url=f"{self.base_url}/t/{quote(slug)}/{topic_id}/{accepted_number}",
            license=self.license,
            score=_likes(answer_post),
            created_at=normalise_timestamp(topic.get("created_at") or question_post.get("created_at")),
            tags=_tags(topic),
            title=title,
        )
