// The dashboard's script: polls the JSON API, draws the page, sends the actions (POST with the token). Every text
// from the queue goes in through textContent, never as HTML.
"use strict";

const meta = document.querySelector('meta[name="watchbot-token"]');
let token = (meta && meta.content) || sessionStorage.getItem("watchbot-token") || "";
let remote = false;
let lastDead = null;
let deadFetched = 0;
let timers = {};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

function human(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = Math.floor(ms / 1000);
  if (s < 1) return ms + " ms";
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

function time(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : "";
}

function banner(text, ok) {
  const b = $("banner");
  if (!text) { b.hidden = true; return; }
  b.textContent = text;
  b.className = ok ? "banner ok" : "banner";
  b.hidden = false;
}

class Refused extends Error {}

async function api(path, body) {
  const options = { headers: { "X-Watchbot-Token": token }, cache: "no-store" };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  if (response.status === 401) {
    askToken();
    throw new Refused("the token is missing or wrong");
  }
  const data = await response.json().catch(() => ({ error: "an answer that is not JSON (" + response.status + ")" }));
  if (!response.ok) throw new Error(data.error || ("HTTP " + response.status));
  return data;
}

function askToken() {
  sessionStorage.removeItem("watchbot-token");
  $("token-form").hidden = false;
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token-input").value;
  sessionStorage.setItem("watchbot-token", token);
  $("token-form").hidden = true;
  refreshAll();
});

function setCount(name, value) {
  const node = $("count-" + name);
  const text = String(value);
  if (node.textContent !== text) node.textContent = text;
}

async function overview() {
  const data = await api("/api/overview");
  remote = data.remote;
  const s = data.status;
  setCount("visible", s.visible);
  setCount("in_flight", s.in_flight);
  setCount("delayed", s.delayed);
  setCount("dead_letters", s.dead_letters);
  setCount("oldest", s.oldest_age_ms === null ? (remote ? "n/a" : "–") : human(s.oldest_age_ms));
  $("count-oldest").title = s.oldest_age_ms === null && remote
    ? "SQS does not tell it; see CloudWatch's ApproximateAgeOfOldestMessage" : "";
  drawRunning(s.in_flight_messages, data.now_ms);
  drawFailures(data.failures, data.history);
  $("live-dot").className = "dot on";
  $("updated").textContent = "live · " + time(data.now_ms);
  if (lastDead !== s.dead_letters) {
    lastDead = s.dead_letters;
    deadLetters();
  }
}

function drawRunning(messages, now) {
  const body = $("running").tBodies[0];
  body.replaceChildren();
  if (messages === null || messages === undefined) {
    $("running-empty").textContent = "SQS cannot list the messages in flight without receiving them.";
    $("running-empty").hidden = false;
    return;
  }
  for (const m of messages) {
    body.append(el("tr", { "data-id": m.message_id },
      el("td", { class: "id" }, m.message_id),
      el("td", { class: "num" }, m.receive_count),
      el("td", { class: "num" }, m.received_ms ? human(Math.max(0, now - m.received_ms)) : "–"),
      el("td", { class: "num" }, human(Math.max(0, m.visible_at_ms - now)))));
  }
  $("running-empty").textContent = "Nothing in flight.";
  $("running-empty").hidden = messages.length > 0;
}

const opened = new Set();

function attemptsView(id) {
  const box = el("div", { class: "attempts" }, el("p", { class: "note" }, "loading…"));
  api("/api/messages/" + encodeURIComponent(id) + "/attempts").then((data) => {
    box.replaceChildren();
    if (!data.attempts.length) {
      box.append(el("p", { class: "note" }, data.history ? "No attempts recorded."
        : "No attempt history here: see `watchbot logs " + id + " --stack NAME`."));
    }
    for (const a of data.attempts) {
      box.append(el("div", { class: "attempt" },
        el("div", {}, "receive " + a.receive_count + " · " + a.outcome + " · exit " + (a.exit_code ?? "none") + " · ",
          el("span", { class: "when" }, new Date(a.ended_ms).toLocaleString())),
        el("div", { class: "reason" }, a.reason),
        a.output ? el("pre", {}, a.output) : el("p", { class: "note" }, "no output kept")));
    }
  }).catch((e) => box.replaceChildren(el("p", { class: "reason" }, e.message)));
  return box;
}

