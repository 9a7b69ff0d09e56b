"""Answers are model output: the HTML sent to the page must never carry script or raw HTML."""

from __future__ import annotations

from jenkins_assistant.gateway.render import answer_html


def test_raw_html_in_an_answer_is_escaped():
    html = answer_html('Run <script>alert("x")</script> and <img src=x onerror=alert(1)>')
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_script_urls_are_not_made_links():
    for url in ("javascript:alert(1)", "vbscript:msgbox", "data:text/html;base64,PHNjcmlwdD4="):
        assert "<a " not in answer_html(f"[click]({url})")


def test_markdown_is_rendered_with_code_tables_and_safe_links():
    html = answer_html(
        "Use **archiveArtifacts**:\n\n```groovy\narchiveArtifacts artifacts: 'build/*.jar'\n```\n\n"
        "| step | plugin |\n|---|---|\n| junit | junit |\n\nSee [the docs](https://www.jenkins.io/doc/)."
    )
    assert "<strong>archiveArtifacts</strong>" in html
    assert '<code class="language-groovy">archiveArtifacts artifacts: \'build/*.jar\'' in html
    assert "<td>junit</td>" in html
    assert ('<a href="https://www.jenkins.io/doc/" target="_blank" rel="noopener noreferrer nofollow">the docs</a>'
            in html)
