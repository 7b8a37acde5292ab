// Visual search web UI. What is on screen always belongs together: the photo, its region, the filters and the
// results shown are one "search" (a spec). A new search becomes the shown one only when its answer arrives; if it
// fails, the controls go back to the shown search and an error with Retry says what happened.
// Plain ES modules, no build step; the API base URL comes from config.json ("" = same origin).
"use strict";

import { api, apiError, client, loadConfig, setApiKey } from "./api.js";
import { captureFromCamera } from "./camera.js";
import { CropBox } from "./crop.js";
import { openDetail } from "./detail.js";
import { $ } from "./dom.js";
import { Feedback } from "./feedback.js";
import { CategoryFilters } from "./filters.js";
import { renderHotspots, requestHotspots } from "./hotspots.js";
import { PinnedQuery } from "./pinned_query.js";
import { productTitle, thumbnailUrl } from "./product.js";
import { renderResultsPanel } from "./results_panel.js";
import { setupSources } from "./sources.js";
import { answerShape, matchTier } from "./tiers.js";
import { sameQuestion, searchFromQueryString, searchToQueryString } from "./url_state.js";

const PAGE = 24;        // results per "Show more" (the most is client.limits.maxK, the server's)
const COLOUR_WEIGHT = 0.5;

const state = {
  shown: null,      // the search whose results are on screen: {query, crop, labels, colour, k}
  pending: null,    // the search in flight, if any
  response: null,   // the shown search's answer
  regions: [],      // object regions of the shown photo (hotspots)
  showWeak: false,
  labels: new Set(),
  searchSeq: 0,
  item: null,       // the key of the result open in the detail view (it is in the address too)
};

const crop = new CropBox({
  stage: $("preview-stage"), layer: $("crop-layer"), box: $("crop-box"),
  selectButton: $("crop-button"), clearButton: $("clear-crop"),
  isActive: () => !!(state.pending || state.shown), onSearch: () => refine({ crop: crop.value }),
});

const filters = new CategoryFilters({
  chips: $("chips"), moreButton: $("chips-more"), activeBar: $("active-filters"), activeList: $("active-filter-list"),
  clearButton: $("clear-filters"), hygieneSetting: $("catch-all-setting"), hygieneToggle: $("hide-catch-all"),
  afterRemove: $("results-heading"),
}, { selected: state.labels, onChange: () => refine({ labels: [...state.labels] }, { reveal: true }) });

const feedback = new Feedback({ toast: $("toast"), text: $("toast-text"), retry: $("toast-retry"), dismiss: $("toast-dismiss") });

const pinnedQuery = new PinnedQuery({ photo: $("preview-stage"), thumb: $("query-thumb"), image: $("query-thumb-image") });

const resultsPanel = {
  list: $("results"), showWeaker: $("show-weaker"), showMore: $("show-more"), emptyState: $("empty-state"),
  emptyText: $("empty-text"), status: $("status"),
};

// ---- Starting and refining searches ----------------------------------------------------------------------

// A new photo (or "more like this"): the region is dropped, and a new photo also drops the category filters.
function newSearch(query, { keepFilters = false } = {}) {
  if (query.kind !== "url") $("url-input").value = "";
  if (!keepFilters && state.labels.size) { state.labels.clear(); filters.render(); }
  crop.set(null);
  state.showWeak = false;
  run({ query, crop: null, labels: [...state.labels], colour: $("colour-toggle").checked, k: PAGE },
      { isNew: true, history: "push" });
}

// The same photo with another region, filter, colour setting or size. `reveal`: bring the results into view
// when they arrive (a filter was changed); `focusFrom`: focus the card at this position (the first new one).
// `history`: a refinement is a search of its own in the history ("push"); only growing the same search
// ("Show more") replaces its entry.
function refine(changes, { reveal = false, focusFrom = null, history = "push" } = {}) {
  const base = state.pending || state.shown;
  if (!base) return;
  run({ ...base, labels: [...state.labels], crop: crop.value, colour: $("colour-toggle").checked, ...changes },
      { isNew: false, reveal, focusFrom, history });
}

