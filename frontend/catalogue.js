// The catalogue page: pages of what the index holds, filtered by category, each item opening the same detail view
// as a search result. With the API key, an operator adds an item (photo, category, product fields) or deletes one;
// without a configured key the server refuses writes (403), so those controls are never shown.
"use strict";

import { api, client, loadConfig, setApiKey } from "./api.js";
import { openDetail } from "./detail.js";
import { $ } from "./dom.js";
import { productTitle, thumbnailUrl } from "./product.js";
import { catalogueFromQueryString, catalogueToQueryString } from "./url_state.js";

const PAGE_SIZE = 48;
const state = { offset: 0, label: null, total: 0, similarTo: null };

async function start() {
  await loadConfig();
  client.onUnauthorized = () => showKeyForm("That key was not accepted. Enter the API key.");
  $("previous-page").addEventListener("click", () => {
    if (!state.similarTo) state.offset = Math.max(0, state.offset - PAGE_SIZE);  // from "more like": back to the page
    refresh();
    writeAddress();
  });
  $("next-page").addEventListener("click", () => { state.offset += PAGE_SIZE; refresh(); writeAddress(); });
  window.addEventListener("popstate", showAddress);
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("api-key").value.trim());
    showAddress();
  });
  $("add-form").addEventListener("submit", addItem);
  if (client.apiKeyRequired && !client.apiKey) showKeyForm("Enter the API key to browse and change the catalogue.");
  else showAddress();
}

// The page, filter and "more like" item are in the address (url_state.js): Back, Forward, reload and a copied
// link show the same page. Each change the operator makes is an entry of its own.
function showAddress() {
  const address = catalogueFromQueryString(location.search);
  state.offset = (address.page - 1) * PAGE_SIZE;
  state.label = address.label;
  if (address.similar) showSimilar(address.similar, { record: false });
  else refresh();
}

function writeAddress(mode = "push") {
  const page = Math.floor(state.offset / PAGE_SIZE) + 1;
  const url = location.pathname + catalogueToQueryString({ page, label: state.label, similar: state.similarTo });
  if (mode === "push" && url !== location.pathname + location.search) history.pushState({ catalogue: 1 }, "", url);
  else history.replaceState({ catalogue: 1 }, "", url);
}

// Writes need a configured key (the server answers 403 without one) and this browser's copy of it.
function writesEnabled() { return client.apiKeyRequired && !!client.apiKey; }

function showKeyForm(message) {
  $("operator").hidden = !client.apiKeyRequired;
  $("key-form").hidden = false;
  $("add-form").hidden = true;
  setStatus("operator-status", message, "error");
}

function showOperatorControls() {
  $("operator").hidden = !writesEnabled();
  $("key-form").hidden = true;
  $("add-form").hidden = !writesEnabled();
}

async function refresh() {
  state.similarTo = null;
  const query = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE_SIZE) });
  if (state.label) query.set("label", state.label);
  try {
    const page = await api(`/items?${query}`);
    state.total = page.total;
    showOperatorControls();
    renderFilters(page.label_counts);
    renderItems(page.items);
    const first = page.items.length ? state.offset + 1 : 0;
    $("catalogue-summary").textContent =
      `Showing ${first}–${state.offset + page.items.length} of ${page.total}${state.label ? ` in ${state.label}` : ""}`;
    $("page-info").textContent = `Page ${Math.floor(state.offset / PAGE_SIZE) + 1} of ${Math.max(1, Math.ceil(page.total / PAGE_SIZE))}`;
    $("previous-page").disabled = state.offset === 0;
    $("next-page").disabled = state.offset + PAGE_SIZE >= page.total;
  } catch (error) {
    if (error.status !== 401) setStatus("catalogue-summary", error.message, "error");
  }
}

function renderFilters(counts) {
  const chips = [filterChip("All", null, null)];
  for (const [label, count] of Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))) {
    chips.push(filterChip(label, label, count));
  }
  $("label-filters").replaceChildren(...chips);
  $("label-options").replaceChildren(...Object.keys(counts).sort().map((label) => {
    const option = document.createElement("option");
    option.value = label;
    return option;
  }));
}

function filterChip(text, label, count) {
  const chip = document.createElement("button");
  chip.type = "button";
  chip.className = "button small";
  chip.textContent = count === null ? text : `${text} (${count})`;
  chip.dataset.label = label || "";
  chip.setAttribute("aria-pressed", String(state.label === label));
  chip.addEventListener("click", () => { state.label = label; state.offset = 0; refresh(); writeAddress(); });
  return chip;
}

function renderItems(items) {
  $("items").replaceChildren(...items.map((item) => {
    const entry = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.className = "item-open";
    open.dataset.key = item.key;
    const image = document.createElement("img");
    image.src = thumbnailUrl(item.url, 320);
    image.alt = "";
    image.loading = "lazy";
    const title = document.createElement("span");
    title.textContent = productTitle(item);
    const key = document.createElement("span");
    key.className = "item-key";
    key.textContent = item.key;
    open.append(image, title, key);
    open.addEventListener("click", () => openDetail(item, {
      onMoreLikeThis: showSimilar,
      onDelete: writesEnabled() ? deleteItem : undefined,
    }));
    entry.append(open);
    return entry;
  }));
}

async function showSimilar(key, { record = true } = {}) {
  try {
    const found = await api("/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key, k: 24 }),
    });
    state.similarTo = key;
    if (record) writeAddress();
    renderItems(found.results);
    $("catalogue-summary").textContent = `${found.results.length} items most like ${key}`;
    $("page-info").textContent = "";
    $("previous-page").disabled = false;  // "Previous" leads back to the catalogue page
    $("next-page").disabled = true;
  } catch (error) {
    setStatus("catalogue-summary", error.message, "error");
  }
}

async function deleteItem(key) {
  try {
    await api(`/items/${key.split("/").map(encodeURIComponent).join("/")}`, { method: "DELETE" });
    setStatus("operator-status", `Deleted ${key}.`);
    if (state.offset >= state.total - 1) state.offset = Math.max(0, state.offset - PAGE_SIZE);
    refresh();
    writeAddress("replace");
  } catch (error) {
    setStatus("operator-status", `Could not delete ${key}: ${error.message}`, "error");
  }
}

async function addItem(event) {
  event.preventDefault();
  const form = new FormData();
  const file = $("add-file").files[0];
  if (!file) return setStatus("operator-status", "Choose a photo to add.", "error");
  form.append("file", file, file.name);
  // The file's own name is the default key, as `visual-search index` would name it.
  form.append("key", $("add-key").value.trim() || file.name);
  for (const [id, name] of [["add-label", "label"], ["add-title", "title"], ["add-brand", "brand"],
                            ["add-price", "price"], ["add-currency", "currency"], ["add-url", "product_url"]]) {
    const value = $(id).value.trim();
    if (value) form.append(name, name === "currency" ? value.toUpperCase() : value);
  }
  $("add-button").disabled = true;
  setStatus("operator-status", "Adding…");
  try {
    const item = await api("/items", { method: "POST", body: form });
    // On AWS the photo is only stored (202 with a status); the bucket's event indexes it a few seconds later.
    setStatus("operator-status", item.status
      ? `Stored ${item.key}; it appears in the catalogue once it has been indexed (usually within a minute).`
      : `Added ${item.key}.`);
    $("add-form").reset();
    refresh();
  } catch (error) {
    setStatus("operator-status", `Could not add the photo: ${error.message}`, "error");
  } finally {
    $("add-button").disabled = false;
  }
}

function setStatus(id, text, kind = "info") {
  $(id).textContent = text;
  $(id).dataset.kind = kind;
}

start();
