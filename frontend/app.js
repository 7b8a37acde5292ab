// Visual search web UI: one query (a photo, an image URL or an indexed key), an optional crop, a results grid.
// Plain ES modules, no build step. The API base URL comes from config.json ("" = same origin), so the same
// files run against the local server and against API Gateway.
"use strict";

import { api, client, loadConfig, setApiKey } from "./api.js";
import { CropBox } from "./crop.js";
import { renderChips, renderResultCards } from "./results.js";

const $ = (id) => document.getElementById(id);
const MAX_SIDE_PX = 2048;            // larger photos are downscaled before upload: faster, and under Lambda's 6 MB
const MAX_SEND_BYTES = 4 * 1024 * 1024;

const state = {
  query: null,          // {kind: "image", blob} | {kind: "url", url} | {kind: "key", key, imageUrl}
  labels: new Set(),
  searchSeq: 0,
  revealResults: false, // after a new query on a narrow screen, scroll the results into view
};

const crop = new CropBox({
  stage: $("preview-stage"), layer: $("crop-layer"), box: $("crop-box"),
  selectButton: $("crop-button"), clearButton: $("clear-crop"),
  isActive: () => !!state.query, onSearch: () => search(),
});

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
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function setQuery(query, previewSrc, caption) {
  const previous = $("preview-image").src;
  if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
  state.query = query;
  crop.set(null);
  $("preview-image").src = previewSrc;
  $("preview-caption-text").textContent = `${caption} · drag on it to search a region.`;
  $("drop-zone").dataset.state = "preview";
  $("drop-empty").hidden = true;
  $("preview").hidden = false;
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
  const region = crop.value;
  if (query.kind === "key" && !region) { body.key = query.key; return body; }
  if (query.kind === "url") body.url = query.url;
  else if (query.kind === "image") body.image = await blobToDataUrl(query.blob);
  else {
    // A region of a catalogue image: send its pixels, since a key search cannot be cropped.
    const response = await fetch(query.imageUrl);
    if (!response.ok) throw new Error("Could not load that image to search a region of it.");
    body.image = await blobToDataUrl(await response.blob());
  }
  if (region) body.crop = region;
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
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (seq !== state.searchSeq) return;     // a newer search has started; drop this answer
    showResults(response);
    if (state.revealResults) {
      state.revealResults = false;
      $("results-heading").scrollIntoView({ behavior: "smooth", block: "start" });
    }
  } catch (err) {
    if (seq !== state.searchSeq) return;
    showResults(null);
    showError(err.message);
  } finally {
    if (seq === state.searchSeq) setLoading(false);
  }
}

// ---- Page state ------------------------------------------------------------------------------------------

function showResults(response) {
  const results = response ? response.results : [];
  renderResultCards($("results"), results, setKeyQuery);
  $("empty-state").hidden = results.length > 0;
  $("empty-state").firstElementChild.textContent = response
    ? "No matching items. Try removing a category filter."
    : "Results appear here. Click one to find more like it.";
  $("status").textContent = response
    ? `${results.length} similar item${results.length === 1 ? "" : "s"} in ${Math.round(response.took_ms)} ms`
    : "";
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
  state.searchSeq++;
  crop.set(null);
  $("preview").hidden = true;
  $("drop-empty").hidden = false;
  $("drop-zone").dataset.state = "empty";
  $("url-input").value = "";
  showResults(null);
  showError(null);
  setLoading(false);
  $("status").textContent = "";
  $("choose-button").focus();
}

async function loadStats() {
  try {
    const stats = await api("/stats");
    $("index-info").textContent = `${stats.count.toLocaleString()} items indexed`;
    const labelCounts = Object.entries(stats.labels || {}).sort((a, b) => b[1] - a[1]);
    renderChips($("chips"), labelCounts, state.labels, search);
  } catch (err) {
    $("index-info").textContent = "";
  }
}

// ---- Wiring ----------------------------------------------------------------------------------------------

function firstImageFile(dataTransfer) {
  if (!dataTransfer) return null;
  const files = [...(dataTransfer.files || [])];
  return files.find((file) => file.type.startsWith("image/")) || files[0] || null;
}

function isHttpUrl(text) { return /^https?:\/\/\S+$/i.test(text); }

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
    const text = (event.dataTransfer.getData("text/uri-list") || event.dataTransfer.getData("text/plain")).trim();
    if (file) setImageQuery(file);
    else if (isHttpUrl(text)) { $("url-input").value = text; setUrlQuery(text); }
  });
  document.addEventListener("paste", (event) => {
    const file = firstImageFile(event.clipboardData);
    if (file) { event.preventDefault(); setImageQuery(file); return; }
    const text = event.clipboardData ? event.clipboardData.getData("text/plain").trim() : "";
    if (isHttpUrl(text) && document.activeElement !== $("url-input")) {
      event.preventDefault();
      $("url-input").value = text;
      setUrlQuery(text);
    }
  });
  $("url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("url-input").value.trim();
    if (!isHttpUrl(url)) { showError("Enter an image address starting with http:// or https://."); return; }
    setUrlQuery(url);
  });
  $("k-select").addEventListener("change", search);
  $("reset-button").addEventListener("click", reset);
  $("api-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("api-key-input").value.trim());
    $("api-key-form").hidden = true;
    loadStats();
    search();
  });
  $("preview-image").addEventListener("error", () => {
    $("preview-caption-text").textContent = "This file cannot be shown as an image.";
  });
}

async function main() {
  client.onUnauthorized = () => { $("api-key-form").hidden = false; };
  setupSources();
  await loadConfig();
  if (client.apiKeyRequired && !client.apiKey) $("api-key-form").hidden = false;
  await loadStats();
  document.body.dataset.ready = "true";
}

main();
