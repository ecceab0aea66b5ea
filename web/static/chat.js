/* Linli (邻里) resident chat page. Plain ES2020, no framework, no external requests.
 *
 * Server text is only ever written with textContent (never innerHTML); line breaks are
 * kept by CSS (white-space: pre-wrap). All visible wording comes from the catalog blob
 * <script id="linli-texts" type="application/json"> rendered by the template.
 */
(() => {
  "use strict";

  const MAX_LEN = 2000;
  const COUNTER_FROM = 1800;
  const POLL_MS = 4000;
  const POLL_MAX_MS = 30000;
  const FONT_KEY = "linli.fontSize";

  // ---------------------------------------------------------------- texts
  const FALLBACK = {
    network_error: "网络好像不太好，请稍后再试。",
    generic_error: "出了点问题，请稍后再试。",
    retry: "再试一次",
  };
  let T = {};
  try {
    const blob = document.getElementById("linli-texts");
    T = JSON.parse((blob && blob.textContent) || "{}") || {};
  } catch (_) {
    T = {};
  }
  const tx = (key, vars) => {
    let s = T[key] !== undefined ? String(T[key]) : FALLBACK[key] || "";
    if (vars) {
      for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
    }
    return s;
  };

  // ---------------------------------------------------------------- storage (may be blocked)
  const store = {
    get(key) {
      try {
        return window.localStorage.getItem(key);
      } catch (_) {
        return null;
      }
    },
    set(key, value) {
      try {
        window.localStorage.setItem(key, value);
      } catch (_) {
        /* storage blocked (private mode / cookies off): keep the choice for this visit only */
      }
    },
  };

  // ---------------------------------------------------------------- font size
  const root = document.documentElement;
  function applyFont(mode, save) {
    const m = mode === "large" ? "large" : "normal";
    root.setAttribute("data-font", m);
    for (const b of document.querySelectorAll(".font-btn")) {
      b.setAttribute("aria-pressed", b.getAttribute("data-font") === m ? "true" : "false");
    }
    if (save) store.set(FONT_KEY, m);
  }
  applyFont(store.get(FONT_KEY), false);

  // ---------------------------------------------------------------- elements
  const $ = (id) => document.getElementById(id);
  const app = $("linli-app");
  const list = $("linli-messages");
  const loading = $("linli-loading");
  const form = $("linli-form");
  const input = $("linli-input");
  const sendBtn = $("linli-send");
  const menuBtn = $("linli-menu");
  const counter = $("linli-counter");
  const notice = $("linli-notice");
  const noticeText = $("linli-notice-text");
  const noticeRetry = $("linli-notice-retry");
  const noticeDismiss = $("linli-notice-dismiss");
  const announcer = $("linli-announce");
  const jump = $("linli-jump");
  const API = ((app && app.getAttribute("data-api-base")) || "/api/chat").replace(/\/$/, "");

  input.setAttribute("maxlength", String(MAX_LEN));

  // ---------------------------------------------------------------- state
  const seen = new Set(); // message ids already on screen
  // Cursor for /updates: only advanced by history and updates, never by send replies, so a
  // notice stored between the last poll and a send (lower id than the send's echo) is not
  // skipped. Overlaps are harmless: messages are de-duplicated by id.
  let lastId = 0;
  let latestButtons = null; // buttons of the newest bot message that has buttons
  let busy = false; // one send at a time (prevents double taps)
  let submitQueued = false; // Enter pressed while busy: send when the previous one is done
  let historyLoaded = false;
  let pollTimer = null;
  let pollDelay = POLL_MS;
  let pollFailures = 0;
  let polling = false;

  // ---------------------------------------------------------------- helpers
  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      try {
        return window.crypto.randomUUID();
      } catch (_) {
        /* insecure context: fall through */
      }
    }
    const b = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const charCount = (s) => Array.from(s).length;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function formatTime(at) {
    if (!at) return "";
    const d = new Date(at);
    if (Number.isNaN(d.getTime())) return "";
    const now = new Date();
    const hm = `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
    if (d.toDateString() === now.toDateString()) return hm;
    return `${d.getMonth() + 1}月${d.getDate()}日 ${hm}`;
  }

  function nearBottom() {
    const doc = document.scrollingElement || document.documentElement;
    return doc.scrollHeight - (doc.scrollTop + window.innerHeight) < 160;
  }

  function scrollToBottom(smooth) {
    const doc = document.scrollingElement || document.documentElement;
    const reduce =
      window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    window.scrollTo({ top: doc.scrollHeight, behavior: smooth && !reduce ? "smooth" : "auto" });
    jump.hidden = true;
  }

  function announce(text) {
    const p = el("p", null, text);
    announcer.appendChild(p);
    while (announcer.childNodes.length > 3) announcer.removeChild(announcer.firstChild);
  }

  // ---------------------------------------------------------------- notices
  let noticeRetryAction = null;
  function showNotice(text, retryAction, focusRetry) {
    noticeText.textContent = text;
    noticeRetryAction = retryAction || null;
    noticeRetry.hidden = !retryAction;
    notice.hidden = false;
    if (retryAction && focusRetry) noticeRetry.focus();
  }
  function hideNotice() {
    notice.hidden = true;
    noticeText.textContent = "";
    noticeRetryAction = null;
  }
  noticeRetry.addEventListener("click", () => {
    const action = noticeRetryAction;
    hideNotice();
    if (action) action();
  });
  noticeDismiss.addEventListener("click", () => {
    hideNotice();
    input.focus();
  });

  // ---------------------------------------------------------------- rendering
  function renderButtons(buttons) {
    const group = el("div", "choices");
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", tx("choices_label"));
    buttons.forEach((b, i) => {
      const btn = el("button", "choice");
      btn.type = "button";
      btn.setAttribute("data-payload", String(b.payload));
      const num = el("span", "choice-num", i + 1);
      num.setAttribute("aria-hidden", "true");
      const label = el("span", "choice-text", b.text);
      btn.append(num, label);
      btn.setAttribute("aria-label", `${i + 1} ${b.text}`);
      btn.addEventListener("click", () => {
        sendMessage({ button: String(b.payload), label: String(b.text) });
      });
      group.appendChild(btn);
    });
    return group;
  }

  function buildMessage(m) {
    const from = m.from === "user" ? "user" : "bot";
    const li = el("li", `msg msg--${from}`);
    if (m.id !== undefined && m.id !== null) li.setAttribute("data-id", String(m.id));
    const who = el("span", "visually-hidden", `${from === "user" ? tx("you") : tx("bot_name")}：`);
    const bubble = el("div", "bubble");
    bubble.appendChild(who);
    bubble.appendChild(el("span", "bubble-text", m.text || ""));
    li.appendChild(bubble);
    const time = formatTime(m.at);
    if (time) {
      const meta = el("time", "meta", time);
      meta.setAttribute("datetime", String(m.at));
      li.appendChild(meta);
    }
    const buttons = Array.isArray(m.buttons)
      ? m.buttons.filter((b) => b && b.text !== undefined && b.payload !== undefined)
      : [];
    if (from === "bot" && buttons.length) {
      li.appendChild(renderButtons(buttons));
      li.setAttribute("data-has-buttons", "1");
    }
    return { li, buttons };
  }

  function insertInOrder(li, id) {
    // Keep id order (history, send replies and polled updates may interleave); pending
    // bubbles of the resident's own unsent messages always stay last.
    for (const node of list.children) {
      const nid = node.getAttribute("data-id");
      if (nid !== null && Number(nid) > id) {
        list.insertBefore(li, node);
        return;
      }
      if (node.classList.contains("msg--pending")) {
        list.insertBefore(li, node);
        return;
      }
    }
    list.appendChild(li);
  }

  function refreshLatestButtons() {
    const all = list.querySelectorAll("li.msg--bot[data-has-buttons]");
    const last = all.length ? all[all.length - 1] : null;
    latestButtons = last
      ? Array.from(last.querySelectorAll("button.choice"), (b) => ({
          payload: b.getAttribute("data-payload"),
          text: b.querySelector(".choice-text").textContent,
        }))
      : null;
  }

  /** Add messages not yet shown; returns how many were new. */
  function addMessages(messages, opts) {
    const options = opts || {};
    if (!Array.isArray(messages)) return 0;
    const wasNearBottom = nearBottom();
    let added = 0;
    const sorted = messages
      .filter((m) => m && typeof m === "object")
      .slice()
      .sort((a, b) => Number(a.id) - Number(b.id));
    for (const m of sorted) {
      const id = Number(m.id);
      if (!Number.isFinite(id)) continue;
      if (options.cursor && id > lastId) lastId = id;
      if (seen.has(id)) continue;
      seen.add(id);
      const { li } = buildMessage(m);
      insertInOrder(li, id);
      added += 1;
      if (options.announce && m.from !== "user") {
        announce(tx("new_message_from_bot", { text: m.text || "" }));
      }
    }
    if (added) {
      if (loading && loading.parentNode) loading.remove();
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
      refreshLatestButtons();
      if (options.forceScroll || wasNearBottom) scrollToBottom(!options.instant);
      else jump.hidden = false;
    }
    return added;
  }

  function addPending(text) {
    const li = el("li", "msg msg--user msg--pending");
    const bubble = el("div", "bubble");
    bubble.appendChild(el("span", "visually-hidden", `${tx("you")}：`));
    bubble.appendChild(el("span", "bubble-text", text));
    li.appendChild(bubble);
    li.appendChild(el("p", "meta pending-state", tx("sending")));
    list.appendChild(li);
    scrollToBottom(true);
    return li;
  }

  function markFailed(li, retry) {
    li.classList.add("msg--failed");
    const state = li.querySelector(".pending-state");
    if (state) {
      state.textContent = "";
      state.appendChild(el("span", "failed-text", tx("send_failed")));
      const again = el("button", "resend-btn", tx("resend"));
      again.type = "button";
      again.addEventListener("click", retry);
      state.appendChild(again);
    }
  }

  // ---------------------------------------------------------------- network
  class ApiError extends Error {
    constructor(status, body) {
      super(`HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(path, init) {
    let res;
    try {
      res = await fetch(API + path, {
        ...(init || {}),
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json", ...((init && init.headers) || {}) },
      });
    } catch (_) {
      throw new ApiError(0, null); // offline / DNS / connection reset
    }
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok) throw new ApiError(res.status, body);
    return body || {};
  }

  function errorText(err) {
    if (err && err.status === 429) return tx("too_fast");
    if (err && err.body && typeof err.body.message === "string" && err.body.message.trim()) {
      // Server texts come from the same catalog and may carry the {max} placeholder.
      return err.body.message.split("{max}").join(String(MAX_LEN));
    }
    if (!err || err.status === 0) return tx("network_error");
    return tx("generic_error");
  }

  // ---------------------------------------------------------------- history
  async function loadHistory() {
    if (loading && !loading.parentNode) list.appendChild(loading);
    try {
      const data = await api("/history", { method: "GET" });
      hideNotice();
      historyLoaded = true;
      const added = addMessages(data.messages, { forceScroll: true, instant: true, cursor: true });
      if (!added && !list.querySelector(".msg")) {
        if (loading && loading.parentNode) loading.remove();
        list.appendChild(el("li", "empty", tx("empty")));
      }
      schedulePoll(POLL_MS);
    } catch (err) {
      if (loading && loading.parentNode) loading.remove();
      const text = err && err.status === 0 ? tx("load_error") : errorText(err);
      showNotice(text || tx("load_error"), loadHistory, true);
    }
  }

  // ---------------------------------------------------------------- sending
  function setBusy(value) {
    busy = value;
    sendBtn.setAttribute("aria-busy", value ? "true" : "false");
    app.classList.toggle("is-busy", value);
    if (!value && submitQueued) {
      submitQueued = false;
      setTimeout(submitComposer, 0);
    }
  }

  async function deliver(body, pendingLi, restoreText) {
    setBusy(true);
    try {
      const data = await api("/send", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      pendingLi.remove();
      hideNotice();
      addMessages(data.messages, { announce: true, forceScroll: true });
      pollFailures = 0;
    } catch (err) {
      const retryable = err.status === 0 || err.status === 408 || err.status === 429 || err.status >= 500;
      const again = () => {
        if (busy) return;
        pendingLi.classList.remove("msg--failed");
        const state = pendingLi.querySelector(".pending-state");
        if (state) state.textContent = tx("sending");
        hideNotice();
        deliver(body, pendingLi, restoreText);
      };
      if (retryable) {
        markFailed(pendingLi, again);
        showNotice(errorText(err), err.status === 429 ? null : again);
      } else {
        // Refused for good (e.g. too long, bad request): give the text back for editing.
        pendingLi.remove();
        if (restoreText && !input.value) {
          input.value = restoreText;
          updateComposer();
        }
        showNotice(errorText(err), null);
      }
    } finally {
      setBusy(false);
    }
  }

  function sendMessage(what) {
    if (busy) return false;
    const body = { client_msg_id: uuid4() };
    let shown;
    if (what.button !== undefined) {
      body.button = what.button;
      body.label = what.label;
      shown = what.label;
    } else {
      body.text = what.text;
      shown = what.text;
    }
    hideNotice();
    const pending = addPending(shown);
    deliver(body, pending, what.button === undefined ? what.text : null);
    return true;
  }

  const FULLWIDTH_DIGITS = /[０-９]/g;
  function numberChoice(text) {
    const s = text.trim().replace(FULLWIDTH_DIGITS, (c) => String(c.charCodeAt(0) - 0xff10));
    if (!/^\d{1,2}$/.test(s) || !latestButtons) return null;
    const n = Number(s);
    return n >= 1 && n <= latestButtons.length ? latestButtons[n - 1] : null;
  }

  function submitComposer() {
    const text = input.value;
    if (!text.trim()) {
      showNotice(tx("empty_text"), null);
      input.focus();
      return;
    }
    if (charCount(text) > MAX_LEN) {
      showNotice(tx("too_long", { max: MAX_LEN }), null);
      return;
    }
    if (busy) {
      // Sent while the previous message is still on its way: send it right after,
      // rather than ignoring the tap (the text stays visible in the box meanwhile).
      submitQueued = true;
      return;
    }
    const choice = numberChoice(text);
    const ok = choice
      ? sendMessage({ button: choice.payload, label: choice.text })
      : sendMessage({ text });
    if (ok) {
      input.value = "";
      updateComposer();
      input.focus();
    }
  }

  function updateComposer() {
    // Auto-grow the textarea up to about six lines.
    input.style.height = "auto";
    const max = parseFloat(getComputedStyle(input).lineHeight || "30") * 6 + 24;
    input.style.height = `${Math.min(input.scrollHeight + 2, max)}px`;
    const n = charCount(input.value);
    if (n >= COUNTER_FROM) {
      counter.hidden = false;
      const left = Math.max(0, MAX_LEN - n);
      counter.textContent = left > 0 ? tx("chars_left", { left }) : tx("too_long", { max: MAX_LEN });
      counter.classList.toggle("counter--full", left <= 0);
    } else if (!counter.hidden) {
      counter.hidden = true;
      counter.textContent = "";
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submitComposer();
  });
  input.addEventListener("keydown", (e) => {
    // Enter sends; Shift+Enter makes a new line; never send while a Chinese IME is composing.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submitComposer();
    }
  });
  input.addEventListener("input", updateComposer);
  menuBtn.addEventListener("click", () => {
    sendMessage({ text: tx("menu_command") || "菜单" });
  });
  jump.addEventListener("click", () => scrollToBottom(true));
  window.addEventListener(
    "scroll",
    () => {
      if (!jump.hidden && nearBottom()) jump.hidden = true;
    },
    { passive: true },
  );

  for (const b of document.querySelectorAll(".font-btn")) {
    b.addEventListener("click", () => {
      const keep = nearBottom();
      applyFont(b.getAttribute("data-font"), true);
      updateComposer();
      if (keep) scrollToBottom(false);
    });
  }

  // ---------------------------------------------------------------- polling
  function schedulePoll(delay) {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
    if (document.visibilityState === "hidden" || !historyLoaded) return;
    pollTimer = setTimeout(poll, delay);
  }

  async function poll() {
    pollTimer = null;
    if (polling || document.visibilityState === "hidden") return;
    polling = true;
    try {
      const data = await api(`/updates?after=${encodeURIComponent(lastId)}`, { method: "GET" });
      addMessages(data.messages, { announce: true, cursor: true });
      if (pollFailures >= 3 && noticeText.textContent === tx("offline")) hideNotice();
      pollFailures = 0;
      pollDelay = POLL_MS;
    } catch (err) {
      pollFailures += 1;
      pollDelay = Math.min(POLL_MAX_MS, pollDelay * 1.5);
      if (pollFailures === 3 && err.status === 0 && notice.hidden) showNotice(tx("offline"), null);
    } finally {
      polling = false;
      schedulePoll(pollDelay);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      if (!historyLoaded) return;
      pollDelay = POLL_MS;
      schedulePoll(0);
    } else if (pollTimer) {
      clearTimeout(pollTimer);
      pollTimer = null;
    }
  });
  window.addEventListener("online", () => {
    if (!historyLoaded) {
      hideNotice();
      loadHistory();
    } else {
      if (noticeText.textContent === tx("offline")) hideNotice();
      pollDelay = POLL_MS;
      schedulePoll(0);
    }
  });
  window.addEventListener("offline", () => {
    if (notice.hidden) showNotice(tx("offline"), null);
  });

  // ---------------------------------------------------------------- start
  updateComposer();
  loadHistory();
})();
