// Chat page of the Jenkins assistant: posts a question to /api/chat and reads the Server-Sent Events stream
// (metadata, sources, delta..., done | error). EventSource only does GET, so the stream is read from fetch.
// The sources arrive before the first token (which takes seconds on a small CPU) and are shown at once.
// Streamed text is shown as text; the finished answer is replaced by the HTML the server rendered from the
// markdown with raw HTML disabled. Nothing else is ever inserted as HTML. Helpers shared with the explain page
// (element, renderSources, serverSentEvents, errorMessage) are in answers.js, loaded first.
"use strict";

const SESSION_KEY = "jenkins-assistant.session";
const conversation = document.getElementById("conversation");
const form = document.getElementById("ask");
const questionInput = document.getElementById("question");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
let controller = null;

// Sessions are keyed by an unguessable id (128 random bits); getRandomValues also works on plain http,
// where crypto.randomUUID is missing.
function randomSessionId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function storedSession() {
  try {
    return localStorage.getItem(SESSION_KEY);
  } catch {
    return null; // storage disabled: the session lasts as long as the page
  }
}

function startSession() {
  const id = randomSessionId();
  try {
    localStorage.setItem(SESSION_KEY, id);
  } catch {
    // storage disabled
  }
  return id;
}

let sessionId = storedSession() || startSession();

function scrollToEnd() {
  window.scrollTo({ top: document.body.scrollHeight });
}

async function sendFeedback(answerId, rating, buttons, status) {
  buttons.forEach((b) => (b.disabled = true));
  try {
    const response = await fetch("/api/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ answer_id: answerId, session_id: sessionId, rating }),
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.rating === rating)));
    status.textContent = "Thanks for the feedback.";
  } catch (error) {
    buttons.forEach((b) => (b.disabled = false));
    status.textContent = "Feedback not sent: " + error.message;
    status.classList.add("error");
  }
}

function renderFeedback(answer, answerId) {
  const bar = element("div", "feedback");
  bar.setAttribute("role", "group");
  bar.setAttribute("aria-label", "Rate this answer");
  const status = element("span", "status feedback-status");
  status.setAttribute("aria-live", "polite");
  // Words, not thumb emoji: they read the same everywhere, with or without an emoji font.
  const buttons = [
    ["helpful", "Helpful", "Helpful answer"],
    ["not_helpful", "Not helpful", "Unhelpful answer"],
  ].map(([rating, text, label]) => {
    const button = element("button", "secondary feedback-" + rating, text);
    button.type = "button";
    button.dataset.rating = rating;
    button.setAttribute("aria-label", label);
    button.setAttribute("aria-pressed", "false");
    return button;
  });
  buttons.forEach((b) => b.addEventListener("click", () => sendFeedback(answerId, b.dataset.rating, buttons, status)));
  bar.append(...buttons, status);
  answer.append(bar);
}

function setBusy(busy) {
  sendButton.disabled = busy;
  stopButton.disabled = !busy;
  questionInput.setAttribute("aria-busy", String(busy));
}

async function ask(question) {
  document.getElementById("hint")?.remove();
  conversation.append(element("div", "message user", question));
  const answer = element("article", "message assistant");
  answer.setAttribute("aria-label", "Answer");
  answer.dataset.state = "waiting";
  answer.dataset.deltas = "0";
  const text = element("div", "answer-text");
  const sourcesBox = element("div", "sources-box");
  const status = element("p", "status", "Thinking\u2026");
  answer.append(text, sourcesBox, status);
  conversation.append(answer);
  scrollToEnd();

  controller = new AbortController();
  setBusy(true);
  let answerId = "";
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ session_id: sessionId, question }),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorMessage(response));
    for await (const { event, data } of serverSentEvents(response)) {
      if (event === "metadata") {
        answerId = data.answer_id;
        // A follow-up is searched as the standalone question the service made of it: show what was looked up.
        const searched = (data.standalone_question || "").trim();
        if (searched && searched.toLowerCase() !== question.trim().toLowerCase()) {
          answer.append(element("p", "notes searched", "Searched for: " + searched));
        }
        for (const warning of data.warnings || []) answer.append(element("p", "notes", "Note: " + warning));
      } else if (event === "delta") {
        if (answer.dataset.state === "waiting") {
          answer.dataset.state = "streaming";
          status.textContent = "Answering\u2026";
        }
        text.textContent += data.text;
        answer.dataset.deltas = String(Number(answer.dataset.deltas) + 1);
        scrollToEnd();
      } else if (event === "sources") {
        renderSources(sourcesBox, data.sources);
        // How much text had arrived when the sources were shown (0: before the answer started).
        answer.dataset.sourcesAfterDeltas = answer.dataset.deltas;
      } else if (event === "done") {
        const rendered = element("div", "answer-html");
        rendered.innerHTML = data.html; // rendered by the server from markdown with raw HTML escaped
        text.replaceWith(rendered);
        answer.dataset.state = "done";
        const usage = data.usage || {};
        const notes = [];
        if (data.finish_reason === "length") notes.push("Answer cut at the length limit.");
        if (data.finish_reason === "repetition") notes.push("Answer stopped where it began to repeat itself.");
        if (data.finish_reason === "readout") notes.push("Answer stopped where it began to copy out the next passage (see the sources).");
        if (usage.completion_tokens) notes.push(`${usage.completion_tokens} tokens.`);
        status.textContent = notes.join(" ");
        // Known only at the end, e.g. that memory did not store this exchange.
        for (const warning of data.warnings || []) answer.append(element("p", "notes", "Note: " + warning));
        if (answerId) renderFeedback(answer, answerId);
      } else if (event === "error") {
        throw new Error(data.message);
      }
    }
    if (answer.dataset.state !== "done") throw new Error("the answer ended early");
  } catch (error) {
    if (error.name === "AbortError") {
      answer.dataset.state = "stopped";
      status.textContent = "Stopped.";
    } else {
      answer.dataset.state = "error";
      status.textContent = error.message;
      status.classList.add("error");
    }
  } finally {
    controller = null;
    setBusy(false);
    scrollToEnd();
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = questionInput.value.trim();
  if (!question || controller) return;
  questionInput.value = "";
  ask(question);
});

questionInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    form.requestSubmit();
  }
});

stopButton.addEventListener("click", () => controller?.abort());

document.getElementById("new-conversation").addEventListener("click", () => {
  controller?.abort();
  sessionId = startSession();
  const hint = element("p", "hint", "New conversation started.");
  hint.id = "hint";
  conversation.replaceChildren(hint);
  questionInput.focus();
});

fetch("/api/model")
  .then((response) => (response.ok ? response.json() : Promise.reject(new Error())))
  .then((info) => {
    document.getElementById("model").textContent = `${info.model} \u00b7 ${info.indexed_documents} documents`;
  })
  .catch(() => {
    document.getElementById("model").textContent = "model information unavailable";
  });
