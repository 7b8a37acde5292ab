// What the address bar says about a page: the search shown (its query, region, filters, colour, how far it is
// expanded, the item open in the detail view) and the catalogue's page and filter. Pure functions between a
// state object and a query string, so a reload, Back/Forward and a copied link all rebuild the same page.
//
// Search page:   ?key=K | ?url=U | ?upload=SHA256, then crop=x,y,w,h  label=L (repeated)  colour=1  k=N
//                weak=1 (weaker matches shown)  item=K (the detail view of that result)
// Catalogue:     ?page=N  label=L  similar=K ("more like" a catalogue item, shown from page N)
"use strict";

const MAX_K = 100;
const UPLOAD_ID = /^[0-9a-f]{64}$/;
const QUERY_KINDS = ["key", "url", "upload"];

// {query: {kind, key|url|upload}, crop, labels, colour, k, showWeak, item} -> "?key=..." ("" for no search).
// `defaultK` is left out of the address, so the common case stays short.
export function searchToQueryString(search, { defaultK } = {}) {
  if (!search || !search.query) return "";
  const params = new URLSearchParams();
  const { kind } = search.query;
  if (!QUERY_KINDS.includes(kind)) return "";
  params.set(kind, search.query[kind]);
  if (search.crop) params.set("crop", ["x", "y", "w", "h"].map((side) => round(search.crop[side])).join(","));
  for (const label of search.labels || []) params.append("label", label);
  if (search.colour) params.set("colour", "1");
  if (search.k && search.k !== defaultK) params.set("k", String(search.k));
  if (search.showWeak) params.set("weak", "1");
  if (search.item) params.set("item", search.item);
  return `?${params}`;
}

// The inverse; null when the address names no search (or names it in a way this page never writes).
export function searchFromQueryString(queryString, { defaultK } = {}) {
  const params = new URLSearchParams(queryString);
  const named = QUERY_KINDS.filter((kind) => params.get(kind));
  if (named.length !== 1) return null;
  const kind = named[0];
  const value = params.get(kind);
  if (kind === "upload" && !UPLOAD_ID.test(value)) return null;
  if (kind === "url" && !/^https?:\/\/\S+$/i.test(value)) return null;
  const k = params.has("k") ? Number(params.get("k")) : defaultK;
  return {
    query: { kind, [kind]: value },
    crop: parseCrop(params.get("crop")),
    labels: [...new Set(params.getAll("label").filter(Boolean))],
    colour: params.get("colour") === "1",
    k: Number.isInteger(k) && k >= 1 && k <= MAX_K ? k : defaultK,
    showWeak: params.get("weak") === "1",
    item: params.get("item") || null,
  };
}

// Whether two searches ask the server the same question (expansion and the open item aside).
export function sameQuestion(a, b) {
  const strip = (search) => search && searchToQueryString({ ...search, k: 0, showWeak: false, item: null });
  return !!a && !!b && strip(a) === strip(b);
}

// {page (1-based), label, similar} -> "?page=2&label=Shoes" ("" for the first page of everything).
export function catalogueToQueryString({ page = 1, label = null, similar = null } = {}) {
  const params = new URLSearchParams();
  if (similar) params.set("similar", similar);
  if (page > 1) params.set("page", String(page));
  if (label) params.set("label", label);
  const text = params.toString();
  return text ? `?${text}` : "";
}

export function catalogueFromQueryString(queryString) {
  const params = new URLSearchParams(queryString);
  const page = Number(params.get("page") || "1");
  return {
    page: Number.isInteger(page) && page >= 1 ? page : 1,
    label: params.get("label") || null,
    similar: params.get("similar") || null,
  };
}

function parseCrop(text) {
  if (!text) return null;
  const parts = text.split(",").map(Number);
  if (parts.length !== 4 || !parts.every(Number.isFinite)) return null;
  const [x, y, w, h] = parts;
  const fits = x >= 0 && y >= 0 && w > 0 && h > 0 && x + w <= 1.0001 && y + h <= 1.0001;
  return fits ? { x, y, w, h } : null;
}

function round(value) { return String(Math.round(value * 10000) / 10000); }
