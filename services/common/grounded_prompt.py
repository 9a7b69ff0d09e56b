"""The grounded-answer prompt: what the model is told at serving time and trained on by the training job.

One definition for both sides, so a fine-tuned model learns exactly the layout it is served with: the
system prompt, then (in the user's turn, next to the question, where a small model attends) the numbered
passages and the question. Citations `[n]` refer to these numbers, and the sources a user sees carry the
same numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import dropwhile

from jenkins_assistant.common.pasted_output import search_text

# No general "if the passages do not answer, say so" rule: Qwen2.5-Coder-0.5B applied it to answerable questions
# (22% of them answered "The documentation does not cover the question" although the passages held the facts),
# while the out-of-corpus questions it should catch are caught by the stated note on names no passage mentions
# (grounded_question). Without the rule, same passages, same greedy decoding: on 40 tune questions plus 9 more out-of-corpus ones false
# abstentions 0.216 -> 0.108, key-fact recall 0.207 -> 0.221, out-of-corpus abstention unchanged (10 of 12); on
# the 32 holdout questions false abstentions 0.172 -> 0.034, recall 0.195 -> 0.230, abstention unchanged (2 of 3).
# A worked example exchange before the question was tried too and lost recall (0.198 and 0.140 for two
# examples): the model copied the example's content and phrasing into unrelated answers.
SYSTEM_PROMPT = (
    "You are Jenkins Assistant, an expert on the Jenkins automation server, its pipelines and plugins. "
    "Answer from the numbered documentation passages in the user's message, in markdown and concisely. "
    "Cite the passage a fact comes from as [1], [2]. Copy step names, commands, option keys, plugin ids and "
    "menu paths exactly as the passages write them and never invent any."
)

# Without passages (retrieval off or nothing indexed) the model may only use what it knows.
SYSTEM_PROMPT_NO_PASSAGES = (
    "You are Jenkins Assistant, an expert on the Jenkins automation server, its pipelines and plugins. "
    "Answer in markdown and concisely. Put commands and Jenkinsfiles in fenced code blocks. If you are not "
    "sure, say so instead of guessing."
)


@dataclass(frozen=True)
class Passage:
    title: str
    url: str
    text: str
    # Heading path inside the page ("Pipeline syntax > Declarative Pipeline > parallel"), when known.
    section: str = ""

    @property
    def heading(self) -> str:
        return heading_path(self.title, self.section)


def heading_path(title: str, section: str) -> str:
    """A passage's page title and heading path as one path: the index's heading paths start with the title, which
    is said once ("Pipeline syntax > Declarative Pipeline > parallel")."""
    if section and section != title:
        return f"{title} > {section.removeprefix(title + ' > ')}"
    return title


def passages_block(passages: list[Passage]) -> str:
    return "\n\n".join(f"[{number}] {passage.heading}\n{passage.text.strip()}"
                       for number, passage in enumerate(passages, 1))


# Names in a question that documentation would spell the same way: CLI flags (--drain-timeout), camelCase
# options and steps (retryCount), Java properties and files (jenkins.model.Jenkins.x, config.toml),
# snake_case keys, and named plugins ("Build Cost Insights plugin"). A user's own values (hosts, job names,
# quoted strings, placeholders that end in one capital: teamA, nodeB) are left out: the documentation cannot
# contain them.
_SPECIFIC_TERM = re.compile(
    r"(?<![\w-])(--?[A-Za-z][\w-]{2,})"
    r"|\b([a-z]+[A-Z][A-Za-z0-9]+)\b"
    r"|\b([A-Za-z]\w*(?:\.[A-Za-z]\w*){2,}|[A-Za-z][\w-]*\.(?:toml|ya?ml|json|xml|properties|groovy|conf))\b"
    r"|\b([a-z][a-z0-9]*(?:_[a-z0-9]+){1,})\b"
    r"|\b((?:[A-Z][\w-]*\s+){1,4})plugin\b"
)
_DOMAIN = re.compile(r"\.(?:com|org|net|io|dev|local|internal)$", re.IGNORECASE)
# A Java class (java.lang.String): in a pasted stack trace it names the failure, not something to look up.
_JAVA_CLASS = re.compile(r"^(?:[a-z]\w*\.)+[A-Z]\w*$")


# A pasted error: from a throwable's class name (org.x.RejectedAccessException, java.lang.NoSuchMethodError) or a log
# level at the start of a line to the end of its line or the first question mark ("... Configuration error?" ends
# Jenkins' own message). The names inside it are the failure's content, not what the user asks the documentation
# about: in the golden set, `parseText` of a script-security rejection and `catchError` of the step list that
# "No such DSL method" prints made the model open with "The documentation does not cover ..." (2 of its 5 false
# abstentions) although the question was what the error means.
_PASTED_ERROR = re.compile(
    r"(?:\b(?:[a-z]\w*\.)+[A-Z]\w*(?:Exception|Error)\b|^[ \t]*(?:ERROR|FATAL|SEVERE|Caused by)\b)[^\n?]*",
    re.MULTILINE,
)


# Words capitalised only at a sentence's start ("Which plugin"). A short list of our own rather than NLTK's from
# bm25s: importing bm25s takes about 0.2 s and scipy into this small module that the training job shares.
_FUNCTION_WORDS = frozenset({
    "a", "an", "and", "any", "another", "are", "but", "can", "could", "do", "does", "each", "every", "for", "how",
    "in", "is", "it", "its", "my", "new", "of", "one", "or", "our", "same", "should", "some", "that", "the", "their",
    "this", "what", "when", "where", "which", "who", "why", "will", "with", "would", "your",
})


def specific_terms(question: str) -> list[str]:
    pasted = [match.span() for match in _PASTED_ERROR.finditer(question)]
    terms: list[str] = []
    for match in _SPECIFIC_TERM.finditer(question):
        term = next(group for group in match.groups() if group).strip()
        if any(start <= match.start() and match.end() <= end for start, end in pasted):
            continue
        if match.group(5):  # "Which plugin", "The Git plugin": a sentence's capital is not a plugin's name
            term = " ".join(dropwhile(lambda word: word.lower() in _FUNCTION_WORDS, term.split()))
            if not term:
                continue
        if not _DOMAIN.search(term) and not _JAVA_CLASS.match(term) and term not in terms:
            terms.append(term)
    return terms


# A name the question ties to a step in words: "the retryCount option of the sh step", "the sh step's retryCount".
_OWNED_IN_WORDS = re.compile(
    r"`?(?P<name1>[\w.-]+)`?\s+(?:option|parameter|argument|param|arg|field|setting|flag|property)s?\s+"
    r"(?:of|for|in|on|to)\s+(?:the\s+)?`?(?P<step1>\w+)`?\s+step\b"
    r"|\b(?P<step2>\w+)`?\s+step's\s+`?(?P<name2>[\w.-]+)",
    re.IGNORECASE,
)
# ... or in code: every named argument of a call, `sh(script: 'ls', returnStdout: true)`, `podTemplate(gpuQuota: 1)`
# (to its closing parenthesis, or to the end of a question that cuts it).
_CALL = re.compile(r"\b(\w+)\s*\(([^()]*)")
_NAMED_ARGUMENT = re.compile(r"(?:^|[,\s])(\w+)\s*:")


def owned_terms(question: str) -> dict[str, str]:
    """The names the question ties to a step (lowercased name -> step), whether or not they are specific terms:
    `unmentioned_terms` only looks up the specific ones."""
    owners: dict[str, str] = {}
    for match in _OWNED_IN_WORDS.finditer(question):
        name, step = (match["name1"], match["step1"]) if match["name1"] else (match["name2"], match["step2"])
        owners.setdefault(name.lower(), step.lower())
    for call in _CALL.finditer(question):
        for argument in _NAMED_ARGUMENT.finditer(call[2]):
            owners.setdefault(argument[1].lower(), call[1].lower())
    return owners


def lookup_text(title: str, section: str, text: str) -> str:
    """What a name is looked for in, case-insensitively: a passage's (or a chunk's) title, heading path and text. The
    retrieval index looks names up in its chunks the same way, so a chunk it serves for a name mentions it here."""
    return f"{title} {section} {text}".lower()


def unmentioned_terms(question: str, passages: list[Passage]) -> list[str]:
    """The question's specific names that no passage contains (case-insensitive). A name the question ties to a
    step ("the retryCount option of the sh step") counts only in a passage that names the step too: another
    plugin's step with a `retryCount` parameter says nothing about `sh`'s. At 6 passages such a passage switched the
    note off, and the model invented the `sh` step's default."""
    texts = [lookup_text(p.title, p.section, p.text) for p in passages]
    owners = owned_terms(question)

    def mentioned(term: str) -> bool:
        step = owners.get(term.lower())
        names_step = re.compile(rf"(?<![\w.-]){re.escape(step)}(?![\w-])") if step else None
        return any(term.lower() in text and (names_step is None or names_step.search(text)) for text in texts)

    # Console output pasted into the question counts by its error lines only: a workspace path's `shop-api_main` or a
    # stack frame's method is no name the user asks the documentation about (the answer opened with "The
    # documentation does not cover `api_main`" although the passages named the missing step).
    return [term for term in specific_terms(search_text(question)) if not mentioned(term)]


def grounded_question(question: str, passages: list[Passage]) -> str:
    """The user's turn: the passages, then the question, then the reminder a small model needs. When the question
    names something no passage mentions, the turn says so: a small model follows a stated fact far more reliably
    than a conditional instruction, and otherwise invents the missing option."""
    if not passages:
        return question
    missing = unmentioned_terms(question, passages)
    # Stated as an instruction for the first sentence: the conditional form ("if the question depends on it, say
    # so") was followed in 2 of 5 such golden questions; the model then invented the option's meaning.
    names = ", ".join(f"`{t}`" for t in missing)
    note = (f"No passage mentions {names}. Begin your answer with: \"The documentation does not cover {names}.\" "
            "Then give only what the passages do say about the rest of the question.\n" if missing else "")
    return (f"Documentation passages:\n\n{passages_block(passages)}\n\n---\nQuestion: {question.strip()}\n\n{note}"
            "Answer briefly in your own words from the passages above (do not repeat them), and cite the passages "
            "you use as [1], [2].")