function expandable(key, summary) {
  const details = el("details", { "data-key": key }, el("summary", {}, ...summary));
  if (opened.has(key)) { details.open = true; details.append(attemptsView(key.split("\u001f")[1])); }
  details.addEventListener("toggle", () => {
    if (details.open) {
      opened.add(key);
      if (!details.querySelector(".attempts")) details.append(attemptsView(key.split("\u001f")[1]));
    } else {
      opened.delete(key);
      details.querySelector(".attempts")?.remove();
    }
  });
  return details;
}

let failuresShown = "";

function drawFailures(failures, history) {
  const key = JSON.stringify(failures);
  if (key === failuresShown) return;
  failuresShown = key;
  const box = $("failures");
  box.replaceChildren();
  for (const f of failures) {
    box.append(expandable("f\u001f" + f.message_id + "\u001f" + f.receive_count + "\u001f" + f.ended_ms, [
      el("span", { class: "id" }, f.message_id),
      el("span", { class: "when" }, "receive " + f.receive_count + " · " + time(f.ended_ms)),
      el("span", { class: "reason" }, f.reason)]));
  }
  $("failures-empty").textContent = history ? "No failures recorded."
    : "No attempt history on SQS: `watchbot logs MESSAGE_ID --stack NAME` reads CloudWatch Logs.";
  $("failures-empty").hidden = failures.length > 0;
}

async function deadLetters() {
  deadFetched = Date.now();
  let data;
  try {
    data = await api("/api/dead-letters");
  } catch (e) {
    if (!(e instanceof Refused)) $("dead-empty").textContent = e.message;
    $("dead-empty").hidden = false;
    $("dead-letters").replaceChildren();
    return;
  }
  const box = $("dead-letters");
  box.replaceChildren();
  for (const d of data.dead_letters) {
    const subject = d.subject ? "[" + d.subject + "] " : "";
    box.append(el("div", { class: "letter", "data-id": d.message_id },
      expandable("d\u001f" + d.message_id, [
        el("span", { class: "id" }, d.message_id),
        el("span", { class: "when" }, "receives " + d.receive_count + " · sent " + new Date(d.sent).toLocaleString())]),
      el("div", { class: "row-actions" },
        el("button", { type: "button", class: "redrive", onclick: () => act("redrive", { ids: [d.message_id] }) }, "Redrive"),
        el("button", { type: "button", class: "delete danger", onclick: () => act("delete", { ids: [d.message_id] }) }, "Delete")),
      el("div", { class: "msg" }, subject + d.message)));
  }
  if (data.total > data.dead_letters.length) {
    box.append(el("p", { class: "note" }, "The first " + data.dead_letters.length + " of " + data.total
      + " dead letters; `watchbot dead-letter list` shows every one. Redrive all and Purge act on all of them."));
  }
  $("dead-empty").textContent = "No dead letters.";
  $("dead-empty").hidden = data.dead_letters.length > 0;
  $("redrive-all").disabled = data.dead_letters.length === 0;
  $("purge").disabled = data.dead_letters.length === 0;
}

async function act(what, body) {
  for (const b of document.querySelectorAll("button")) b.disabled = true;
  try {
    const data = await api("/api/dead-letters/" + what, body);
    const n = (data.redriven || data.deleted || []).length;
    banner((what === "redrive" ? "Sent back to the work queue: " : "Deleted: ") + n + " dead letter" + (n === 1 ? "" : "s"), true);
  } catch (e) {
    banner(e.message);
  } finally {
    for (const b of document.querySelectorAll("button")) b.disabled = false;
    lastDead = null;
    overview().catch(() => {});
  }
}