// `history`: "push" a new entry for this search, "replace" the current one, or "none" (Back/Forward got here).
async function run(spec, { isNew, reveal = false, focusFrom = null, history = "push" }) {
  const seq = ++state.searchSeq;
  state.pending = spec;
  showQuery(spec, { pending: true });
  setLoading(true);
  // Hotspots are asked for once per photo, after its first whole-photo search: not for every filter or region.
  const wantRegions = spec.query.kind !== "key" && !spec.crop && !(state.shown && state.shown.query === spec.query);
  try {
    const body = await buildRequest(spec);
    const response = await api("/search", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    if (seq !== state.searchSeq) return;     // a newer search has started; drop this answer
    if (isNew && state.shown && state.shown.query.previewSrc.startsWith("blob:")
        && state.shown.query.previewSrc !== spec.query.previewSrc) URL.revokeObjectURL(state.shown.query.previewSrc);
    if (wantRegions || isNew) state.regions = [];
    state.shown = spec;
    state.response = response;
    state.pending = null;
    feedback.hide();
    restore(spec);   // a retried search brings its own filters and region back with it
    renderResults();
    if (isNew) revealResults();
    else if (reveal) bringResultsIntoView();
    if (focusFrom !== null) focusCard(focusFrom);
    afterSearch(spec, response, history);
    // A kept photo is named by its id rather than sent again (a phone's upload is the slow part).
    const photo = response.upload ? { upload: response.upload } : body;
    if (wantRegions) requestHotspots(api, photo, (regions) => showHotspots(spec.query, regions));
  } catch (err) {
    if (seq !== state.searchSeq) return;
    state.pending = null;
    if (spec.colour && err.status === 422) err.code = "colour_refused";
    restore(state.shown);
    renderResults(err);
    feedback.error(err, err.code === "colour_refused" ? null
      : () => run(spec, { isNew, reveal, focusFrom, history }));
  } finally {
    if (seq === state.searchSeq) setLoading(false);
  }
}

async function buildRequest(spec) {
  const body = { k: spec.k };
  if (spec.labels.length) body.filters = { label: spec.labels };
  if (spec.colour) body.colour = COLOUR_WEIGHT;
  const query = spec.query;
  if (query.kind === "key" && !spec.crop) { body.key = query.key; return body; }
  if (query.kind === "upload") body.upload = query.upload;
  else if (query.kind === "url") body.url = query.url;
  else if (query.kind === "image") body.image = await blobToDataUrl(query.blob);
  else {
    // A region of a catalogue image: send its pixels, since a key search cannot be cropped.
    let response;
    try { response = await fetch(query.imageUrl); } catch (err) { response = null; }
    if (!response || !response.ok) throw apiError("region_load_failed", response ? response.status : 0, "image fetch failed");
    body.image = await blobToDataUrl(await response.blob());
  }
  if (spec.crop) body.crop = spec.crop;
  return body;
}

function blobToDataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(apiError("invalid_image", 0, "the file could not be read"));
    reader.readAsDataURL(blob);
  });
}

// ---- What is on screen ----------------------------------------------------------------------------------

// The controls as they are for `spec` (the shown search), or the empty page when nothing was shown yet.
function restore(spec) {
  state.labels.clear();
  (spec ? spec.labels : []).forEach((label) => state.labels.add(label));
  filters.render();
  crop.set(spec ? spec.crop : null);
  if (spec) $("colour-toggle").checked = spec.colour;
  if (spec && spec.query.kind === "url") $("url-input").value = spec.query.url;
  showQuery(spec, { pending: false });
}

function showQuery(spec, { pending }) {
  const hasQuery = !!spec;
  $("preview").hidden = !hasQuery;
  $("drop-empty").hidden = hasQuery;
  $("drop-zone").dataset.state = hasQuery ? "preview" : "empty";
  $("preview-stage").classList.toggle("pending", pending);
  if (!hasQuery) { renderHotspots($("hotspots"), [], null, pickRegion); pinnedQuery.set(null); return; }
  if ($("preview-image").getAttribute("src") !== spec.query.previewSrc) $("preview-image").src = spec.query.previewSrc;
  pinnedQuery.set(spec.query.previewSrc, spec.query.caption);
  const regionNote = spec.crop ? "the region you chose" : "tap an item or drag a box to search part of it";
  $("preview-caption-text").textContent = `${spec.query.caption} · ${regionNote}`;
  const regions = pending && spec.query !== (state.shown && state.shown.query) ? [] : state.regions;
  renderHotspots($("hotspots"), regions, spec.crop, pickRegion);
}

// Hotspots of `query` arrive after its results: they are shown if that photo is still the one on screen.
function showHotspots(query, regions) {
  if (!state.shown || state.shown.query !== query) return;
  state.regions = regions;
  showQuery(state.pending || state.shown, { pending: !!state.pending });
}

function pickRegion(region) {
  crop.set(region);
  refine({ crop: crop.value });
}

function renderResults(error) {
  const shown = renderResultsPanel(resultsPanel, {
    response: state.response, k: state.shown ? state.shown.k : PAGE, maxK: client.limits.maxK,
    showWeak: state.showWeak, filtered: state.labels.size > 0, error, onOpen: openResult, onMore: moreLikeThis,
  });
  filters.setResults(state.response ? shown : null, { filtered: !!state.shown && state.shown.labels.length > 0 });
}

