"""The `llama-server` engine: llama.cpp's own server, started and stopped by this service, generates the answers.

Why not our in-process slots: they are separate llama.cpp contexts that take turns token by token, so N answers
decode at the speed of one stream. llama-server decodes every active slot's next token in one batch (continuous
batching over one model), which on 2 cores gave about twice the aggregate tokens/s for 8 concurrent chats
(bench/inference_concurrency.py). Rather than write a batching scheduler of our own, we run theirs.

What stays here, so that answers are the same as the embedded engine's:
- the model is resolved here (packaged model, published manifest, hub download) and handed to the server by path;
- prompts are rendered with the same template and tokenized here (`model.prepare_prompt`: message contents never
  become control tokens) with a vocabulary-only load of the GGUF, and sent as token ids to /v1/completions, so
  token counts, window fitting and the template are exact, not estimates as with a foreign server;
- sampling settings, stop sequences, trimming, retrieval and memory are the core's, as for any engine.

The server listens on a free loopback port and requires a random per-process API key, so another local user
cannot use it. If it exits, or closes its port on its way out, the engine reports not ready (health NOT_SERVING,
chats UNAVAILABLE) and the next probe kills what is left and starts it again.
"""

from __future__ import annotations

import glob
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from jenkins_assistant.common.errors import FailedPrecondition
from jenkins_assistant.inference.config import InferenceSettings
from jenkins_assistant.inference.engine import OpenAIEngine
from jenkins_assistant.inference.model import Prompt, prepare_prompt, served_name
from jenkins_assistant.inference.model_source import ResolvedModel
from jenkins_assistant.inference.templates import Message, formatter_for_model

log = logging.getLogger(__name__)

# Where `make llama-server` (deploy/local/build_llama_server.sh) caches its builds, one directory per version+flags.
BUILD_CACHE_GLOB = "~/.cache/jenkins-assistant/llama-server-*/llama-server"


