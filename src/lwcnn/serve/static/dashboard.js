// The dashboard: live results (server-sent events read through fetch, so that an API key can go in
// a header), defect rate and types as plots on canvases, a what-if threshold, the last rejected
// parts, and reviews with boxes drawn on the image. No external scripts: it works offline.
"use strict";
const $ = (id) => document.getElementById(id);
const LIVE_ROWS = 40;
const REJECTED = 8;
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("lwcnn-api-key") || "";
keyInput.addEventListener("change", () => { localStorage.setItem("lwcnn-api-key", keyInput.value); start(); });
let model = null;
let selected = null;  // the result being reviewed
let boxes = [];       // boxes drawn on it, in image pixels
let reviewImage = null;

function headers(extra = {}) {
  return keyInput.value ? { "X-API-Key": keyInput.value, ...extra } : extra;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    if (response.status === 401) $("key-box").hidden = false;
    throw new Error(body.error || `HTTP ${response.status}`);
  }
  return body;
}

async function picture(path, tries = 1) {
  // a defective result's overlay is drawn just after its verdict is recorded: a new one may need a retry
  for (let attempt = 0; attempt < tries; attempt++) {
    const response = await fetch(path, { headers: headers() });
    if (response.ok) return URL.createObjectURL(await response.blob());
    if (response.status !== 404) return null;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return null;
}

function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

function row(result) {
  const tr = document.createElement("tr");
  tr.dataset.id = result.id;
  tr.className = result.defective ? "defective" : "ok";
  const review = result.review ? result.review.kind + (result.review.label ? `:${result.review.label}` : "") : "";
  const name = result.image.split(/[\\/]/).pop();
  for (const value of [result.id, when(result.time), result.station, name, result.verdict,
                       result.score.toFixed(3), (result.types || []).join(" "), review]) {
    const td = document.createElement("td");
    td.textContent = value;
    tr.append(td);
  }
  tr.cells[3].title = result.image;
  tr.addEventListener("click", () => select(result.id));
  return tr;
}

function addLive(result, atTop = true) {
  const body = $("live").tBodies[0];
  const old = body.querySelector(`tr[data-id="${result.id}"]`);
  const fresh = row(result);
  if (old) old.replaceWith(fresh);
  else if (atTop) body.prepend(fresh);
  else body.append(fresh);
  while (body.rows.length > LIVE_ROWS) body.lastChild.remove();
}

async function addRejected(result, atTop = true) {
  if (!result.defective) return;
  const list = $("rejected");
  if (list.querySelector(`li[data-id="${result.id}"]`)) return;
  const item = document.createElement("li");
  item.dataset.id = result.id;
  const img = document.createElement("img");
  img.alt = result.image;
  const caption = document.createElement("div");
  caption.textContent = `#${result.id} ${result.image}: ${(result.types || []).join(", ") || result.verdict} (${result.score.toFixed(3)})`;
  item.append(img, caption);
  item.addEventListener("click", () => select(result.id));
  if (atTop) list.prepend(item); else list.append(item);
  while (list.children.length > REJECTED) list.lastChild.remove();
  const url = await picture(`/v1/results/${result.id}/overlay`, 10);
  if (url) img.src = url;
  else caption.textContent += " (no overlay kept)";
}

function bars(canvas, items, colour, labelEvery = 1) {
  // items: [{label, value (0..1 or count), text}], drawn as vertical bars with the value's text on top
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.font = "11px sans-serif";
  const top = Math.max(1e-9, ...items.map((i) => i.value || 0));
  const width = Math.min(80, (canvas.width - 20) / Math.max(1, items.length));
  items.forEach((item, index) => {
    const height = ((item.value || 0) / top) * (canvas.height - 40);
    const x = 10 + index * width;
    ctx.fillStyle = colour;
    ctx.fillRect(x + 1, canvas.height - 20 - height, Math.max(1, width - 2), height);
    ctx.fillStyle = "#333";
    if (item.text && width > 18) ctx.fillText(item.text, x + 1, canvas.height - 24 - height);
    if (index % labelEvery === 0) ctx.fillText(item.label, x + 1, canvas.height - 6);
  });
  canvas.dataset.bars = String(items.length);
}

async function loadStats() {
  const hours = $("hours").value;
  const stats = await api(`/v1/stats?hours=${hours}&bucket=${$("bucket").value}`);
  const rate = stats.buckets.map((b) => ({
    label: b.start.slice(11, 16), value: b.rate || 0,
    text: b.total ? `${Math.round(100 * (b.rate || 0))}%` : "",
  }));
  bars($("rate-plot"), rate, "#b00020", Math.ceil(rate.length / 12));
  const types = Object.entries(stats.types).map(([name, count]) => ({ label: name, value: count, text: String(count) }));
  bars($("type-plot"), types, "#2a7de1");
  $("totals").textContent = stats.total
    ? `${stats.total} inspected, ${stats.defective} defective (${(100 * stats.rate).toFixed(1)}%)`
    : "nothing inspected in this period";
}

let whatifTimer = null;
function whatifSoon() {
  $("threshold-value").textContent = Number($("threshold").value).toFixed(2);
  clearTimeout(whatifTimer);
  whatifTimer = setTimeout(whatif, 150);
}

async function whatif() {
  const t = $("threshold").value;
  const result = await api(`/v1/whatif?threshold=${t}&hours=${$("hours").value}`);
  $("whatif-result").textContent = `${result.defective_at_threshold} of ${result.total} defective ` +
    `(now ${result.defective_now}): ${result.newly_defective} more rejected, ${result.newly_ok} more passed`;
}

async function select(id) {
  const result = await api(`/v1/results/${id}`);
  selected = result;
  boxes = (result.review && result.review.boxes) || [];
  for (const tr of $("live").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.id === String(id));
  $("review-section").hidden = false;
  $("review-title").textContent = `#${id} ${result.image.split(/[\\/]/).pop()}: ${result.verdict}`;
  $("review-status").textContent = result.review ? `reviewed: ${result.review.kind}` : "not reviewed";
  reviewImage = null;
  const url = await picture(`/v1/results/${id}/image`);
  if (url) {
    reviewImage = new Image();
    reviewImage.onload = draw;
    reviewImage.src = url;
  } else {
    draw();
  }
}

function draw() {
  const canvas = $("review-canvas");
  const ctx = canvas.getContext("2d");
  if (!reviewImage) {
    canvas.width = 320; canvas.height = 40;
    ctx.fillText("the image was not kept", 10, 24);
    return;
  }
  canvas.width = reviewImage.naturalWidth;
  canvas.height = reviewImage.naturalHeight;
  ctx.drawImage(reviewImage, 0, 0);
  ctx.lineWidth = Math.max(2, canvas.width / 300);
  ctx.strokeStyle = "#ffdc00";  // the model's regions
  for (const [x0, y0, x1, y1] of (selected.regions && selected.regions.boxes) || []) ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
  ctx.strokeStyle = "#00e5ff";  // the operator's
  for (const [x0, y0, x1, y1] of boxes) ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
}

function canvasPoint(event) {
  const canvas = $("review-canvas");
  const rect = canvas.getBoundingClientRect();
  return [Math.round(((event.clientX - rect.left) / rect.width) * canvas.width),
          Math.round(((event.clientY - rect.top) / rect.height) * canvas.height)];
}

let dragFrom = null;
$("review-canvas").addEventListener("mousedown", (event) => { if (reviewImage) dragFrom = canvasPoint(event); });
$("review-canvas").addEventListener("mouseup", (event) => {
  if (!dragFrom) return;
  const [xa, ya] = dragFrom, [xb, yb] = canvasPoint(event);
  dragFrom = null;
  const box = [Math.min(xa, xb), Math.min(ya, yb), Math.max(xa, xb), Math.max(ya, yb)];
  if (box[2] - box[0] >= 2 && box[3] - box[1] >= 2) { boxes.push(box); draw(); }
});
$("clear-boxes").addEventListener("click", () => { boxes = []; draw(); });

async function review(kind) {
  if (!selected) return;
  const label = $("review-label").value || null;
  try {
    const stored = await api(`/v1/results/${selected.id}/review`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ kind, label, boxes }),
    });
    selected.review = stored.review;
    $("review-status").textContent = `review stored: ${kind}${label ? " (" + label + ")" : ""}`;
    addLive(stored, true);
    showError("");
  } catch (error) {
    showError(`review of #${selected.id}: ${error.message}`);
  }
}
for (const button of document.querySelectorAll(".review-buttons button[data-kind]")) {
  button.addEventListener("click", () => review(button.dataset.kind));
}