// After a filter change: the top of the results (under the sticky bars) in view, wherever the page was.
function bringResultsIntoView() {
  const top = $("results").getBoundingClientRect().top;
  const covered = $("filter-bar").getBoundingClientRect().bottom;
  if (top >= covered && top < window.innerHeight * 0.6) return;
  const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  $("results-heading").scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
}

// The card at `position` (the first new one after "Show more" or "Show weaker"), focused and in view.
function focusCard(position) {
  const card = $("results").children[position];
  if (card) card.querySelector(".result-open").focus();
}

// Focus on the results' heading, and on a one-column (phone) layout scroll it to the top, under the top bar.
function revealResults() {
  const heading = $("results-heading");
  heading.focus({ preventScroll: true });
  if (window.matchMedia("(max-width: 900px)").matches) {
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    heading.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
  }
}

function setLoading(loading) {
  $("results").setAttribute("aria-busy", String(loading));
  document.body.classList.toggle("is-loading", loading);
  if (loading) {
    $("status").textContent = "Searching…";
    feedback.searching();
  }
}

// `record`: the detail view gets its own history entry (Back closes it); false when the address already says it.
function openResult(result, { record = true } = {}) {
  state.item = result.key;
  if (record) { pushedDetail = result.key; writeHistory("push"); }
  const shape = answerShape(state.response ? state.response.results.map((hit) => hit.score) : [result.score]);
  const dialog = openDetail(result, {
    onMoreLikeThis: () => moreLikeThis(result),
    match: { tier: matchTier(result.score, shape).name, score: result.score },
  });
  dialog.addEventListener("close", () => detailClosed(result.key));
}

function moreLikeThis(result) {
  newSearch({
    kind: "key", key: result.key, imageUrl: result.url, previewSrc: thumbnailUrl(result.url, 640),
    caption: `More like ${productTitle(result)}`,
  }, { keepFilters: true });
}

function reset({ history = "push" } = {}) {
  state.searchSeq++;
  state.shown = state.pending = state.response = null;
  state.regions = [];
  state.showWeak = false;
  $("url-input").value = "";
  restore(null);
  renderResults();
  setLoading(false);
  feedback.hide();
  $("status").textContent = "";
  $("choose-button").focus();
  closeDetail();
  writeHistory(history);
}

async function loadStats() {
  try {
    const stats = await api("/stats");
    $("index-info").textContent = `${stats.count.toLocaleString()} items in the catalogue`;
    filters.setCatalogueCounts(Object.entries(stats.labels || {}));
  } catch (err) {
    console.warn("visual search: /stats failed:", err.detail || err.message);
    $("index-info").textContent = "";
  }
}

// ---- The address: every search, its expansion and the open item have a URL (url_state.js) ----------------

let skipPop = false;       // the next popstate is our own history.back() after closing a detail view
let pushedDetail = null;   // the item whose detail view pushed the current entry (closing it goes back)

// The item whose detail view made the current history entry (on top of its search's entry), if any.
function openedByEntry() { return (history.state && history.state.detail) || null; }

// After a search is shown: note the id the server kept an uploaded photo under, open the item the address asked
// for (once), and write the address.
function afterSearch(spec, response, history) {
  if (spec.query.kind === "image" && response.upload) spec.query.upload = response.upload;
  const wanted = spec.item;
  delete spec.item;   // a later refinement of this search must not reopen it
  const result = wanted && response.results.find((candidate) => candidate.key === wanted);
  if (result) openResult(result, { record: false });
  writeHistory(history);
}

// The address of the shown search, or null when it has none (a photo the server did not keep).
function addressOf(spec) {
  if (!spec) return null;
  const q = spec.query;
  const query = q.kind === "key" ? { kind: "key", key: q.key }
    : q.kind === "url" ? { kind: "url", url: q.url }
    : q.upload ? { kind: "upload", upload: q.upload } : null;
  if (!query) return null;
  return { query, crop: spec.crop, labels: spec.labels, colour: spec.colour, k: spec.k,
           showWeak: state.showWeak, item: state.item };
}

function writeHistory(mode) {
  if (mode === "none") return;
  const url = location.pathname + searchToQueryString(addressOf(state.shown), { defaultK: PAGE });
  const entry = { visualSearch: 1, detail: state.item && state.item === pushedDetail ? pushedDetail : null };
  if (mode === "push" && url !== location.pathname + location.search) history.pushState(entry, "", url);
  else history.replaceState(entry, "", url);
}

