// Explain page: a console log (pasted, or a file read in the browser) is POSTed as the body of /api/explain and the
// Server-Sent Events are shown as they come: the facts the server extracted from the log first (before the model's
// first token, seconds away on a CPU), then the sources, the streamed explanation, and the rendered markdown at the
// end. A log over the gateway's limit is cut to its tail here, where a build's failure is printed.
"use strict";

const form = document.getElementById("explain-form");
const logInput = document.getElementById("log");
const fileInput = document.getElementById("log-file");
const explainButton = document.getElementById("explain");
const stopButton = document.getElementById("stop");
const inputNote = document.getElementById("input-note");
const result = document.getElementById("result");
const factsList = document.getElementById("facts");
const article = document.getElementById("explanation");
let maxLogBytes = 5 * 1024 * 1024; // the gateway's default, until /api/limits says otherwise
let uploaded = null; // the chosen file's tail, as a Blob
let controller = null;

function megabytes(bytes) {
  return (bytes / (1024 * 1024)).toFixed(1) + " MB";
}

// The last maxLogBytes of a log: what the server reads when a log is cut, and where the failure is.
function tail(blob) {
  return blob.size > maxLogBytes ? blob.slice(blob.size - maxLogBytes) : blob;
}

function factRows(facts, reused) {
  const stage = (facts.stage_path || []).join(" \u203a ") || facts.stage;
  const exception = [facts.exception_class, facts.exception_message].filter(Boolean).join(": ");
  const root = facts.root_cause_class !== facts.exception_class
    ? [facts.root_cause_class, facts.root_cause_message].filter(Boolean).join(": ") : "";
  return [
    ["Result", facts.result],
    ["Failure", facts.signature_label ? `${facts.signature_label} (${facts.signature_id})` : ""],
    ["Stage", stage + (facts.parallel_branch ? ` (branch ${facts.parallel_branch})` : "")],
    ["Step", facts.step],
    ["Exception", exception],
    ["Root cause", root],
    ["Exit code", facts.exit_code === undefined || facts.exit_code === null ? "" : String(facts.exit_code)],
    ["First error", facts.first_error_line
      ? `line ${facts.first_error_line_number}: ${facts.first_error_line}` : ""],
    ["Secrets masked", facts.masked_count ? String(facts.masked_count) : ""],
    ["Fingerprint", facts.fingerprint + (reused ? " (explained before: reused)" : "")],
  ].filter(([, value]) => value);
}

function renderFacts(facts, reused) {
  const nodes = [];
  for (const [name, value] of factRows(facts, reused)) {
    const term = element("dt", null, name);
    const detail = element("dd", null, value);
    detail.dataset.fact = name.toLowerCase().replace(/ /g, "-");
    nodes.push(term, detail);
  }
  factsList.replaceChildren(...nodes);
}

function setBusy(busy) {
  explainButton.disabled = busy;
  stopButton.disabled = !busy;
  form.setAttribute("aria-busy", String(busy));
}

async function explain(body) {
  const text = article.querySelector(".answer-text") || element("div", "answer-text");
  article.querySelector(".answer-html")?.replaceWith(text);
  text.textContent = "";
  const sourcesBox = article.querySelector(".sources-box");
  sourcesBox.replaceChildren();
  article.querySelectorAll(".notes").forEach((node) => node.remove());
  const status = article.querySelector(".status");
  status.className = "status";
  status.textContent = "Reading the log\u2026";
  factsList.replaceChildren();
  factsList.dataset.state = "waiting";
  article.dataset.state = "waiting";
  article.dataset.deltas = "0";
  result.hidden = false;

  controller = new AbortController();
  setBusy(true);
  try {
    const response = await fetch("/api/explain", {
      method: "POST",
      headers: { "Content-Type": "text/plain; charset=utf-8", Accept: "text/event-stream" },
      body,
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    for await (const { event, data } of serverSentEvents(response)) {
      if (event === "metadata") {
        renderFacts(data.facts || {}, data.reused);
        factsList.dataset.state = "shown";
        // How much explanation had arrived when the facts were shown (0: before the model started).
        factsList.dataset.afterDeltas = article.dataset.deltas;
        status.textContent = data.reused ? "Reusing an earlier explanation\u2026" : "Explaining\u2026";
        for (const warning of data.warnings || []) article.append(element("p", "notes", "Note: " + warning));
      } else if (event === "sources") {
        renderSources(sourcesBox, data.sources);
      } else if (event === "delta") {
        article.dataset.state = "streaming";
        text.textContent += data.text;
        article.dataset.deltas = String(Number(article.dataset.deltas) + 1);
      } else if (event === "done") {
        const rendered = element("div", "answer-html");
        rendered.innerHTML = data.html; // rendered by the server from markdown with raw HTML escaped
        text.replaceWith(rendered);
        article.dataset.state = "done";
        const usage = data.usage || {};
        const notes = [];
        if (data.finish_reason === "length") notes.push("Explanation cut at the length limit.");
        if (data.finish_reason === "repetition") notes.push("Explanation stopped where it began to repeat itself.");
        if (data.finish_reason === "readout") notes.push("Explanation stopped where it began to copy out the next passage (see the sources).");
        if (usage.completion_tokens) notes.push(`${usage.completion_tokens} tokens.`);
        status.textContent = notes.join(" ");
        for (const warning of data.warnings || []) article.append(element("p", "notes", "Note: " + warning));
      } else if (event === "error") {
        throw new Error(data.message);
      }
    }
    if (article.dataset.state !== "done") throw new Error("the explanation ended early");
  } catch (error) {
    if (error.name === "AbortError") {
      article.dataset.state = "stopped";
      status.textContent = "Stopped.";
    } else {
      article.dataset.state = "error";
      status.textContent = error.message;
      status.classList.add("error");
    }
  } finally {
    controller = null;
    setBusy(false);
  }
}

fileInput.addEventListener("change", () => {
  const file = fileInput.files[0];
  uploaded = file ? tail(file) : null;
  if (!file) {
    inputNote.textContent = "";
    return;
  }
  logInput.value = "";
  inputNote.textContent = file.size > maxLogBytes
    ? `${file.name} has ${megabytes(file.size)}: its last ${megabytes(maxLogBytes)} will be explained.`
    : `${file.name} (${megabytes(file.size)}) will be explained.`;
});

logInput.addEventListener("input", () => {
  // Typing or pasting replaces an uploaded file.
  if (uploaded) {
    uploaded = null;
    fileInput.value = "";
    inputNote.textContent = "";
  }
});

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (controller) return;
  let body = uploaded;
  if (!body) {
    const pasted = new Blob([logInput.value], { type: "text/plain" });
    if (!logInput.value.trim()) {
      inputNote.textContent = "Paste a console log or choose a file first.";
      return;
    }
    if (pasted.size > maxLogBytes) {
      inputNote.textContent = `The log has ${megabytes(pasted.size)}: its last ${megabytes(maxLogBytes)} will be explained.`;
    }
    body = tail(pasted);
  }
  explain(body);
});

stopButton.addEventListener("click", () => controller?.abort());

fetch("/api/limits")
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error())))
  .then((limits) => {
    maxLogBytes = limits.max_log_bytes;
    document.getElementById("limit").textContent =
      `Up to ${megabytes(maxLogBytes)}; a longer log is cut to its end, where builds fail.`;
  })
  .catch(() => {});

fetch("/api/model")
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error())))
  .then((info) => {
    document.getElementById("model").textContent = info.model;
  })
  .catch(() => {});
