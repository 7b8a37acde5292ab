// What a result says about its product: a display title, a price in its currency, a safe shop link.
"use strict";

// The shopper sees a title; a catalogue without one falls back to the category, then to a neutral word.
export function productTitle(item) {
  return (item.title || "").trim() || item.label || "Catalogue item";
}

// "€19.99", "$1,200.00", in the browser's locale; a price without a known currency is shown as a plain number.
export function formatPrice(price, currency) {
  if (price === null || price === undefined || !Number.isFinite(Number(price))) return "";
  if (currency) {
    try {
      return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(Number(price));
    } catch (err) { /* an unknown currency code: fall through to a plain number with the code */ }
  }
  const number = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(Number(price));
  return currency ? `${number} ${currency}` : number;
}

// Only http(s) links are followed; the server refuses others at index time, and this is the second lock.
export function safeProductUrl(url) {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch (err) { return null; }
}

export function productLink(url, text, className) {
  const href = safeProductUrl(url);
  if (!href) return null;
  const link = document.createElement("a");
  link.className = className;
  link.href = href;
  link.target = "_blank";
  link.rel = "noopener noreferrer";
  link.textContent = text;
  return link;
}

// A thumbnail of the server's image route at `width` px; other URLs (presigned S3 links) are used as they are.
export function thumbnailUrl(url, width) {
  if (!url || !url.startsWith("/images/")) return url;
  return `${url}${url.includes("?") ? "&" : "?"}w=${width}`;
}
