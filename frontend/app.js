// Visual search web UI: one query (a photo, an image URL or an indexed key), an optional crop, a results grid.
// Plain browser JavaScript, no build step. The API base URL comes from config.json ("" = same origin), so the
// same files run against the local server and against API Gateway.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_SIDE_PX = 2048;            // larger photos are downscaled before upload: faster, and under Lambda's 6 MB
const MAX_SEND_BYTES = 4 * 1024 * 1024;
const MIN_CROP = 0.04;               // a drag shorter than this (fraction of the photo) is a click, not a crop

const state = {
  apiBase: "",
  apiKey: sessionStorage.getItem("visual-search-api-key") || "",
  query: null,        // {kind: "image", blob} | {kind: "url", url} | {kind: "key", key, imageUrl}
  crop: null,         // {x, y, w, h} as fractions of the shown photo
  labels: new Set(),
  searchSeq: 0,
  revealResults: false, // after a new query on a narrow screen, scroll the results into view
};

// ---- API -------------------------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.apiKey) headers["X-API-Key"] = state.apiKey;
  let response;
  try {
    response = await fetch(state.apiBase + path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new Error("Cannot reach the search service. Check your connection and try again.");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { /* a non-JSON error page */ }
  if (!response.ok) {
    if (response.status === 401) $("api-key-form").hidden = false;
    const message = body && body.error && body.error.message;
    const error = new Error(message || `The search service answered ${response.status}.`);
    error.status = response.status;
    throw error;
  }
  return body;
}

async function loadConfig() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (response.ok) {
      const config = await response.json();
      state.apiBase = String(config.apiBase || "").replace(/\/+$/, "");
      if (config.apiKeyRequired && !state.apiKey) $("api-key-form").hidden = false;
    }
  } catch (err) { /* no config.json: same origin */ }
}

async function loadStats() {
  try {
    const stats = await api("/stats");
    const labels = Object.entries(stats.labels || {}).sort((a, b) => b[1] - a[1]);
    $("index-info").textContent = `${stats.count.toLocaleString()} items indexed`;
    renderChips(labels);
  } catch (err) {
    $("index-info").textContent = "";
  }
}

// ---- Query sources ---------------------------------------------------------------------------------------

async function setImageQuery(file) {
  if (!file) return;
  const blob = await shrinkIfLarge(file);
  setQuery({ kind: "image", blob }, URL.createObjectURL(blob), "Your photo");
}

function setUrlQuery(url) {
  setQuery({ kind: "url", url }, url, "Image from the web");
}

function setKeyQuery(result) {
  setQuery({ kind: "key", key: result.key, imageUrl: result.url }, result.url,
           `More like ${result.label ? result.label.toLowerCase() + " " : ""}${result.key}`);
}

function setQuery(query, previewSrc, caption) {
  const previous = $("preview-image").src;
  if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
  state.query = query;
  state.crop = null;
  $("preview-image").src = previewSrc;
  $("preview-caption-text").textContent = `${caption} · drag on it to search a region.`;
  $("drop-zone").dataset.state = "preview";
  $("drop-empty").hidden = true;
  $("preview").hidden = false;
  renderCrop();
  state.revealResults = window.matchMedia("(max-width: 900px)").matches;
  search();
}

async function shrinkIfLarge(file) {
  // Only big photos are re-encoded: a small one is sent byte for byte, so it matches its indexed copy exactly.
  if (!file.type.startsWith("image/") || typeof createImageBitmap !== "function") return file;
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (err) { return file; }
  const side = Math.max(bitmap.width, bitmap.height);
  if (side <= MAX_SIDE_PX && file.size <= MAX_SEND_BYTES) { bitmap.close(); return file; }
  const scale = Math.min(1, MAX_SIDE_PX / side);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(blob || file), "image/jpeg", 0.9));
}

function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error("Could not read the file."));
    reader.readAsDataURL(blob);
  });
}

// ---- Search ----------------------------------------------------------------------------------------------

async function buildRequest() {
  const body = { k: Number($("k-select").value) };
  if (state.labels.size) body.filters = { label: [...state.labels] };
  const query = state.query;
  if (query.kind === "key" && !state.crop) { body.key = query.key; return body; }
  if (query.kind === "url") body.url = query.url;
  else if (query.kind === "image") body.image = await blobToDataUrl(query.blob);
  else {
    // A region of a catalogue image: send its pixels, since a key search cannot be cropped.
    const response = await fetch(query.imageUrl);
    if (!response.ok) throw new Error("Could not load that image to search a region of it.");
    body.image = await blobToDataUrl(await response.blob());
  }
  if (state.crop) body.crop = roundCrop(state.crop);
  return body;
}

