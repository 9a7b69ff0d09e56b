"""Scraper settings, read from SCRAPER_* environment variables (tests pass objects instead).

`ScrapeSettings` describes one scrape (sources, HTTP politeness, processing limits, outputs) and
is what the CLI and the pure core use; `ScraperServerSettings` adds the gRPC server's settings.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jenkins_assistant.common.config import ServerSettings

DEFAULT_USER_AGENT = (
    "jenkins-assistant-scraper/0.1 (+https://github.com/jenkinsci; Jenkins knowledge assistant dataset builder)"
)


class ScrapeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SCRAPER_", extra="ignore", populate_by_name=True)

    # ---- outputs and state
    output_dir: Path = Field(Path("data/datasets"), description="Folder of versioned datasets (one subfolder each).")
    state_dir: Path | None = Field(
        None,  # filled in below: beside the output folder, on the same volume
        description="Resumable state: HTTP validators and cached bodies, crawl cursors, synced sources. "
        "Default: <output_dir>/../scraper-state.",
    )

    # ---- local sources: a folder wins; otherwise the production remote below is synced into state_dir
    docs_root: Path | None = Field(None, description="docs.jenkins.io checkout (folder holding docs/*/antora.yml).")
    blog_root: Path | None = Field(None, description="Folder holding content/blog/**.adoc (+ blog-index.json).")
    plugins_root: Path | None = Field(None, description="Plugin docs folder with MANIFEST.tsv.")
    docs_git_url: str = Field("https://github.com/jenkins-infra/docs.jenkins.io.git",
                              description="Docs repository cloned when docs_root is unset; empty = no docs.")
    docs_git_ref: str = Field("", description="Branch or tag of the docs repository; empty = default branch.")
    blog_git_url: str = Field("https://github.com/jenkins-infra/jenkins.io.git",
                              description="Repository holding content/blog (sparse clone); empty = no blog.")
    blog_git_ref: str = Field("", description="Branch or tag of the blog repository.")
    plugins_update_center_url: str = Field(
        "https://updates.jenkins.io/current/update-center.actual.json",
        description="Update center JSON ranking plugins by installs, when plugins_root is unset; empty = none.",
    )
    plugins_top_n: int = Field(100, ge=1, le=2000, description="Most-installed plugins whose docs are fetched.")
    github_api_url: str = Field("https://api.github.com", description="GitHub REST API base URL.")
    github_token: SecretStr | None = Field(None, description="Optional GitHub token (higher API rate limit).")
    jenkins_stable: str = Field("2.504.3", description="Value of the {jenkins-stable} attribute in the docs.")

    # ---- community.jenkins.io (Discourse)
    discourse_url: str = Field("https://community.jenkins.io", description="Discourse base URL.")
    discourse_categories: list[str] = Field(
        default_factory=lambda: ["using-jenkins/7"],
        description="Categories to crawl as slug/id (JSON list in the environment).",
    )
    discourse_max_pages: int = Field(50, ge=1, le=10_000, description="Topic list pages per category, at most.")
    discourse_api_key: SecretStr | None = Field(None, description="Optional Api-Key header (read-only key).")
    discourse_api_username: str | None = Field(None, description="Api-Username sent with the API key.")
    discourse_license: str = Field(
        "NOASSERTION", description="Licence recorded for forum posts (set it from the forum's terms of service)."
    )

    # ---- StackExchange
    stackexchange_url: str = Field("https://api.stackexchange.com/2.3", description="StackExchange API base URL.")
    stackexchange_site: str = Field("stackoverflow", description="Site parameter.")
    stackexchange_tag: str = Field("jenkins", description="Tag the questions must carry.")
    stackexchange_min_score: int = Field(5, description="Keep questions with a score above this.")
    stackexchange_max_pages: int = Field(20, ge=1, le=10_000, description="Question pages (100 each), at most.")
    stackexchange_key: SecretStr | None = Field(None, description="App key: raises the daily quota.")
    stackexchange_filter: str = Field("withbody", description="Filter that adds the HTML `body` to items.")

    # ---- Q&A files (Data Explorer CSV exports, curated CSVs)
    qa_csv_files: list[Path] = Field(default_factory=list, description="Q&A CSV files to import.")
    qa_csv_license: str = Field("NOASSERTION", description="Licence of plain question/answer CSV rows.")

    # ---- HTTP politeness
    user_agent: str = Field(DEFAULT_USER_AGENT, description="User-Agent of every request.")
    requests_per_second: float = Field(2.0, gt=0, le=100, description="Upper bound on request rate per host.")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout.")
    read_timeout_s: float = Field(30.0, gt=0, description="Read timeout per response.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of 429/5xx/timeouts, exponential backoff.")
    backoff_factor_s: float = Field(1.0, ge=0, description="Base of the exponential backoff between retries.")
    max_retry_after_s: float = Field(300.0, ge=0, description="Longest Retry-After / backoff wait we honour.")

    # ---- processing
    max_chars: int = Field(11_000, ge=100, description="Q&A rows longer than this (question + answer) are dropped.")
    min_answer_chars: int = Field(20, ge=0, description="Answers shorter than this are dropped as empty.")
    near_duplicate_threshold: float = Field(
        0.8, gt=0, le=1, description="Jaccard similarity of question shingles above which rows are duplicates."
    )
    text_only: bool = Field(False, description="Drop Q&A rows containing code (the seed's mode).")
    validation_fraction: float = Field(0.1, ge=0, lt=1, description="Share of Q&A rows in the validation split.")
    split_seed: str = Field("jenkins-assistant", description="Salt of the deterministic train/validation split.")

    @model_validator(mode="after")
    def _state_beside_output(self):
        if self.state_dir is None:
            self.state_dir = Path(self.output_dir).parent / "scraper-state"
        return self


class ScraperServerSettings(ServerSettings, ScrapeSettings):
    model_config = SettingsConfigDict(env_prefix="SCRAPER_", extra="ignore", populate_by_name=True)

    port: int = Field(50071, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    max_jobs: int = Field(1, ge=1, le=8, description="Scrape jobs allowed to run at once; more get RESOURCE_EXHAUSTED.")