async function applyThreshold() {
  const t = Number($("threshold").value);
  try {
    const answer = await api("/v1/threshold", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ threshold: t }),
    });
    model.threshold = answer.threshold;
    $("apply-status").textContent = `applied: this service decides at ${answer.threshold.toFixed(2)} ` +
      `(was ${answer.previous.toFixed(2)})`;
    showError("");
  } catch (error) {
    showError(`threshold: ${error.message}`);
  }
}
$("apply-threshold").addEventListener("click", applyThreshold);

let statsTimer = null;
function statsSoon() {
  clearTimeout(statsTimer);
  statsTimer = setTimeout(() => { loadStats().catch((e) => showError(e.message)); whatif().catch(() => {}); }, 1000);
}

let stream = null;
async function live(afterId) {
  // server-sent events through fetch (EventSource cannot send the API key); reconnects on a drop
  if (stream) stream.abort();
  stream = new AbortController();
  let last = afterId;
  for (;;) {
    try {
      const response = await fetch(`/v1/events?after_id=${last}`, { headers: headers(), signal: stream.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      $("live-state").textContent = "live";
      $("live-state").className = "state live";
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = message.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (!data) continue;
          const result = JSON.parse(data);
          last = Math.max(last, result.id);
          addLive(result);
          addRejected(result);
          statsSoon();
        }
      }
    } catch (error) {
      if (stream.signal.aborted) return;
    }
    $("live-state").textContent = "reconnecting…";
    $("live-state").className = "state";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

async function start() {
  try {
    model = await api("/v1/model");
    $("key-box").hidden = !model.api_key_required;
    $("model").textContent = `${model.name} (${model.weights}) · ${model.engine} ${model.precision}`;
    const t = model.task === "seg" && model.threshold ? model.threshold : 0.5;
    $("threshold").value = t;
    $("apply-threshold").hidden = model.task !== "seg";  // a classifier decides by its top class
    const labels = $("review-label");
    labels.replaceChildren(new Option("—", ""), ...model.classes.map((c) => new Option(c, c)));
    const recent = await api(`/v1/results?limit=${LIVE_ROWS}`);
    $("live").tBodies[0].replaceChildren();
    for (const result of recent.results) addLive(result, false);
    const rejected = await api(`/v1/results?defective=true&limit=${REJECTED}`);
    $("rejected").replaceChildren();
    for (const result of rejected.results) await addRejected(result, false);
    await loadStats();
    whatifSoon();
    showError("");
    live(recent.results.length ? recent.results[0].id : 0);
  } catch (error) {
    showError(error.message);
  }
}
$("threshold").addEventListener("input", whatifSoon);
$("hours").addEventListener("change", () => { loadStats(); whatifSoon(); });
$("bucket").addEventListener("change", loadStats);
start();
