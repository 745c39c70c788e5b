// The relay's page behaviour: live updates (Server-Sent Events), "Load older", the post form,
// collapsing long messages, copy buttons, local times and the theme toggle. The server renders
// and sanitises every message; this script only places the HTML it sends.
"use strict";

(function () {
  const body = document.body;
  const channel = body.dataset.channel;
  const list = document.getElementById("messages");
  // On a thread's page: its messages' ids; new messages are shown only when they answer one.
  const thread = body.dataset.thread ? Number(body.dataset.thread) : null;
  const inThread = new Set();
  if (list && thread) list.querySelectorAll(".msg").forEach(function (li) { inThread.add(Number(li.dataset.id)); });
  const live = document.getElementById("live");

  // ---- Theme: follows the system until the reader picks one; the pick is remembered.
  const root = document.documentElement;
  const toggle = document.getElementById("theme-toggle");
  function currentTheme() {
    return root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
  }
  function labelToggle() {
    const next = currentTheme() === "dark" ? "light" : "dark";
    toggle.textContent = next === "dark" ? "Dark theme" : "Light theme";
    toggle.setAttribute("aria-label", "Switch to the " + next + " theme");
  }
  toggle.addEventListener("click", function () {
    const next = currentTheme() === "dark" ? "light" : "dark";
    root.dataset.theme = next;
    try { localStorage.setItem("relay-theme", next); } catch (e) { /* not remembered */ }
    labelToggle();
  });
  labelToggle();

  // ---- Copying: code blocks and the connect snippets.
  function copyText(text, button) {
    const done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Copy failed"; });
    } else {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); done(); } catch (e) { button.textContent = "Copy failed"; }
      area.remove();
    }
  }
  function addCopyButton(container, source) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy to the clipboard");
    button.addEventListener("click", function () { copyText(source.textContent, button); });
    container.appendChild(button);
  }
  document.querySelectorAll(".copyable").forEach(function (el) { addCopyButton(el, el.querySelector("code") || el); });

  // ---- Each message as it is placed: local time, copy buttons, collapse when long.
  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
  const COLLAPSE_PX = 900;
  function enhance(item) {
    item.querySelectorAll("time[datetime]").forEach(function (t) {
      const when = new Date(t.getAttribute("datetime"));
      if (!isNaN(when)) { t.title = t.getAttribute("datetime"); t.textContent = timeFormat.format(when); }
    });
    item.querySelectorAll(".code").forEach(function (block) { addCopyButton(block, block.querySelector("pre")); });
    const text = item.querySelector(".msg-body");
    if (text && text.scrollHeight > COLLAPSE_PX) {
      text.classList.add("collapsed");
      const more = document.createElement("button");
      more.type = "button";
      more.className = "more";
      more.textContent = "Show more";
      more.setAttribute("aria-expanded", "false");
      more.addEventListener("click", function () {
        const collapsed = text.classList.toggle("collapsed");
        more.textContent = collapsed ? "Show more" : "Show less";
        more.setAttribute("aria-expanded", String(!collapsed));
      });
      text.after(more);
    }
  }

  function atBottom() {
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40;
  }

  if (list) {
    list.querySelectorAll(".msg").forEach(enhance);
    // Open at the newest message, or at the one the URL names.
    const target = location.hash && document.getElementById(location.hash.slice(1));
    if (target) target.scrollIntoView(); else window.scrollTo(0, document.documentElement.scrollHeight);
  }

  function firstId() {
    const first = list.querySelector(".msg");
    return first ? Number(first.dataset.id) : Number(body.dataset.firstId || 0);
  }
  let lastId = Number(body.dataset.lastId || 0);

  // ---- Live: new messages pushed by the relay. EventSource reconnects by itself and resumes
  // from the last event id it saw; when the relay answers a reconnect with an error, start over
  // from the last id shown.
  function placeNew(id, html, replyTo) {
    if (id <= lastId || document.getElementById("m-" + id)) return;
    if (thread) {
      if (!inThread.has(replyTo)) { lastId = id; return; }
      inThread.add(id);
    }
    const stick = atBottom();
    const holder = document.createElement("template");
    holder.innerHTML = html.trim();
    const item = holder.content.firstElementChild;
    if (!item) return;
    item.classList.add("new");
    list.appendChild(item);
    lastId = id;
    const empty = document.getElementById("no-messages");
    if (empty) empty.remove();
    enhance(item);
    const here = lastChannels.find(function (c) { return c.name === channel; });
    if (here) showSeen(here);
    if (stick) window.scrollTo(0, document.documentElement.scrollHeight);
  }

  function setLive(on, text) {
    live.className = "live " + (on ? "on" : "off");
    live.textContent = text;
  }

  // ---- The channel list, kept current from the relay's `channels` events: counts grow, new
  // channels appear in place and who is listening changes, without a reload (channels are
  // never removed).
  function channelItem(c, card) {
    const item = document.createElement("li");
    item.dataset.name = c.name;
    const link = document.createElement("a");
    link.href = c.href;
    if (!card && c.name === channel) link.setAttribute("aria-current", "page");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = c.name;
    const count = document.createElement("span");
    count.className = "count";
    link.append(name, " ", count);
    const listening = document.createElement("span");
    listening.className = "listening";
    item.append(link, listening);
    return item;
  }
  function syncList(listEl, channels, card) {
    if (!listEl) return;
    const items = new Map();
    listEl.querySelectorAll(":scope > li").forEach(function (li) { items.set(li.dataset.name, li); });
    let previous = null;
    channels.forEach(function (c) {
      let item = items.get(c.name);
      if (!item) {
        item = channelItem(c, card);
        if (previous) previous.after(item); else listEl.prepend(item);
      }
      const count = item.querySelector(".count");
      const unread = c.unread === undefined || c.unread === null ? null : c.unread;
      const label = (unread === null ? "" : unread + " unread of ") + c.count + " messages";
      const text = card ? label : (unread === null ? String(c.count) : unread + "/" + c.count);
      if (count.textContent !== text) count.textContent = text;
      count.classList.toggle("unread", unread !== null && unread > 0);
      if (!card) count.setAttribute("aria-label", label);
      const listening = item.querySelector(".listening");
      if (listening.textContent !== c.listening) listening.textContent = c.listening;
      previous = item;
    });
  }
  // ---- Readers: where each stands under the messages (woken, read, acknowledged), and the
  // unread counts of the reader picked above the channel list (remembered here).
  const readerPick = document.getElementById("reader-pick");
  let picked = "";
  try { picked = localStorage.getItem("relay-reader") || ""; } catch (e) { /* not remembered */ }
  function readerQuery(sep) {
    return picked ? sep + "reader=" + encodeURIComponent(picked) : "";
  }
  function syncReaders(channels) {
    const names = new Set();
    channels.forEach(function (c) { Object.keys(c.readers || {}).forEach(function (r) { names.add(r); }); });
    if (picked) names.add(picked);
    const known = new Set(Array.from(readerPick.options, function (o) { return o.value; }));
    Array.from(names).sort().forEach(function (name) {
      if (!known.has(name)) readerPick.appendChild(new Option(name, name));
    });
    readerPick.value = picked;
  }
  // Where each reader stands, under the messages: "codex: woken 12:01:03, read 12:01:20,
  // acknowledged 12:01:40".
  const clock = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  const STATES = ["woken", "read", "acknowledged"];
  function showSeen(here) {
    if (!list) return;
    list.querySelectorAll(".seen").forEach(function (p) { p.remove(); });
    const items = Array.from(list.querySelectorAll(".msg"));
    const covering = function (id) {
      let last = null;
      items.forEach(function (li) { if (Number(li.dataset.id) <= id) last = li; });
      return last;
    };
    const at = new Map();
    const note = function (li, reader, text) {
      if (!li) return;
      const lines = at.get(li) || new Map();
      lines.set(reader, (lines.get(reader) || []).concat(text));
      at.set(li, lines);
    };
    const delivery = here.delivery || {};
    const readers = here.readers || {};
    const names = new Set(Object.keys(delivery).concat(Object.keys(readers)));
    Array.from(names).sort().forEach(function (reader) {
      const states = delivery[reader] || {};
      STATES.forEach(function (state) {
        const mark = states[state];
        // Woken and read name a message: shown under it, when it is on the page. The cursor
        // covers every message up to it: shown under the newest of those on the page.
        const li = !mark ? null : state === "acknowledged" ? covering(mark.id) : document.getElementById("m-" + mark.id);
        if (li) note(li, reader, state + " " + clock.format(new Date(mark.ts * 1000)));
      });
      if (!states.acknowledged && reader in readers) note(covering(readers[reader]), reader, "acknowledged");
    });
    at.forEach(function (lines, li) {
      const seen = document.createElement("p");
      seen.className = "seen";
      seen.textContent = Array.from(lines, function (entry) { return entry[0] + ": " + entry[1].join(", "); }).join("; ");
      li.querySelector("article").appendChild(seen);
    });
  }
  let lastChannels = [];

  function showChannels(event) {
    let data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    lastChannels = data.channels;
    syncReaders(data.channels);
    const here = data.channels.find(function (c) { return c.name === channel; });
    if (here) showSeen(here);
    syncList(document.getElementById("channel-nav"), data.channels, false);
    syncList(document.getElementById("channel-cards"), data.channels, true);
    const names = document.getElementById("channel-list");
    const known = new Set(Array.from(names.options, function (o) { return o.value; }));
    data.channels.forEach(function (c) {
      if (!known.has(c.name)) names.appendChild(new Option(c.name, c.name));
    });
    if (data.channels.length) {
      ["no-channels-nav", "no-channels"].forEach(function (id) {
        const empty = document.getElementById(id);
        if (empty) empty.remove();
      });
    }
  }
  let source = null;
  function listenChannels() {
    source = new EventSource("/channels/events" + readerQuery("?"));
    source.addEventListener("channels", showChannels);
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) setTimeout(listenChannels, 2000);
    });
  }

  function listen() {
    const url = "/c/" + encodeURIComponent(channel) + "/events?after=" + lastId + readerQuery("&");
    source = new EventSource(url);
    source.addEventListener("channels", showChannels);
    source.addEventListener("open", function () { setLive(true, "live"); });
    source.addEventListener("message", function (event) {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      placeNew(data.id, data.html, data.reply_to);
    });
    // A message redacted meanwhile: its tombstone takes its place.
    source.addEventListener("redacted", function (event) {
      let data;
      try { data = JSON.parse(event.data); } catch (e) { return; }
      const shown = document.getElementById("m-" + data.id);
      if (!shown) return;
      const holder = document.createElement("template");
      holder.innerHTML = data.html;
      const tombstone = holder.content.firstElementChild;
      if (!tombstone) return;
      shown.replaceWith(tombstone);
      enhance(tombstone);
    });
    source.addEventListener("relay-error", function (event) { setLive(false, event.data); });
    source.addEventListener("error", function () {
      setLive(false, "reconnecting…");
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(listen, 2000);
      }
    });
  }
  const start = channel && list ? listen : listenChannels;
  start();
  readerPick.addEventListener("change", function () {
    picked = readerPick.value;
    try { localStorage.setItem("relay-reader", picked); } catch (e) { /* not remembered */ }
    source.close();
    start();
  });

  // ---- Load older: the page before the first shown, keeping the reader's place.
  const older = document.getElementById("load-older");
  if (older) {
    older.addEventListener("click", async function () {
      older.disabled = true;
      older.textContent = "Loading…";
      try {
        const reply = await fetch("/c/" + encodeURIComponent(channel) + "/older?before=" + firstId());
        const page = await reply.json();
        if (!reply.ok) throw new Error(page.error || reply.statusText);
        const height = document.documentElement.scrollHeight;
        const holder = document.createElement("template");
        holder.innerHTML = page.html;
        const items = Array.from(holder.content.children);
        list.prepend(holder.content);
        items.forEach(enhance);
        window.scrollBy(0, document.documentElement.scrollHeight - height);
        if (page.more) {
          older.disabled = false;
          older.textContent = "Load older messages";
        } else if (page.expired_before) {
          const note = older.parentElement;
          note.id = "expired-before";
          note.className = "older empty";
          note.textContent = "Older messages expired: this channel keeps a limited history.";
        } else {
          older.parentElement.remove();
        }
      } catch (e) {
        older.disabled = false;
        older.textContent = "Load older messages (failed: " + e.message + "; try again)";
      }
    });
  }

  // ---- The post form. Ctrl+Enter or Cmd+Enter sends.
  const form = document.getElementById("post-form");
  const status = document.getElementById("post-status");
  const sender = document.getElementById("post-sender");
  const text = document.getElementById("post-text");
  // Signed in with one's own credential, the sender is one's name (the field is read-only).
  if (!sender.readOnly) {
    try { sender.value = localStorage.getItem("relay-sender") || sender.value; } catch (e) { /* default */ }
  }
  text.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  // Reply: the next post answers that message (on a thread's page, its first one by default).
  const replyTo = document.getElementById("post-reply-to");
  const replying = document.getElementById("replying");
  function setReply(id) {
    replyTo.value = id ? String(id) : "";
    replying.hidden = !id;
    const link = document.getElementById("replying-link");
    link.textContent = "#" + id;
    link.href = "#m-" + id;
  }
  document.getElementById("replying-cancel").addEventListener("click", function () { setReply(""); });
  document.addEventListener("click", function (event) {
    const button = event.target.closest && event.target.closest("button.reply");
    if (!button) return;
    setReply(button.dataset.id);
    if (channel) form.elements.target.value = channel;
    text.focus();
  });
  // Redact: the message is taken back for everyone; its place says who did it and why.
  document.addEventListener("click", async function (event) {
    const button = event.target.closest && event.target.closest("button.redact");
    if (!button) return;
    const id = button.dataset.id;
    const reason = window.prompt("Redact #" + id + " for everyone? Its text is erased and its place says who did it and why.\nReason (optional):", "");
    if (reason === null) return;
    button.disabled = true;
    try {
      const reply = await fetch("/ui/messages/" + id, {
        method: "DELETE",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ reason: reason, by: sender.value.trim() || null }),
      });
      const answer = await reply.json().catch(function () { return {}; });
      if (!reply.ok || !answer.ok) throw new Error(answer.error || reply.status + " " + reply.statusText);
      const li = document.getElementById("m-" + id);
      li.classList.add("redacted");
      const body = li.querySelector(".msg-body");
      body.textContent = "";
      const p = document.createElement("p");
      p.textContent = answer.message.text;
      body.appendChild(p);
      button.remove();
    } catch (e) {
      button.disabled = false;
      button.textContent = "Redact (failed: " + e.message + ")";
    }
  });
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const message = {
      target: form.elements.target.value.trim(),
      sender: sender.value.trim(),
      text: text.value,
    };
    if (replyTo.value) message.reply_to = Number(replyTo.value);
    status.className = "status";
    status.textContent = "Sending…";
    try {
      const reply = await fetch("/ui/messages", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(message),
      });
      const answer = await reply.json().catch(function () { return {}; });
      if (!reply.ok || !answer.ok) throw new Error(answer.error || reply.status + " " + reply.statusText);
      try { localStorage.setItem("relay-sender", message.sender); } catch (e) { /* not remembered */ }
      text.value = "";
      setReply(thread ? String(thread) : "");
      status.className = "status ok";
      if (message.target === channel) {
        status.textContent = "Posted #" + answer.posted;
      } else {
        status.textContent = "Posted #" + answer.posted + " to " + message.target + " ";
        const link = document.createElement("a");
        link.href = "/c/" + encodeURIComponent(message.target) + "#m-" + answer.posted;
        link.textContent = "open";
        status.appendChild(link);
      }
    } catch (e) {
      status.className = "status error";
      status.textContent = "Not posted: " + e.message;
    }
  });
})();
