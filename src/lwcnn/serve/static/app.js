// The inspection page: upload images to /v1/inspect, show the verdict and the overlay, keep a
// history of the last results. No external scripts: it works offline on the line.
"use strict";
const HISTORY_LENGTH = 12;
const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = localStorage.getItem("lwcnn-api-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("lwcnn-api-key", keyInput.value));

function headers() {
  return keyInput.value ? { "X-API-Key": keyInput.value } : {};
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

async function loadModel() {
  const response = await fetch("/v1/model", { headers: headers() });
  const body = await response.json();
  if (!response.ok) {
    $("key-box").hidden = false;
    $("model").textContent = "model: " + body.error;
    return;
  }
  $("key-box").hidden = !body.api_key_required;
  const types = body.task === "seg" && body.classes.length > 2 ? body.classes.slice(1) : null;
  const what = body.task === "cls" ? body.classes.join(", ")
    : types ? `defect segmentation, types: ${types.join(", ")}` : "defect segmentation";
  $("model").textContent = `${body.name} (${body.weights}) · ${what} · ${body.engine} ${body.precision}`;
}

function describe(result) {
  if (result.task === "seg") {
    const typed = result.types_found && result.types_found.length;
    if (!result.defective && !typed) return "no defect found";
    // a model with defect types: the kinds found (their colours are the overlay's legend)
    const kinds = result.types_found ? `: ${result.types_found.join(", ")}` : "";
    return `area ${result.area} px, ${result.boxes.length} region(s)${kinds}`;
  }
  return "";
}

function show(result) {
  $("current").hidden = false;
  const verdict = $("verdict");
  verdict.textContent = `${result.image}: ${result.verdict}`;
  verdict.className = result.defective ? "defective" : "ok";
  $("score").textContent = `score ${result.score.toFixed(3)}`;
  $("details").textContent = `${describe(result)} · ${result.server_ms.toFixed(1)} ms`;
  $("overlay").src = "data:image/png;base64," + result.overlay_png;
}

function remember(result) {
  const item = document.createElement("li");
  item.className = result.defective ? "defective" : "ok";
  const picture = document.createElement("img");
  picture.src = "data:image/png;base64," + result.overlay_png;
  picture.alt = result.image;
  const caption = document.createElement("div");
  caption.textContent = `${result.image}: ${result.verdict} (${result.score.toFixed(3)})`;
  item.append(picture, caption);
  item.addEventListener("click", () => show(result));
  const history = $("history");
  history.prepend(item);
  while (history.children.length > HISTORY_LENGTH) history.lastChild.remove();
}

async function inspect(file) {
  const form = new FormData();
  form.append("image", file, file.name);
  let response;
  try {
    response = await fetch("/v1/inspect?overlay=1", { method: "POST", body: form, headers: headers() });
  } catch (error) {
    showError(`${file.name}: the server did not answer (${error})`);
    return;
  }
  const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    if (response.status === 401) $("key-box").hidden = false;
    showError(`${file.name}: ${body.error}`);
    return;
  }
  showError("");
  show(body);
  remember(body);
}

async function inspectAll(files) {
  for (const file of files) await inspect(file);  // one at a time: results arrive in order
}

$("files").addEventListener("change", (event) => {
  const files = Array.from(event.target.files);
  event.target.value = "";  // so that choosing the same file again inspects it again
  inspectAll(files);
});
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  inspectAll(event.dataTransfer.files);
});
keyInput.addEventListener("change", loadModel);
loadModel();
