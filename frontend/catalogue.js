// The catalogue page: pages of what the index holds, filtered by category, each item opening the same detail view
// as a search result. With the API key, an operator adds an item (photo, category, product fields) or deletes one;
// without a configured key the server refuses writes (403), so those controls are never shown.
"use strict";

import { api, client, loadConfig, setApiKey } from "./api.js";
import { openDetail } from "./detail.js";
import { $, element } from "./dom.js";
import { formatPrice, productTitle, thumbnailUrl } from "./product.js";
import { catalogueFromQueryString, catalogueToQueryString } from "./url_state.js";

const PAGE_SIZE = 48;
const state = { offset: 0, label: null, total: 0, similarTo: null };

async function start() {
  await loadConfig();
  client.onUnauthorized = () => showKeyForm("That key was not accepted. Enter the API key.");
  $("previous-page").addEventListener("click", async () => {
    if (!state.similarTo) state.offset = Math.max(0, state.offset - PAGE_SIZE);  // from "more like": back to the page
    const shown = refresh();
    writeAddress();
    if (await shown) showPageTop();
  });
  $("next-page").addEventListener("click", async () => {
    state.offset += PAGE_SIZE;
    const shown = refresh();
    writeAddress();
    if (await shown) showPageTop();
  });
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
  if (address.similar) showSimilar({ key: address.similar }, { record: false });  // its title is not in the address
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

// The new page from its top: the heading in view and focused (the pager that was pressed is at the bottom).
function showPageTop() {
  const heading = $("catalogue-heading");
  heading.scrollIntoView({ block: "start" });
  heading.focus({ preventScroll: true });
}

// Loads the current page; resolves to whether it could.
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
    $("pager").classList.toggle("single", $("previous-page").disabled && $("next-page").disabled);
    return true;
  } catch (error) {
    if (error.status !== 401) setStatus("catalogue-summary", error.message, "error");
    return false;
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

// Cards of the same shape whatever the photo or the product data: a square photo, two lines of title, a line
// for the brand and one for the price and key (empty lines keep their height; styles in catalogue.html).
function renderItems(items) {
  $("items").replaceChildren(...items.map((item) => {
    const entry = element("li");
    const open = element("button", "item-open");
    open.type = "button";
    open.dataset.key = item.key;
    const image = element("img");
    image.src = thumbnailUrl(item.url, 320);
    image.alt = "";
    image.loading = "lazy";
    const details = element("span", "item-details");
    details.append(
      element("span", "item-title", productTitle(item)),
      element("span", "item-brand", item.brand || ""),
      element("span", "item-price", formatPrice(item.price, item.currency)),
      element("span", "item-key", item.key),
    );
    open.append(image, details);
    open.addEventListener("click", () => openDetail(item, {
      onMoreLikeThis: () => showSimilar(item),
      onDelete: writesEnabled() ? deleteItem : undefined,
    }));
    entry.append(open);
    return entry;
  }));
}

async function showSimilar(item, { record = true } = {}) {
  try {
    const found = await api("/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ key: item.key, k: 24 }),
    });
    state.similarTo = item.key;
    if (record) writeAddress();
    renderItems(found.results);
    $("catalogue-summary").textContent = `${found.results.length} items most like “${productTitle(item)}”`;
    $("page-info").textContent = "";
    $("previous-page").disabled = false;  // "Previous" leads back to the catalogue page
    $("next-page").disabled = true;
    $("pager").classList.remove("single");
    showPageTop();
  } catch (error) {
    setStatus("catalogue-summary", error.message, "error");
  }
}

async function deleteItem(key) {
  try {
    await api(`/items/${key.split("/").map(encodeURIComponent).join("/")}`, { method: "DELETE" });
    if (state.offset >= state.total - 1) state.offset = Math.max(0, state.offset - PAGE_SIZE);
    const shown = refresh();
    writeAddress("replace");
    await shown;
    showOperatorStatus(`Deleted ${key}.`);
  } catch (error) {
    showOperatorStatus(`Could not delete ${key}: ${error.message}`, "error");
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

// The outcome of an operator's action, in view and focused: the dialog it came from has closed, and the card
// that opened it may be gone.
function showOperatorStatus(text, kind = "info") {
  setStatus("operator-status", text, kind);
  const status = $("operator-status");
  status.scrollIntoView({ block: "center" });
  status.focus({ preventScroll: true });
}

function setStatus(id, text, kind = "info") {
  $(id).textContent = text;
  $(id).dataset.kind = kind;
}

start();
