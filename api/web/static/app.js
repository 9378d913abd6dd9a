// The page's behaviour: plain JS against the public REST API (/v1/jobs), nothing else.
// Job updates come from watchJob(): an EventSource on /v1/jobs/{id}/events, polling when the
// stream is refused or the browser has no EventSource.
"use strict";

(() => {
  const MAX_STYLES = 4;
  const POLL_MS = 1000;
  const HISTORY_KEY = "nst.jobs";       // localStorage: ids of the jobs this browser submitted
  const API_KEY_KEY = "nst.apiKey";     // sessionStorage only: never persisted
  const FINISHED = new Set(["succeeded", "failed", "canceled"]);
  const STAGES = { style_targets: "Preparing the style", optimize: "Painting", done: "Finishing" };

  const $ = (id) => document.getElementById(id);
  const el = {
    form: $("job-form"), submit: $("submit"), formError: $("form-error"),
    authBox: $("auth-box"), apiKey: $("api-key"),
    contentInput: $("content-input"), contentDrop: $("content-drop"), contentThumbs: $("content-thumbs"),
    styleInput: $("style-input"), styleDrop: $("style-drop"), styleList: $("style-list"),
    preset: $("preset"), size: $("size"), color: $("color"), extra: $("extra-params"),
    empty: $("empty"), job: $("job"), jobId: $("job-id"), jobStatus: $("job-status"),
    progress: $("progress"), progressText: $("progress-text"),
    preview: $("preview"), result: $("result"), caption: $("canvas-caption"),
    jobError: $("job-error"), download: $("download"), cancel: $("cancel"),
    history: $("history"), historyEmpty: $("history-empty"),
  };

  const state = { content: null, styles: [], current: null, stopWatch: null, lastStep: -1, urls: {} };

  // --- HTTP -------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || `request failed (HTTP ${status})`);
      this.status = status; this.code = e.code || "error"; this.field = e.field || null;
    }
  }

  function authHeaders() {
    const key = sessionStorage.getItem(API_KEY_KEY);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  async function api(path, options = {}) {
    const r = await fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
    if (!r.ok) {
      let body = null;
      try { body = await r.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(r.status, body);
    }
    return r;
  }

  // --- API key ----------------------------------------------------------------------------------

  async function detectAuth() {
    // The list route answers 401 without a key exactly when keys are configured.
    try {
      const r = await fetch("/v1/jobs?limit=1", { headers: authHeaders() });
      if (r.status === 401) showAuth();
    } catch (_) { /* offline: the submit will say so */ }
  }

  async function applyLimits() {
    // The size field's ceiling is the service's NST_MAX_SIZE, not a number fixed in the page.
    try {
      const r = await api("/v1/presets");
      el.size.max = String((await r.json()).limits.max_size);
    } catch (_) { /* no key yet, or offline: the server still checks the size */ }
  }

  function showAuth(focus = false) {
    el.authBox.hidden = false;
    el.apiKey.value = sessionStorage.getItem(API_KEY_KEY) || "";
    if (focus) el.apiKey.focus();
  }

  el.apiKey.addEventListener("change", () => {
    const key = el.apiKey.value.trim();
    if (key) sessionStorage.setItem(API_KEY_KEY, key); else sessionStorage.removeItem(API_KEY_KEY);
    renderHistory();
  });

  // --- files ------------------------------------------------------------------------------------

  const isImage = (f) => f && (f.type.startsWith("image/") || /\.(png|jpe?g|webp|gif|bmp|tiff?)$/i.test(f.name));

  function thumb(file, alt) {
    const img = document.createElement("img");
    img.src = URL.createObjectURL(file);
    img.alt = alt;
    img.className = "thumb";
    img.addEventListener("load", () => URL.revokeObjectURL(img.src), { once: true });
    return img;
  }

  function setContent(files) {
    const file = [...files].find(isImage);
    if (!file) return formError("That is not an image.", "content");
    state.content = file;
    el.contentThumbs.replaceChildren(thumb(file, `Content photo: ${file.name}`), caption(file.name));
    el.contentDrop.classList.add("filled");
    clearError();
  }

  function addStyles(files) {
    const images = [...files].filter(isImage);
    if (!images.length) return formError("Those are not images.", "style");
    for (const file of images) {
      if (state.styles.length >= MAX_STYLES) {
        formError(`At most ${MAX_STYLES} style images.`, "style");
        break;
      }
      state.styles.push({ file, weight: 0.5 });
    }
    renderStyles();
  }

  function caption(text) {
    const span = document.createElement("span");
    span.className = "thumb-name";
    span.textContent = text;
    return span;
  }

  function renderStyles() {
    el.styleList.replaceChildren(...state.styles.map((s, i) => {
      const li = document.createElement("li");
      li.className = "style-item";
      li.append(thumb(s.file, `Style ${i + 1}: ${s.file.name}`));
      const body = document.createElement("div");
      body.className = "style-body";
      body.append(caption(s.file.name));
      if (state.styles.length > 1) {
        const id = `weight-${i}`;
        const label = document.createElement("label");
        label.htmlFor = id;
        label.textContent = `Weight of style ${i + 1}`;
        const range = document.createElement("input");
        Object.assign(range, { type: "range", id, min: "0", max: "1", step: "0.05", value: String(s.weight) });
        range.className = "weight";
        const out = document.createElement("output");
        out.htmlFor = id;
        const share = () => {
          const total = state.styles.reduce((a, x) => a + x.weight, 0) || 1;
          out.textContent = `${Math.round((100 * s.weight) / total)}%`;
        };
        range.addEventListener("input", () => {
          s.weight = Number(range.value);
          el.styleList.querySelectorAll("output").forEach((o) => o.dispatchEvent(new Event("refresh")));
        });
        out.addEventListener("refresh", share);
        share();
        body.append(label, range, out);
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove style ${i + 1} (${s.file.name})`);
      remove.addEventListener("click", () => {
        state.styles.splice(i, 1);
        renderStyles();
        (el.styleList.querySelector("button.icon") || el.styleInput).focus();
      });
      li.append(body, remove);
      return li;
    }));
    el.styleDrop.classList.toggle("filled", state.styles.length > 0);
  }

  function wireDrop(zone, input, take) {
    input.addEventListener("change", () => { if (input.files.length) take(input.files); input.value = ""; });
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
    }
    for (const type of ["dragleave", "dragend"]) zone.addEventListener(type, () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      if (e.dataTransfer && e.dataTransfer.files.length) take(e.dataTransfer.files);
    });
  }
  wireDrop(el.contentDrop, el.contentInput, setContent);
  wireDrop(el.styleDrop, el.styleInput, addStyles);
  // A file dropped beside a zone must not replace the page.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());

  // --- form -------------------------------------------------------------------------------------

  function formError(message, field) {
    el.formError.textContent = field ? `${message} (${field})` : message;
    el.formError.hidden = false;
  }
  function clearError() { el.formError.hidden = true; el.formError.textContent = ""; }

  function params() {
    const p = { preset: el.preset.value, size: Number(el.size.value), color: el.color.value };
    if (state.styles.length > 1) p.style_blend = state.styles.map((s) => s.weight);
    const extra = el.extra.value.trim();
    if (extra) {
      let parsed;
      try { parsed = JSON.parse(extra); } catch (_) { throw new ApiError(0, { error: { message: "Extra parameters are not valid JSON.", field: "params" } }); }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new ApiError(0, { error: { message: "Extra parameters must be a JSON object.", field: "params" } });
      }
      Object.assign(p, parsed);
    }
    return p;
  }

  el.form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearError();
    if (!state.content) { formError("Choose a content photo.", "content"); el.contentInput.focus(); return; }
    if (!state.styles.length) { formError("Choose at least one style image.", "style"); el.styleInput.focus(); return; }
    const body = new FormData();
    try {
      body.append("params", JSON.stringify(params()));
    } catch (err) { formError(err.message, err.field); el.extra.focus(); return; }
    body.append("content", state.content, state.content.name);
    for (const s of state.styles) body.append("style", s.file, s.file.name);
    el.submit.disabled = true;
    el.submit.textContent = "Uploading…";
    try {
      const view = await (await api("/v1/jobs", { method: "POST", body })).json();
      remember(view.id);
      openJob(view.id, view);
      // One column (phones): the progress is below the form, bring it into view.
      if (window.matchMedia("(max-width: 860px)").matches) $("job-title").scrollIntoView({ block: "start" });
    } catch (err) {
      if (err.status === 401) showAuth(true);
      formError(err.message, err.field);
    } finally {
      el.submit.disabled = false;
      el.submit.textContent = "Stylize";
    }
  });

  // --- one job ----------------------------------------------------------------------------------

  // The one place that knows how job updates arrive: calls onView(view) for each new state of
  // the job until it finishes or the returned stop() is called.
  function watchJob(id, onView, onError) {
    if (!window.EventSource) return pollJob(id, onView, onError);
    let stopped = false, view = null, stopPoll = null;
    const key = sessionStorage.getItem(API_KEY_KEY);
    // EventSource cannot send headers: the key goes in the query, accepted on this route only.
    const source = new EventSource(`/v1/jobs/${id}/events` + (key ? `?access_token=${encodeURIComponent(key)}` : ""));
    const fallBack = () => {  // the stream is refused or unavailable: poll instead
      source.close();
      if (!stopped && !stopPoll) stopPoll = pollJob(id, onView, onError);
    };
    const onEvent = async (e) => {
      const data = JSON.parse(e.data);
      try {
        // The stream carries status and progress; the rest of the view comes from one GET at
        // the start and one at the end (result links, timings).
        if (!view || FINISHED.has(data.status)) view = await (await api(`/v1/jobs/${id}`)).json();
      } catch (err) { if (!stopped) onError(err); fallBack(); return; }
      if (stopped) return;
      if (!FINISHED.has(view.status)) view = { ...view, status: data.status, progress: data.progress || view.progress, error: data.error };
      onView(view);
      if (FINISHED.has(view.status)) source.close();
    };
    source.addEventListener("status", onEvent);
    source.addEventListener("progress", onEvent);
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) fallBack(); };  // else it reconnects
    return () => { stopped = true; source.close(); if (stopPoll) stopPoll(); };
  }

  function pollJob(id, onView, onError) {
    let stopped = false, timer = null;
    const tick = async () => {
      try {
        const view = await (await api(`/v1/jobs/${id}`)).json();
        if (stopped) return;
        onView(view);
        if (FINISHED.has(view.status)) return;
      } catch (err) {
        if (stopped) return;
        onError(err);
        if (err.status === 401 || err.status === 404) return;
      }
      timer = setTimeout(tick, POLL_MS);
    };
    tick();
    return () => { stopped = true; clearTimeout(timer); };
  }

  function openJob(id, view) {
    if (state.stopWatch) state.stopWatch();
    state.current = id;
    state.lastStep = -1;
    for (const key of Object.keys(state.urls)) { URL.revokeObjectURL(state.urls[key]); delete state.urls[key]; }
    el.empty.hidden = true;
    el.job.hidden = false;
    el.jobId.textContent = id;
    el.preview.hidden = true;
    el.result.hidden = true;
    el.download.hidden = true;
    el.jobError.hidden = true;
    el.caption.textContent = "";
    el.progress.value = 0;
    el.progressText.textContent = "Waiting for a worker…";
    if (view) render(view);
    state.stopWatch = watchJob(id, render, (err) => {
      el.jobError.textContent = err.message;
      el.jobError.hidden = false;
      if (err.status === 401) showAuth(true);
    });
    markHistory();
  }

  function formatSeconds(s) {
    if (s == null || !isFinite(s)) return "";
    if (s < 60) return `${Math.max(1, Math.round(s))} s`;
    return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  function render(view) {
    if (view.id !== state.current) return;
    el.jobStatus.textContent = view.status;
    el.jobStatus.dataset.status = view.status;
    const p = view.progress;
    const running = view.status === "running" || view.status === "queued";
    el.cancel.hidden = !running || view.cancel_requested;
    if (view.status === "queued") {
      el.progressText.textContent = "Queued: waiting for a worker…";
    } else if (view.status === "running" && p) {
      el.progress.value = p.percent;
      const parts = [STAGES[p.stage] || p.stage, `scale ${p.scale}/${p.scales}`, `${Math.floor(p.percent)}%`];
      if (p.eta_seconds != null) parts.push(`about ${formatSeconds(p.eta_seconds)} left`);
      el.progressText.textContent = view.cancel_requested ? "Canceling…" : parts.join(" · ");
      if (p.step !== state.lastStep && p.step > 0) {
        state.lastStep = p.step;
        loadImage("preview", `/v1/jobs/${view.id}/preview`, view.id);
      }
    } else if (view.status === "running") {
      el.progressText.textContent = "Starting…";
    } else if (view.status === "succeeded") {
      el.progress.value = 100;
      el.progressText.textContent = `Done in ${formatSeconds(view.run_seconds)}.`;
      el.cancel.hidden = true;
      showResult(view.id);
    } else if (view.status === "canceled") {
      el.progressText.textContent = "Canceled.";
      if (!el.preview.hidden) el.caption.textContent = "Last preview before canceling";
    } else if (view.status === "failed") {
      el.progressText.textContent = "Failed.";
      el.jobError.textContent = view.error ? view.error.message : "The job failed.";
      el.jobError.hidden = false;
    }
    updateHistoryItem(view.id, view.status);
  }

  async function loadImage(which, path, id) {
    try {
      const blob = await (await api(path)).blob();
      if (id !== state.current) return null;
      const url = URL.createObjectURL(blob);
      if (state.urls[which]) URL.revokeObjectURL(state.urls[which]);
      state.urls[which] = url;
      el[which].src = url;
      if (which === "preview" && el.result.hidden && !FINISHED.has(el.jobStatus.textContent)) {
        el.preview.hidden = false;
        el.caption.textContent = "Live preview";
      }
      return url;
    } catch (_) {
      return null; // no preview yet (409) or the job moved on: the next update tries again
    }
  }

  async function showResult(id) {
    const url = await loadImage("result", `/v1/jobs/${id}/result`, id);
    if (!url) return;
    el.result.hidden = false;
    el.preview.hidden = true;
    el.caption.textContent = "Result";
    el.download.href = url;
    el.download.download = `nst-${id.slice(0, 8)}.png`;
    el.download.hidden = false;
  }

  el.cancel.addEventListener("click", async () => {
    const id = state.current;
    el.cancel.disabled = true;
    try {
      const view = await (await api(`/v1/jobs/${id}/cancel`, { method: "POST" })).json();
      render(view);
      if (view.status === "running") el.progressText.textContent = "Canceling…";
    } catch (err) {
      el.jobError.textContent = err.message;
      el.jobError.hidden = false;
    } finally {
      el.cancel.disabled = false;
    }
  });

  // --- this browser's jobs ----------------------------------------------------------------------

  function history() {
    try {
      const ids = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
      return Array.isArray(ids) ? ids.filter((x) => /^[0-9a-f]{32}$/.test(x)) : [];
    } catch (_) { return []; }
  }

  function remember(id) {
    const ids = [id, ...history().filter((x) => x !== id)].slice(0, 20);
    localStorage.setItem(HISTORY_KEY, JSON.stringify(ids));
    renderHistory();
  }

  function renderHistory() {
    const ids = history();
    el.historyEmpty.hidden = ids.length > 0;
    el.history.replaceChildren(...ids.map((id) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "history-item";
      button.dataset.id = id;
      const code = document.createElement("code");
      code.textContent = id.slice(0, 8);
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "…";
      button.append(code, badge);
      button.setAttribute("aria-label", `Show job ${id.slice(0, 8)}`);
      button.addEventListener("click", () => openJob(id));
      li.append(button);
      return li;
    }));
    markHistory();
    for (const id of ids) {
      api(`/v1/jobs/${id}`).then((r) => r.json()).then((v) => updateHistoryItem(id, v.status))
        .catch((err) => updateHistoryItem(id, err.status === 404 ? "gone" : "unknown"));
    }
  }

  function updateHistoryItem(id, status) {
    const button = el.history.querySelector(`[data-id="${id}"]`);
    if (!button) return;
    const badge = button.querySelector(".badge");
    badge.textContent = status;
    badge.dataset.status = status;
    button.setAttribute("aria-label", `Show job ${id.slice(0, 8)}, ${status}`);
  }

  function markHistory() {
    for (const b of el.history.querySelectorAll(".history-item")) {
      if (b.dataset.id === state.current) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    }
  }

  detectAuth();
  applyLimits();
  renderHistory();
})();
