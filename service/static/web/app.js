// The question page: asks POST /query, shows ranked passages with their citations, and opens the
// cited span in the document's stored text (GET /documents/{doc_id}/text). No framework, no build
// step; every text from the corpus is inserted as text, never as HTML.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY = "cited.api_key";
  const CONTEXT_CHARS = 20000; // characters of the document shown on each side of a cited span
  let asking = null; // AbortController of the question in flight

  function authHeaders(extra) {
    const headers = Object.assign({}, extra);
    const key = sessionStorage.getItem(KEY);
    if (key) headers.Authorization = "Bearer " + key;
    return headers;
  }

  async function call(path, options) {
    options = options || {};
    const response = await fetch(path, Object.assign({}, options, { headers: authHeaders(options.headers) }));
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (!response.ok) {
      const error = new Error(body && body.error ? body.error.message : "HTTP " + response.status);
      error.status = response.status;
      throw error;
    }
    return body;
  }

  function el(tag, props, children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children || []) node.append(child);
    return node;
  }

  function status(message, isError) {
    const line = $("status");
    line.textContent = message;
    line.classList.toggle("error", Boolean(isError));
  }

  function citeKey(c) { return c.source + ":" + c.start + "-" + c.end; }

  function citeButton(c) {
    const button = el("button", { type: "button", className: "link cite", textContent: citeKey(c),
                                  title: "Open " + c.source + " at characters " + c.start + "–" + c.end });
    button.dataset.docId = c.doc_id;
    button.dataset.start = c.start;
    button.dataset.end = c.end;
    button.addEventListener("click", () => openSource(c, button));
    return button;
  }

  // The passage's text with its highlighted sentences (offsets into the file) as <mark>s.
  function passageWithMarks(result) {
    const base = result.citation.start;
    const text = result.text;
    const node = el("p", { className: "passage" });
    let at = 0;
    const spans = result.highlights.slice().sort((a, b) => a.start - b.start);
    for (const h of spans) {
      const from = Math.max(at, h.start - base), to = Math.min(text.length, h.end - base);
      if (to <= from) continue;
      node.append(text.slice(at, from), el("mark", { textContent: text.slice(from, to) }));
      at = to;
    }
    node.append(text.slice(at));
    return node;
  }

  function shortHash(sha) { return sha ? "sha256 " + sha.slice(0, 12) + "…" : "no sha256"; }

  function renderResult(result) {
    const c = result.citation;
    const meta = [c.title];
    if (c.heading) meta.push("§ " + c.heading);
    meta.push(result.tokens + " tokens", "score " + result.score, shortHash(c.sha256));
    const item = el("li", {}, [
      el("div", { className: "result-head" }, [el("span", { className: "rank", textContent: "#" + result.rank }), citeButton(c)]),
      el("p", { className: "meta", textContent: meta.join(" · ") }),
      passageWithMarks(result),
    ]);
    if (result.also_in.length) {
      const list = el("ul");
      for (const other of result.also_in) {
        list.append(el("li", {}, [citeButton(other), " " + other.title]));
      }
      item.append(el("div", { className: "also" }, ["Same text also in:", list]));
    }
    return item;
  }

  function render(body) {
    const answer = body.answer;
    $("answer").hidden = !answer;
    if (answer) {
      $("answer-text").textContent = answer.text;
      $("answer-cite").replaceChildren("— " + answer.citation.title + ", ", citeButton(answer.citation));
    }
    $("results").replaceChildren(...body.results.map(renderResult));
    $("results-section").hidden = body.results.length === 0;
    const n = body.results.length;
    status(n ? n + (n === 1 ? " passage" : " passages") + " in " + Math.round(body.took_ms) + " ms · " + body.index_build
             : "No passages answer this question.");
  }

  async function ask(event) {
    if (event) event.preventDefault();
    const question = $("question").value.trim();
    if (!question) { status("Type a question first.", true); $("question").focus(); return; }
    if (asking) asking.abort();
    asking = new AbortController();
    $("submit").disabled = true;
    status("Asking…");
    const url = new URL(location.href);
    url.searchParams.set("q", question);
    history.replaceState(null, "", url);
    try {
      const body = await call("/query", {
        method: "POST", signal: asking.signal,
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ question: question, top_k: Number($("top-k").value) }),
      });
      render(body);
    } catch (error) {
      if (error.name === "AbortError") return;
      failed(error);
    } finally {
      $("submit").disabled = false;
    }
  }

  function failed(error) {
    status(error.message, true);
    if (error.status === 401) {
      $("key-box").open = true;
      $("api-key").focus();
    }
  }

  async function openSource(c, trigger) {
    const dialog = $("source");
    const path = "/documents/" + c.doc_id.split("/").map(encodeURIComponent).join("/") + "/text";
    let body;
    try {
      body = await call(path + "?start=" + c.start + "&end=" + c.end + "&context=" + CONTEXT_CHARS);
    } catch (error) {
      failed(error);
      return;
    }
    const from = body.span.start - body.offset, to = body.span.end - body.offset;
    const cited = el("mark", { id: "cited", textContent: body.text.slice(from, to) });
    $("source-text").replaceChildren(body.text.slice(0, from), cited, body.text.slice(to));
    $("source-title").textContent = body.title;
    $("source-meta").textContent = body.source + " · characters " + c.start + "–" + c.end + " of " + body.length + " · " + shortHash(body.sha256);
    const notes = [];
    if (body.offset > 0 || body.offset + body.text.length < body.length) {
      notes.push("Showing characters " + body.offset + "–" + (body.offset + body.text.length) + " of " + body.length + ".");
    }
    if (c.sha256 && body.sha256 && c.sha256 !== body.sha256) {
      notes.push("The index was rebuilt since this answer and the file changed: ask again for current offsets.");
    }
    $("source-note").textContent = notes.join(" ");
    dialog.returnTo = trigger;
    if (!dialog.open) dialog.showModal();
    cited.scrollIntoView({ block: "center" });
    $("source-text").focus({ preventScroll: true });
  }

  function start() {
    $("ask").addEventListener("submit", ask);
    const key = $("api-key");
    key.value = sessionStorage.getItem(KEY) || "";
    key.addEventListener("input", () => {
      if (key.value) sessionStorage.setItem(KEY, key.value); else sessionStorage.removeItem(KEY);
    });
    $("forget-key").addEventListener("click", () => { sessionStorage.removeItem(KEY); key.value = ""; key.focus(); });
    const dialog = $("source");
    $("source-close").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { if (dialog.returnTo) dialog.returnTo.focus(); });
    dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); }); // the backdrop
    const q = new URL(location.href).searchParams.get("q");
    if (q) { $("question").value = q; ask(); }
  }

  start();
})();