def find_binary(configured: str) -> str:
    """The configured binary, else llama-server on PATH, else the newest `make llama-server` build."""
    if configured:
        path = Path(configured).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise FailedPrecondition(f"INFERENCE_LLAMA_SERVER_BIN={configured} is not an executable file "
                                     "(make llama-server builds one)")
        return str(path)
    if on_path := shutil.which("llama-server"):
        return on_path
    builds = sorted(glob.glob(os.path.expanduser(BUILD_CACHE_GLOB)), key=os.path.getmtime)
    if builds:
        return builds[-1]
    raise FailedPrecondition("engine 'llama-server' needs the llama-server binary: run `make llama-server`, put it "
                             "on PATH or set INFERENCE_LLAMA_SERVER_BIN")


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> list[str]:
    """A prefix that makes the server get SIGKILL when the thread that started it dies, so a killed inference service
    (SIGKILL, OOM) leaves no server behind holding the model and the cores. SIGKILL, not SIGTERM: the server keeps
    nothing that a graceful exit would save, and with answers open it takes ~30 s to exit on SIGTERM (see
    kill_if_port_closed). util-linux's setpriv sets the flag and execs the server (a preexec_fn doing it would run
    Python in a forked child of a threaded process)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "SIGKILL", "--"] if setpriv else []


class LlamaServerProcess:
    """One llama-server child process serving one GGUF on loopback."""

    def __init__(self, binary: str, model_path: str, alias: str, settings: InferenceSettings) -> None:
        self.binary = binary
        self.model_path = model_path
        self.alias = alias
        self.settings = settings
        self.api_key = secrets.token_urlsafe(24)
        # Chosen once: a restarted server comes back at the same URL, which the HTTP clients keep.
        self.port = _free_loopback_port()
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()
        # Set by close(): no start after it, and a start under way gives up at once (see close).
        self._closed = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        s = self.settings
        return [
            self.binary, "--model", self.model_path, "--alias", self.alias,
            "--host", "127.0.0.1", "--port", str(self.port),
            # parallel_slots answers decode together; each may use n_ctx tokens (the embedded engine's window).
            "--parallel", str(s.parallel_slots), "--ctx-size", str(s.n_ctx * s.parallel_slots),
            "--threads", str(s.n_threads), "--threads-batch", str(s.n_threads), "--batch-size", str(s.n_batch),
            "--cont-batching", "--cache-ram", str(s.llama_server_cache_mib),
            # A new question shares only the system prompt (~90 tokens, under 10% of a grounded prompt) with earlier
            # ones: below llama-server's default 10% similarity it takes the least recently used slot and evaluates
            # the system prompt again; with 1% it takes the slot that holds it.
            "--slot-prompt-similarity", "0.01",
            # Its per-request info lines (slot choice, timings) only at DEBUG; warnings and errors always.
            "--log-verbosity", "3" if log.isEnabledFor(logging.DEBUG) else "2",
        ]

    def start(self) -> None:
        """Start it and wait until /health answers 200 (the model is loaded); FailedPrecondition if it exits or
        does not get there within llama_server_start_timeout_s."""
        import httpx

        with self._lock:
            if self._closed.is_set():
                raise FailedPrecondition("llama-server is closed: the engine is shutting down")
            self.stop()
            log.info("starting %s on 127.0.0.1:%d for %s", self.binary, self.port, self.model_path)
            self._process = self._spawn()
            deadline = time.monotonic() + self.settings.llama_server_start_timeout_s
            while time.monotonic() < deadline:
                if self._closed.is_set():
                    self.stop(grace_s=0)
                    raise FailedPrecondition("llama-server start abandoned: the engine is shutting down")
                if (code := self._process.poll()) is not None:
                    raise FailedPrecondition(f"llama-server exited with status {code} while starting "
                                             f"(model {self.model_path}); its log is above")
                try:
                    if httpx.get(self.base_url + "/health", timeout=2).status_code == 200:
                        log.info("llama-server ready on 127.0.0.1:%d (pid %d)", self.port, self._process.pid)
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                self._closed.wait(0.2)  # a pause that close() cuts short
            self.stop()
            raise FailedPrecondition(f"llama-server did not report healthy within "
                                     f"{self.settings.llama_server_start_timeout_s:.0f} s")

    def _spawn(self) -> subprocess.Popen:
        """The child, started by a thread of its own that lives exactly as long as the child does: the parent-death
        signal follows the starting thread, so a restart from a short-lived thread would kill its server at once."""
        spawned: dict[str, object] = {}
        ready = threading.Event()

        def own() -> None:
            # The key goes by environment, not argv: the command line is readable by every local user.
            env = {**os.environ, "LLAMA_API_KEY": self.api_key}
            try:
                # The server's own log goes to our stderr (the service log); stdout carries nothing we need.
                process = subprocess.Popen([*_die_with_parent(), *self.command()], env=env,
                                           stdout=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                spawned["error"] = exc
                ready.set()
                return
            spawned["process"] = process
            ready.set()
            process.wait()

        threading.Thread(target=own, name=f"llama-server-{self.port}", daemon=True).start()
        ready.wait()
        if "error" in spawned:
            raise FailedPrecondition(f"llama-server could not be started: {spawned['error']}")
        return spawned["process"]  # type: ignore[return-value]

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def kill_if_port_closed(self) -> None:
        """Kill a server that runs but refuses connections on its port: it is on its way out.
        llama-server (llama.cpp of llama-cpp-python 0.3.36) that gets SIGTERM while it streams answers closes its
        port at once, sends the open answers nothing more and exits only ~30 s later; meanwhile the engine would
        report NOT_SERVING and wait. Only a refused connection counts (the port is closed), never a slow answer, and
        a server that is starting or stopping (the lock is held) is not judged."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            if not self.alive():
                return
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2):
                    return
            except ConnectionRefusedError:
                pass
            except OSError:
                return  # a timeout or another error: busy, not provably gone
            if not self.alive():
                return  # it exited between the two looks
            log.error("llama-server (pid %s) runs but refuses connections on port %d: it is on its way out "
                      "(SIGTERM?); killing it to start another", self.pid, self.port)
            self.stop(grace_s=0)
        finally:
            self._lock.release()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self, grace_s: float = 10) -> None:
        """Stop for good. A start under way (a restart after a crash, in the engine's background thread) sees the
        flag at once (its poll waits on it), kills what it spawned and fails; waiting for the lock then means no server
        outlives close(), where a plain stop() could run before that start spawned its server."""
        self._closed.set()
        with self._lock:
            self.stop(grace_s)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self, grace_s: float = 10) -> None:
        """SIGTERM, then SIGKILL after grace_s (at once with 0): an idle server exits on SIGTERM in ~0.1 s, one with
        answers open only after ~30 s (see kill_if_port_closed)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if grace_s > 0:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
                return
            except subprocess.TimeoutExpired:
                log.warning("llama-server (pid %d) did not exit %.0f s after SIGTERM; killing it", process.pid,
                            grace_s)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class LlamaServerEngine(OpenAIEngine):
    """Generation by a llama-server child process; prompts rendered and tokenized here (see the module doc)."""

    def __init__(self, settings: InferenceSettings, resolved: ResolvedModel) -> None:
        from llama_cpp import Llama

        started = time.perf_counter()
        # The vocabulary and metadata only (no weights, no context): the template and the tokenizer.
        self.vocab = Llama(model_path=str(resolved.path), vocab_only=True, verbose=False)
        self.resolved = resolved
        self.metadata: dict[str, str] = dict(self.vocab.metadata)
        self.formatter = formatter_for_model(self.vocab, settings.chat_template, resolved.manifest_template)
        name = served_name(resolved, self.metadata)
        self.server = LlamaServerProcess(find_binary(settings.llama_server_bin), str(resolved.path), name, settings)
        self.server.start()
        super().__init__(settings, url=self.server.base_url + "/v1", api_key=self.server.api_key)
        self._model = name
        self.system_prompt = resolved.system_prompt
        self._restart: threading.Thread | None = None
        log.info("model %s from %s by llama-server (pid %s): %d slots, %d threads, n_ctx=%d, template=%s (%.1fs)",
                 name, resolved.source, self.server.pid, settings.parallel_slots, settings.n_threads, self.n_ctx,
                 self.formatter.name, time.perf_counter() - started)

    @property
    def source(self) -> str:
        return self.resolved.source

    @property
    def template_name(self) -> str:
        return self.formatter.name

    def prepare(self, messages: list[Message]) -> Prompt:
        return prepare_prompt(self.vocab, self.formatter, messages)

    def probe(self) -> bool:
        """Ready when the child runs and answers. A child that exited makes this False at once (health goes
        NOT_SERVING, so callers go elsewhere) and is started again in the background (its crash is logged); so does
        one that runs but has closed its port (on its way out), which is killed first. The port is looked at only
        after a failed probe: a serving child costs one GET /models, as before."""
        if self.server.alive() and super().probe():
            return True
        if self.server.closed:
            return False  # shutting down: a health check must not start another server
        self.server.kill_if_port_closed()
        if not self.server.alive() and (self._restart is None or not self._restart.is_alive()):
            log.error("llama-server (model %s) is not running; starting it again", self.name)
            self._restart = threading.Thread(target=self._start_again, name="llama-server-restart", daemon=True)
            self._restart.start()
        return False

    def _start_again(self) -> None:
        try:
            self.server.start()
        except FailedPrecondition as exc:
            if not self.server.closed:
                log.error("llama-server could not be restarted (the next probe tries again): %s", exc)

    def close(self) -> None:
        super().close()
        self.server.close()
        self.vocab.close()