$("redrive-all").addEventListener("click", () => act("redrive", { all: true }));
$("refresh-dead").addEventListener("click", () => deadLetters());
$("purge").addEventListener("click", () => {
  $("purge-question").textContent = "Delete all " + (lastDead ?? "the") + " dead letters? This cannot be undone.";
  $("purge-confirm").hidden = false;
});
$("purge-no").addEventListener("click", () => { $("purge-confirm").hidden = true; });
$("purge-yes").addEventListener("click", () => { $("purge-confirm").hidden = true; act("purge", { confirm: true }); });

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function outcomes() {
  const data = await api("/api/outcomes");
  $("chart-source").textContent = data.source;
  const minutes = data.minutes;
  const sums = { succeeded: 0, failed: 0, rejected: 0 };
  for (const m of minutes) for (const k in sums) sums[k] += m[k];
  for (const k in sums) $("sum-" + k).textContent = sums[k];
  const W = 600, H = 150, top = 4, bottom = 2, left = 0;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img",
    "aria-label": `succeeded ${sums.succeeded}, failed ${sums.failed}, rejected ${sums.rejected} in the last hour` });
  const max = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed + m.rejected));
  const slot = (W - left) / Math.max(1, minutes.length);
  const scale = (H - top - bottom) / max;
  chart.append(svg("line", { x1: 0, x2: W, y1: H - bottom, y2: H - bottom, class: "axis" }));
  minutes.forEach((m, i) => {
    let y = H - bottom;
    for (const [k, cls] of [["succeeded", "ok"], ["failed", "fail"], ["rejected", "rej"]]) {
      if (!m[k]) continue;
      const h = m[k] * scale;
      y -= h;
      const rect = svg("rect", { x: left + i * slot + 0.5, y, width: Math.max(1, slot - 1), height: h, class: cls });
      const tip = svg("title", {}); tip.textContent = `${time(m.start_ms)}: ${m[k]} ${k}`; rect.append(tip);
      chart.append(rect);
    }
  });
  // Labels in HTML, so a narrow screen does not stretch them with the bars.
  $("chart-axis").replaceChildren(el("span", {}, minutes.length ? time(minutes[0].start_ms) : ""),
    el("span", {}, "peak " + max + "/min"), el("span", {}, "now"));
  $("chart").replaceChildren(chart);
}

async function jobs() {
  const data = await api("/api/jobs");
  const box = $("jobs");
  box.replaceChildren();
  for (const j of data.jobs) {
    const state = j.failed ? "failed" : (j.remaining === 0 ? "done" : "");
    const done = j.total - j.remaining;
    box.append(el("div", { class: "job", "data-id": j.id },
      el("div", { class: "line" }, el("span", { class: "id" }, j.id),
        el("span", { class: "num" }, done + " / " + j.total + " parts · " + j.percent + "%" + (j.reduce_sent ? " · reduce sent" : ""))),
      el("div", { class: "bar " + state, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": j.total, "aria-valuenow": done },
        el("span", { style: "width:" + (j.total ? (100 * done / j.total) : 0) + "%" })),
      j.failed ? el("div", { class: "reason" }, "failed: " + j.failed) : null));
  }
  if (data.more) box.append(el("p", { class: "note" }, "More jobs exist than are shown."));
  $("jobs-empty").textContent = data.available ? "No jobs." : data.note;
  $("jobs-empty").hidden = data.jobs.length > 0;
}

function every(name, fn, localMs, remoteMs) {
  const run = async () => {
    try {
      await fn();
      if (name === "overview") banner("");
    } catch (e) {
      if (e instanceof Refused) {
        // The token form is shown; nothing else to say.
      } else if (name === "overview") {
        $("live-dot").className = "dot off";
        $("updated").textContent = "not updated since " + $("updated").textContent.replace(/^.*· /, "");
        banner(e.message);
      } else if (name === "outcomes") {
        $("chart-source").textContent = "Cannot read the outcomes: " + e.message;
      } else if (name === "jobs") {
        $("jobs-empty").textContent = "Cannot list the jobs: " + e.message;
        $("jobs-empty").hidden = false;
      }
    }
    timers[name] = setTimeout(run, remote ? remoteMs : localMs);
  };
  clearTimeout(timers[name]);
  run();
}

function refreshAll() {
  every("overview", overview, 1000, 5000);
  every("outcomes", outcomes, 5000, 60000);
  every("jobs", jobs, 3000, 30000);
  // Dead letters are listed when their count changes; locally also every 10 s (on SQS each listing counts as a
  // receive, so only on a change or the Refresh button).
  every("dead", async () => { if (!remote && Date.now() - deadFetched > 9000) await deadLetters(); }, 10000, 60000);
}

if (token) refreshAll(); else askToken();
