// Helpers of the pages that stream an answer from the gateway (chat, explain): building nodes as text only, the
// sources list, and reading a POST's Server-Sent Events (EventSource only does GET, so the stream comes from fetch).
"use strict";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function safeHttpUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function renderSources(box, sources) {
  if (!sources.length) return;
  const title = element("p", "sources-title", "Sources");
  title.id = "sources-" + Math.random().toString(36).slice(2);
  const list = element("ol", "sources");
  list.setAttribute("aria-labelledby", title.id);
  for (const source of sources) {
    const item = element("li");
    const href = safeHttpUrl(source.url);
    const label = source.title || source.url;
    if (href) {
      const link = element("a", null, label);
      link.href = href;
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      if (source.snippet) link.title = source.snippet;
      item.append(link);
    } else {
      item.textContent = label;
    }
    list.append(item);
  }
  box.replaceChildren(title, list);
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch {
    // not JSON (a proxy's error page)
  }
  return `HTTP ${response.status}`;
}

// Yields {event, data} for each Server-Sent Event of a fetch response body.
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = blocks.pop();
    for (const block of blocks) {
      let event = "message";
      const data = [];
      for (const line of block.split(/\r\n|\n|\r/)) {
        if (line.startsWith(":")) continue; // comment (keep-alive ping)
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}