// Shows what the address says: at start (a reload, a shared link) and after Back or Forward.
function showAddress({ initial = false } = {}) {
  const target = searchFromQueryString(location.search, { defaultK: PAGE });
  if (!target) {
    if (!initial && (state.shown || state.pending)) reset({ history: "none" });
    else closeDetail();
    return;
  }
  const shown = addressOf(state.shown);
  if (!state.pending && shown && sameQuestion(target, shown) && target.k === state.shown.k) {
    if (state.showWeak !== target.showWeak) { state.showWeak = target.showWeak; renderResults(); }
    showItem(target.item);
    return;
  }
  closeDetail();
  state.showWeak = target.showWeak;
  const query = queryAt(target.query);
  const samePhoto = !!state.shown && query === state.shown.query;
  run({ query, crop: target.crop, labels: target.labels, colour: target.colour, k: target.k, item: target.item },
      { isNew: !samePhoto, history: initial ? "replace" : "none" });
}

// The query an address names: the shown one when it is the same photo (its preview and hotspots stay).
function queryAt(query) {
  const shown = addressOf(state.shown);
  if (shown && shown.query.kind === query.kind && shown.query[query.kind] === query[query.kind]) return state.shown.query;
  if (query.kind === "key") {
    const imageUrl = `${client.apiBase}/images/${query.key.split("/").map(encodeURIComponent).join("/")}`;
    return { kind: "key", key: query.key, imageUrl, previewSrc: thumbnailUrl(imageUrl, 640), caption: "More like this item" };
  }
  if (query.kind === "url") return { kind: "url", url: query.url, previewSrc: query.url, caption: "Photo from the web" };
  return { kind: "upload", upload: query.upload, previewSrc: `${client.apiBase}/shared-uploads/${query.upload}`,
           caption: "Shared photo" };
}

function showItem(key) {
  if (key === state.item) return;
  closeDetail();
  const result = key && state.response && state.response.results.find((candidate) => candidate.key === key);
  if (result) openResult(result, { record: false });
}

function closeDetail() {
  state.item = null;   // first, so that detailClosed knows the page closed it
  const open = document.querySelector("dialog.detail[open]");
  if (open) open.close();
}

// The shopper closed the detail view: back to the entry it pushed, or the same address without the item.
function detailClosed(key) {
  if (state.item !== key) return;
  state.item = null;
  if (pushedDetail === key) { pushedDetail = null; skipPop = true; history.back(); }
  else writeHistory("replace");
}

// ---- Wiring ----------------------------------------------------------------------------------------------

function setup() {
  const cameraElements = {
    dialog: $("camera-dialog"), video: $("camera-video"), capture: $("camera-capture"), cancel: $("camera-cancel"),
  };
  setupSources({
    dropZone: $("drop-zone"), chooseButton: $("choose-button"), fileInput: $("file-input"),
    cameraButton: $("camera-button"), cameraInput: $("camera-input"), cameraNote: $("camera-note"),
    urlForm: $("url-form"), urlInput: $("url-input"), camera: () => captureFromCamera(cameraElements),
  }, {
    limits: () => client.limits,
    onImage: (blob) => newSearch({ kind: "image", blob, previewSrc: URL.createObjectURL(blob), caption: "Your photo" }),
    onUrl: (url) => {
      $("url-input").value = url;
      newSearch({ kind: "url", url, previewSrc: url, caption: "Photo from the web" });
    },
    onBadUrl: () => feedback.error(apiError("bad_address", 0, "not an http(s) address")),
    onRefused: (err) => feedback.error(err),
  });
  $("show-more").addEventListener("click", () => {
    refine({ k: Math.min(client.limits.maxK, state.shown.k + PAGE) },
           { focusFrom: $("results").children.length, history: "replace" });
  });
  $("show-weaker").addEventListener("click", () => {
    state.showWeak = true;
    writeHistory("replace");
    const before = $("results").children.length;
    renderResults();
    focusCard(before);
  });
  $("query-thumb").addEventListener("click", () => pinnedQuery.reveal());
  $("colour-toggle").addEventListener("change", () => refine({ colour: $("colour-toggle").checked }));
  $("reset-button").addEventListener("click", () => reset());
  window.addEventListener("popstate", () => {
    if (skipPop) { skipPop = false; return; }
    pushedDetail = openedByEntry();
    showAddress();
  });
  $("api-key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey($("api-key-input").value.trim());
    $("api-key-form").hidden = true;
    loadStats();
    refine({}, { history: "replace" });
  });
  $("preview-image").addEventListener("error", () => {
    if (!$("preview").hidden) $("preview-caption-text").textContent = "This photo cannot be shown here.";
  });
}

async function main() {
  client.onUnauthorized = () => { $("api-key-form").hidden = false; };
  setup();
  await loadConfig();
  if (client.apiKeyRequired && !client.apiKey) $("api-key-form").hidden = false;
  await loadStats();
  pushedDetail = openedByEntry();   // a reload keeps the entry's state
  showAddress({ initial: true });
  document.body.dataset.ready = "true";
}

main();
