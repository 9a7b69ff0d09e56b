"""Prometheus metrics of the inference service (the gRPC call counters come from the common interceptor)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TIME_TO_FIRST_TOKEN = Histogram(
    "jenkins_assistant_inference_time_to_first_token_seconds",
    "From receiving a chat to sending its first answer text (queue, memory, retrieval and prompt included).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
TOKENS_PER_SECOND = Histogram(
    "jenkins_assistant_inference_tokens_per_second",
    "Decode speed of each answer (generated tokens after the first / seconds).",
    buckets=(1, 2, 5, 10, 20, 40, 60, 80, 120, 200, 400),
)
RETRIEVAL_LATENCY = Histogram(
    "jenkins_assistant_inference_retrieval_seconds",
    "Embedding the question and searching the index.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1),
)
QUOTE_LATENCY = Histogram(
    "jenkins_assistant_inference_quote_seconds",
    "Choosing the excerpts quoted after an answer (embedding the passages' excerpts), after generation.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4),
)
QUEUE_DEPTH = Gauge("jenkins_assistant_inference_queue_depth", "Chats waiting for a generation slot.")
ACTIVE_SLOTS = Gauge("jenkins_assistant_inference_active_slots", "Generation slots in use.")
COMPLETION_TOKENS = Counter("jenkins_assistant_inference_completion_tokens_total", "Tokens generated.")
ANSWERS = Counter("jenkins_assistant_inference_answers_total", "Answers by finish reason.", ["finish_reason"])
PASTED_OUTPUT_REDUCED = Counter(
    "jenkins_assistant_inference_pasted_output_reduced_total",
    "Questions searched with the console output pasted into them reduced to its error lines (pasted_output.py).",
)
NAMED_PASSAGES = Counter(
    "jenkins_assistant_inference_named_passages_total",
    "Passages served for a name the question spells out that the ranked passages lacked "
    "(RetrievalIndex._with_named_passages).",
)
HEADING_ECHOES = Counter(
    "jenkins_assistant_inference_heading_echoes_removed_total",
    "Lines of generated answers that only repeated a passage's header ('[2] Pipeline syntax > ...') and were not "
    "sent: how often the model copies the prompt's layout (a fine-tuned model should do it less).",
)
CONDENSED_QUESTIONS = Counter(
    "jenkins_assistant_inference_condensed_questions_total",
    "Follow-ups made standalone for retrieval, by route: rewrite (the model's rewrite was accepted) or concat (the "
    "recent questions joined: the rewrite was rejected, or INFERENCE_CONDENSE=concat).",
    ["route"],
)
MEMORY_FAILURES = Counter(
    "jenkins_assistant_inference_memory_failures_total", "Memory service calls that failed (each retry counts).",
    ["operation"],
)
EXCHANGES_NOT_STORED = Counter(
    "jenkins_assistant_inference_exchanges_not_stored_total",
    "Answered exchanges of a session that memory did not store, retries exhausted (the next question will not see "
    "them).",
)
MEMORY_WRITES_IN_FLIGHT = Gauge(
    "jenkins_assistant_inference_memory_writes_in_flight",
    "Exchanges still being stored after their answer finished (memory slow or retrying).",
)
FEEDBACK = Counter("jenkins_assistant_inference_feedback_total", "Answer ratings stored, by rating and by the model "
                   "that gave the rated answer.", ["rating", "model"])
ANSWERS_NOT_RECORDED = Counter(
    "jenkins_assistant_inference_answers_not_recorded_total",
    "Finished answers the memory service did not record, retries exhausted (they cannot be rated).",
)
EXPLANATION_CACHE = Counter(
    "jenkins_assistant_inference_explanation_cache_total",
    "Build-log explanation cache lookups and writes: hit, miss, stored, error (Redis down or an unreadable entry).",
    ["outcome"],
)
