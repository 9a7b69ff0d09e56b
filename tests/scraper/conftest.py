"""Scraper fixtures: a loopback replay server primed with Discourse and StackExchange answers.

The answers are built from the real response shapes in ../shared/data/api-examples (every field of
the captured objects is kept; only ids, titles, texts, dates and the solved markers are set), so
the crawlers meet the structure the real APIs send.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from jenkins_assistant.scraper.config import ScrapeSettings
from tests.scraper.replay import ReplayServer

CATEGORY = "using-jenkins/7"
LONG_BODY = (
    "I run a declarative pipeline on a Linux agent and every stage that uses the docker agent fails with "
    "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock. "
    "The jenkins user can run docker ps from a shell on the same machine, the agent was restarted after "
    "adding the user to the docker group, and the pipeline worked last week before we upgraded the controller. "
    "What else should I check?"
)


@dataclass
class ForumTopic:
    id: int
    title: str
    question_html: str
    answer_html: str | None  # None: nobody's answer is accepted
    accepted_post_number: int = 2
    likes: int = 3
    solved_in_list: bool = True  # the topic list's has_accepted_answer
    topic_level_marker: bool = True  # discourse-solved's topic-level accepted_answer object
    posts_count: int = 4
    tags: list[str] = field(default_factory=lambda: ["pipeline"])


def forum_topics() -> list[list[ForumTopic]]:
    """Three pages of the category: 5 solved topics worth keeping or dropping for a known reason."""
    code = ('<p>Add the agent user to the group and restart the agent:</p>\n<pre><code class="lang-groovy">'
            "pipeline {\n  agent { docker { image 'maven:3.9' } }\n}\n</code></pre>\n"
            '<p>See <a href="https://www.jenkins.io/doc/book/pipeline/docker/">Using Docker with Pipeline</a>.</p>')
    return [
        [
            ForumTopic(101, "Docker agent: permission denied on the Docker daemon socket", f"<p>{LONG_BODY}</p>",
                       code, likes=5),
            ForumTopic(102, "Unanswered question about agents", "<p>How do I label agents for my builds?</p>", None,
                       solved_in_list=False),
            ForumTopic(103, "How to keep only the last 10 builds?",
                       "<p>Our controller disk fills up with old builds of every job. How can I keep only the "
                       "most recent ten builds of each pipeline?</p>",
                       "<p>Use the <code>buildDiscarder</code> option with <code>logRotator(numToKeepStr: '10')"
                       "</code> in the options block of the pipeline.</p>",
                       accepted_post_number=25, posts_count=30),
        ],
        [
            ForumTopic(104, "Jenkins startet nicht nach dem Update",
                       "<p>Nach dem Update auf die neue Version startet Jenkins nicht mehr und im Protokoll steht "
                       "eine Fehlermeldung über das Java-Laufzeitsystem. Was kann ich tun?</p>",
                       "<p>Sie brauchen mindestens Java 17. Installieren Sie eine neuere Java-Version und starten "
                       "Sie den Dienst danach neu, dann funktioniert es wieder.</p>"),
            ForumTopic(105, "Docker agent: permission denied on the Docker daemon socket",
                       f"<p>{LONG_BODY.replace('last week', 'yesterday')}</p>",
                       "<p>Restart the agent after changing groups.</p>", likes=1),
            ForumTopic(106, "Huge log in the answer", "<p>Why does my build print so much output in the log?</p>",
                       "<pre><code>" + "INFO something happened in the build\n" * 400 + "</code></pre>"),
        ],
        [
            ForumTopic(107, "How do I pass credentials to a shell step?",
                       "<p>I want to use a secret token stored in Jenkins credentials inside an sh step without "
                       "printing it in the console log.</p>",
                       "<p>Wrap the step in <code>withCredentials</code> and refer to the variable in single "
                       "quotes so Groovy does not interpolate the secret.</p>", likes=7,
                       topic_level_marker=False),
            ForumTopic(108, "Solved marker but the accepted post is gone",
                       "<p>Question text that lost its accepted answer.</p>", None),
        ],
    ]


def _load(shared_data: Path, relative: str):
    return json.loads((shared_data / "api-examples" / relative).read_text(encoding="utf-8"))


class ForumReplay:
    """Builds category pages and topic views from the captured Discourse shapes."""

    def __init__(self, shared_data: Path, server: ReplayServer) -> None:
        self.server = server
        self.list_template = _load(shared_data, "discourse/discourse_api_docs/responses/topics/latest_topics_response.json")
        self.view_template = _load(
            shared_data, "discourse/live-capture-discuss.criticalfallibilism.com/t_2108_post_452.json")
        self.pages = forum_topics()

    def list_item(self, topic: ForumTopic, bumped_at: str) -> dict:
        item = copy.deepcopy(self.list_template["topic_list"]["topics"][1])
        item.update(id=topic.id, title=topic.title, fancy_title=topic.title, slug=f"topic-{topic.id}",
                    posts_count=topic.posts_count, highest_post_number=topic.posts_count,
                    created_at="2025-03-01T10:00:00.000Z", bumped_at=bumped_at, last_posted_at=bumped_at,
                    has_accepted_answer=topic.solved_in_list, views=120, like_count=topic.likes, category_id=7,
                    tags=topic.tags)
        return item

    def category_page(self, page: int, bumped_at: str = "2025-03-02T10:00:00.000Z") -> dict:
        data = copy.deepcopy(self.list_template)
        topic_list = data["topic_list"]
        topic_list["topics"] = [self.list_item(topic, bumped_at) for topic in self.pages[page]]
        topic_list.pop("more_topics_url", None)
        if page + 1 < len(self.pages):
            topic_list["more_topics_url"] = f"/c/{CATEGORY}/l/latest?page={page + 1}"
        return data

    def post(self, topic: ForumTopic, number: int, cooked: str, accepted: bool) -> dict:
        post = copy.deepcopy(self.view_template["post_stream"]["posts"][0])
        post.update(id=topic.id * 1000 + number, post_number=number, cooked=cooked, topic_id=topic.id,
                    topic_slug=f"topic-{topic.id}", created_at="2025-03-01T10:00:00.000Z",
                    accepted_answer=accepted, topic_accepted_answer=topic.answer_html is not None,
                    actions_summary=[{"id": 2, "count": topic.likes if accepted else 0}])
        return post

    def topic_posts(self, topic: ForumTopic) -> dict[int, dict]:
        posts = {}
        for number in range(1, topic.posts_count + 1):
            if number == 1:
                cooked, accepted = topic.question_html, False
            elif topic.answer_html is not None and number == topic.accepted_post_number:
                cooked, accepted = topic.answer_html, True
            else:
                cooked, accepted = f"<p>Reply {number}: did you try restarting?</p>", False
            posts[number] = self.post(topic, number, cooked, accepted)
        return posts

    def topic_view(self, topic: ForumTopic, window_end: int | None = None) -> dict:
        data = copy.deepcopy(self.view_template)
        posts = self.topic_posts(topic)
        chunk = data.get("chunk_size", 20)
        numbers = list(posts)
        shown = numbers[:chunk] if window_end is None else numbers[max(0, window_end - chunk) : window_end]
        data["post_stream"] = {"posts": [posts[n] for n in shown], "stream": [posts[n]["id"] for n in numbers]}
        data.update(id=topic.id, title=topic.title, fancy_title=topic.title, slug=f"topic-{topic.id}",
                    posts_count=topic.posts_count, highest_post_number=topic.posts_count, tags=topic.tags,
                    created_at="2025-03-01T10:00:00.000Z", category_id=7)
        data.pop("accepted_answer", None)
        if topic.answer_html is not None and topic.topic_level_marker:
            data["accepted_answer"] = {"post_number": topic.accepted_post_number, "username": "helper",
                                       "excerpt": "", "name": "Helper"}
        return data

    def install(self, bumped_at: str = "2025-03-02T10:00:00.000Z") -> None:
        for page in range(len(self.pages)):
            key = f"/c/{CATEGORY}.json" + (f"?page={page}" if page else "")
            self.server.set_json(key, self.category_page(page, bumped_at))
            for topic in self.pages[page]:
                self.server.set_json(f"/t/{topic.id}.json", self.topic_view(topic))
                if topic.accepted_post_number > 20:
                    self.server.set_json(f"/t/{topic.id}/{topic.accepted_post_number}.json",
                                         self.topic_view(topic, window_end=topic.accepted_post_number))


class StackExchangeReplay:
    """Question pages and accepted answers in the shapes of the captured API 2.2/2.3 answers."""

    def __init__(self, shared_data: Path, server: ReplayServer) -> None:
        self.server = server
        self.wrapper = _load(shared_data, "stackexchange/real-capture-Jwhiles-Reputation-Builder/questions_response.json")
        self.question_item = _load(
            shared_data, "stackexchange/real-capture-vshtishi-stack-exchange-profiles-react/questions_items.json"
        )["items"][0]
        self.answer_item = _load(
            shared_data, "stackexchange/real-capture-vshtishi-stack-exchange-profiles-react/answers_items.json"
        )["items"][0]

    def question(self, qid: int, title: str, body: str, score: int, accepted: int | None) -> dict:
        item = copy.deepcopy(self.question_item)
        item.update(question_id=qid, title=title, body=body, score=score, tags=["jenkins", "jenkins-pipeline"],
                    link=f"https://stackoverflow.com/questions/{qid}/q", last_activity_date=1700000000 + qid,
                    creation_date=1600000000 + qid, content_license="CC BY-SA 4.0")
        item.pop("accepted_answer_id", None)
        if accepted:
            item["accepted_answer_id"] = accepted
        return item

    def answer(self, aid: int, qid: int, body: str) -> dict:
        item = copy.deepcopy(self.answer_item)
        item.update(answer_id=aid, question_id=qid, body=body, is_accepted=True, score=20,
                    content_license="CC BY-SA 4.0")
        return item

    def page(self, items: list[dict], has_more: bool, quota_remaining: int, backoff: int | None = None) -> dict:
        data = {key: value for key, value in self.wrapper.items() if key != "items"}
        data.update(items=items, has_more=has_more, quota_remaining=quota_remaining)
        if backoff:
            data["backoff"] = backoff
        return data

    def install(self, backoff_on_first_page: int | None = None) -> None:
        q1 = self.question(
            2001, "How to run a Jenkins pipeline stage only on the main branch?",
            "<p>I have a multibranch pipeline and want the deploy stage to run only for <code>main</code>.</p>",
            50, 3001)
        q2 = self.question(2002, "Unanswered: agent offline", "<p>My agent keeps going offline.</p>", 12, None)
        q3 = self.question(
            2003, "Jenkins &quot;Permission denied&quot; when running a shell script",
            "<p>The sh step fails with permission denied on my script, how do I fix it?</p>", 8, 3003)
        q4 = self.question(
            2004, "Trigger a downstream job with parameters from a pipeline",
            "<p>How can one pipeline start another job and pass it a string parameter?</p>", 6, 3004)
        self.server.set_json("/2.3/questions?page=1",
                             self.page([q1, q2, q3], True, 9990, backoff_on_first_page))
        self.server.set_json("/2.3/questions?page=2", self.page([q4], False, 9989))
        a1 = self.answer(3001, 2001, '<p>Use a <code>when</code> directive:</p>\n<pre class="lang-groovy s-code-block">'
                                     '<code>stage(\'Deploy\') {\n  when { branch \'main\' }\n  steps { sh \'./deploy\' }\n}\n'
                                     '</code></pre>')
        a3 = self.answer(3003, 2003, "<p>Make the script executable with <code>chmod +x</code> and commit the "
                                     "mode change, or call it with <code>sh 'bash ./script.sh'</code>.</p>")
        a4 = self.answer(3004, 2004, "<p>Use the <code>build</code> step: <code>build job: 'other', parameters: "
                                     "[string(name: 'X', value: 'y')]</code>.</p>")
        self.server.set_json("/2.3/answers/3001;3003", self.page([a1, a3], False, 9988))
        self.server.set_json("/2.3/answers/3004", self.page([a4], False, 9987))


@pytest.fixture
def replay_server() -> Iterator[ReplayServer]:
    server = ReplayServer().start()
    yield server
    server.stop()


@pytest.fixture
def forum(shared_data: Path, replay_server: ReplayServer) -> ForumReplay:
    forum = ForumReplay(shared_data, replay_server)
    forum.install()
    return forum


@pytest.fixture
def stackexchange(shared_data: Path, replay_server: ReplayServer) -> StackExchangeReplay:
    replay = StackExchangeReplay(shared_data, replay_server)
    replay.install()
    return replay


@pytest.fixture
def remote_settings(tmp_path: Path, replay_server: ReplayServer) -> ScrapeSettings:
    """Settings pointing both remote sources at the replay server, with fast retries and timeouts."""
    return ScrapeSettings(
        output_dir=tmp_path / "datasets",
        state_dir=tmp_path / "state",
        discourse_url=replay_server.url,
        discourse_categories=[CATEGORY],
        stackexchange_url=replay_server.url + "/2.3",
        stackexchange_min_score=5,
        requests_per_second=100,
        connect_timeout_s=2,
        read_timeout_s=0.5,
        max_retries=3,
        backoff_factor_s=0.05,
        max_retry_after_s=2,
        validation_fraction=0.34,
        docs_git_url="",
        blog_git_url="",
        plugins_update_center_url="",
    )