async function search() {
  if (!state.query) return;
  const seq = ++state.searchSeq;
  showError(null);
  setLoading(true);
  try {
    const body = await buildRequest();
    const response = await api("/search", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (seq !== state.searchSeq) return;     // a newer search has started; drop this answer
    renderResults(response);
    if (state.revealResults) {
      state.revealResults = false;
      $("results-heading").scrollIntoView({ behavior: "smooth", block: "start" });
    }
  } catch (err) {
    if (seq !== state.searchSeq) return;
    renderResults(null);
    showError(err.message);
  } finally {
    if (seq === state.searchSeq) setLoading(false);
  }
}

function roundCrop(crop) {
  const r = (v) => Math.round(v * 10000) / 10000;
  const x = r(crop.x), y = r(crop.y);
  return { x, y, w: Math.min(r(crop.w), r(1 - x)), h: Math.min(r(crop.h), r(1 - y)) };
}

// ---- Rendering -------------------------------------------------------------------------------------------

function renderResults(response) {
  const list = $("results");
  list.replaceChildren();
  const results = response ? response.results : [];
  $("empty-state").hidden = results.length > 0;
  if (response && !results.length) {
    $("empty-state").firstElementChild.textContent = "No matching items. Try removing a category filter.";
  }
  results.forEach((result, position) => list.appendChild(resultCard(result, position)));
  $("status").textContent = response
    ? `${results.length} similar item${results.length === 1 ? "" : "s"} in ${Math.round(response.took_ms)} ms`
    : "";
}

function resultCard(result, position) {
  const item = document.createElement("li");
  const button = document.createElement("button");
  button.type = "button";
  button.className = "result";
  button.dataset.key = result.key;
  const label = result.label || "Unlabelled";
  button.setAttribute("aria-label", `${label}, similarity ${result.score.toFixed(2)}. Find more like this.`);
  const image = document.createElement("img");
  image.src = result.url;
  image.alt = "";
  image.loading = position < 12 ? "eager" : "lazy";
  image.width = result.width;
  image.height = result.height;
  const meta = document.createElement("span");
  meta.className = "result-meta";
  const name = document.createElement("span");
  name.className = "result-label";
  name.textContent = label;
  const score = document.createElement("span");
  score.className = "result-score";
  score.textContent = result.score.toFixed(3);
  score.style.setProperty("--score", Math.max(0, Math.min(1, result.score)));
  meta.append(name, score);
  const more = document.createElement("span");
  more.className = "result-more";
  more.textContent = "More like this";
  button.append(image, meta, more);
  button.addEventListener("click", () => { setKeyQuery(result); window.scrollTo({ top: 0, behavior: "smooth" }); });
  item.appendChild(button);
  return item;
}

function renderChips(labels) {
  const chips = $("chips");
  chips.replaceChildren();
  if (!labels.length) { chips.closest(".control").hidden = true; return; }
  chips.closest(".control").hidden = false;
  const all = chip("All", () => { state.labels.clear(); updateChips(); search(); });
  all.dataset.all = "true";
  chips.appendChild(all);
  for (const [label, count] of labels) {
    const button = chip(label, () => {
      if (state.labels.has(label)) state.labels.delete(label); else state.labels.add(label);
      updateChips();
      search();
    });
    button.dataset.label = label;
    button.title = `${count} items`;
    chips.appendChild(button);
  }
  updateChips();
}

function chip(text, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "chip";
  button.textContent = text;
  button.addEventListener("click", onClick);
  return button;
}

function updateChips() {
  for (const button of $("chips").children) {
    const on = button.dataset.all ? state.labels.size === 0 : state.labels.has(button.dataset.label);
    button.setAttribute("aria-pressed", String(on));
  }
}

function setLoading(loading) {
  $("results").setAttribute("aria-busy", String(loading));
  document.body.classList.toggle("is-loading", loading);
  if (loading) $("status").textContent = "Searching…";
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

function reset() {
  state.query = null;
  state.crop = null;
  state.searchSeq++;
  $("preview").hidden = true;
  $("drop-empty").hidden = false;
  $("drop-zone").dataset.state = "empty";
  $("url-input").value = "";
  renderResults(null);
  showError(null);
  setLoading(false);
  $("empty-state").hidden = false;
  $("empty-state").firstElementChild.textContent = "Results appear here. Click one to find more like it.";
  $("choose-button").focus();
}

// ---- Crop box (pointer: mouse, pen and touch; keyboard: arrows move, Shift+arrows resize) -----------------

function renderCrop() {
  const box = $("crop-box");
  const crop = state.crop;
  box.hidden = !crop;
  $("clear-crop").hidden = !crop;
  $("crop-button").hidden = !!crop;
  $("preview-stage").classList.toggle("has-crop", !!crop);
  if (!crop) return;
  Object.assign(box.style, {
    left: `${crop.x * 100}%`, top: `${crop.y * 100}%`, width: `${crop.w * 100}%`, height: `${crop.h * 100}%`,
  });
}

function setupCrop() {
  const layer = $("crop-layer");
  let start = null;
  const point = (event) => {
    const rect = layer.getBoundingClientRect();
    return {
      x: clamp((event.clientX - rect.left) / rect.width, 0, 1),
      y: clamp((event.clientY - rect.top) / rect.height, 0, 1),
    };
  };
  layer.addEventListener("pointerdown", (event) => {
    if (!state.query) return;
    event.preventDefault();
    layer.setPointerCapture(event.pointerId);
    start = point(event);
  });
  layer.addEventListener("pointermove", (event) => {
    if (!start) return;
    const end = point(event);
    state.crop = boxFrom(start, end);
    renderCrop();
  });
  const finish = (event) => {
    if (!start) return;
    const crop = boxFrom(start, point(event));
    start = null;
    if (crop.w < MIN_CROP || crop.h < MIN_CROP) { state.crop = null; renderCrop(); return; }
    state.crop = crop;
    renderCrop();
    search();
  };
  layer.addEventListener("pointerup", finish);
  layer.addEventListener("pointercancel", () => { start = null; });

  $("crop-box").addEventListener("keydown", (event) => {
    if (!state.crop) return;
    const step = event.altKey ? 0.01 : 0.04;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    if (event.key in moves) {
      event.preventDefault();
      const [dx, dy] = moves[event.key];
      const c = state.crop;
      if (event.shiftKey) {
        c.w = clamp(c.w + dx, MIN_CROP, 1 - c.x);
        c.h = clamp(c.h + dy, MIN_CROP, 1 - c.y);
      } else {
        c.x = clamp(c.x + dx, 0, 1 - c.w);
        c.y = clamp(c.y + dy, 0, 1 - c.h);
      }
      renderCrop();
    } else if (event.key === "Enter") {
      event.preventDefault();
      search();
    } else if (event.key === "Delete" || event.key === "Backspace" || event.key === "Escape") {
      event.preventDefault();
      clearCrop();
    }
  });
  $("crop-button").addEventListener("click", () => {
    state.crop = { x: 0.2, y: 0.2, w: 0.6, h: 0.6 };
    renderCrop();
    $("crop-box").focus();
    search();
  });
  $("clear-crop").addEventListener("click", clearCrop);
}

function clearCrop() {
  state.crop = null;
  renderCrop();
  $("crop-button").focus();
  search();
}

function boxFrom(a, b) {
  return { x: Math.min(a.x, b.x), y: Math.min(a.y, b.y), w: Math.abs(a.x - b.x), h: Math.abs(a.y - b.y) };
}

function clamp(value, low, high) { return Math.min(high, Math.max(low, value)); }

// ---- Wiring ----------------------------------------------------------------------------------------------

function firstImageFile(dataTransfer) {
  if (!dataTransfer) return null;
  const files = [...(dataTransfer.files || [])];
  return files.find((file) => file.type.startsWith("image/")) || files[0] || null;
}

function setupSources() {
  $("choose-button").addEventListener("click", () => $("file-input").click());
  $("camera-button").addEventListener("click", () => $("camera-input").click());
  for (const id of ["file-input", "camera-input"]) {
    $(id).addEventListener("change", (event) => {
      setImageQuery(event.target.files[0]);
      event.target.value = "";   // choosing the same file again still triggers a search
    });
  }
  const zone = $("drop-zone");
  let dragDepth = 0;   // dragenter/dragleave also fire for child elements; count them to avoid flicker
  zone.addEventListener("dragenter", (event) => { event.preventDefault(); dragDepth++; zone.classList.add("dragging"); });
  zone.addEventListener("dragover", (event) => event.preventDefault());
  zone.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; zone.classList.remove("dragging"); } });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    zone.classList.remove("dragging");
    const file = firstImageFile(event.dataTransfer);
    if (file) setImageQuery(file);
    else {
      const url = event.dataTransfer.getData("text/uri-list") || event.dataTransfer.getData("text/plain");
      if (/^https?:\/\//i.test(url.trim())) { $("url-input").value = url.trim(); setUrlQuery(url.trim()); }
    }
  });
  document.addEventListener("paste", (event) => {
    const file = firstImageFile(event.clipboardData);
    if (file) { event.preventDefault(); setImageQuery(file); return; }
    const text = event.clipboardData ? event.clipboardData.getData("text/plain").trim() : "";
    if (/^https?:\/\/\S+$/i.test(text) && document.activeElement !== $("url-input")) {
      event.preventDefault();
      $("url-input").value = text;
      setUrlQuery(text);
    }
  });
  $("url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("url-input").value.trim();
    if (!/^https?:\/\//i.test(url)) { showError("Enter an image address starting with http:// or https://."); return; }
    setUrlQuery(url);
  });
  $("k-select").addEventListener("change", search);
  $("reset-button").addEventListener("click", reset);
  $("api-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.apiKey = $("api-key-input").value.trim();
    sessionStorage.setItem("visual-search-api-key", state.apiKey);
    $("api-key-form").hidden = true;
    loadStats();
    search();
  });
  $("preview-image").addEventListener("error", () => {
    $("preview-caption-text").textContent = "This file cannot be shown as an image.";
  });
}

async function main() {
  setupSources();
  setupCrop();
  await loadConfig();
  await loadStats();
  document.body.dataset.ready = "true";
}

main();
