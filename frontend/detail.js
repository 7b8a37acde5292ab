// The product detail view: a modal dialog with a larger image, every attribute, "More like this" and the shop link.
// openDetail(item, options) — item is result-shaped ({key, url, label, attributes, title, price, currency,
// product_url, brand, width, height}); options = {onMoreLikeThis(key), onDelete(key) (the Delete button shows
// only when given), match: {tier, score} (optional)}. Used by the search page and the catalogue page alike.
"use strict";

import { element } from "./dom.js";
import { formatPrice, productLink, productTitle, thumbnailUrl } from "./product.js";

let openDialog = null;

export function openDetail(item, options = {}) {
  if (openDialog) openDialog.close();
  const opener = document.activeElement;
  const dialog = element("dialog", "detail");
  dialog.setAttribute("aria-labelledby", "detail-title");
  dialog.dataset.key = item.key;

  const image = element("img", "detail-image");
  image.src = thumbnailUrl(item.url, 800);
  image.alt = productTitle(item);
  if (item.width && item.height) { image.width = item.width; image.height = item.height; }

  const info = element("div", "detail-info");
  if (item.brand) info.append(element("p", "detail-brand", item.brand));
  const title = element("h2", "detail-title", productTitle(item));
  title.id = "detail-title";
  info.append(title);
  const price = formatPrice(item.price, item.currency);
  if (price) info.append(element("p", "detail-price", price));
  if (options.match && options.match.tier) {
    const match = element("p", "detail-match", options.match.tier);
    if (typeof options.match.score === "number") match.title = `Similarity score ${options.match.score.toFixed(3)}`;
    info.append(match);
  }
  info.append(attributeList(item));
  info.append(actions(item, options, () => dialog.close()));

  const close = element("button", "detail-close button small ghost", "Close");
  close.type = "button";
  close.addEventListener("click", () => dialog.close());

  const body = element("div", "detail-body");
  body.append(element("div", "detail-figure"), info);
  body.firstChild.append(image);
  dialog.append(close, body);
  // A click on the backdrop (outside the dialog's box) closes it, as people expect of a sheet.
  dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
  dialog.addEventListener("close", () => {
    dialog.remove();
    if (openDialog === dialog) openDialog = null;
    if (!dialog.dataset.handedOff && opener && document.contains(opener)) opener.focus();
  });
  document.body.append(dialog);
  openDialog = dialog;
  dialog.showModal();
  close.focus();
  return dialog;
}

function attributeList(item) {
  const list = element("dl", "detail-attributes");
  const rows = [];
  if (item.label) rows.push(["Category", item.label]);
  for (const [name, value] of Object.entries(item.attributes || {})) rows.push([humanName(name), String(value)]);
  for (const [name, value] of rows) list.append(element("dt", "", name), element("dd", "", value));
  list.hidden = rows.length === 0;
  return list;
}

function actions(item, options, close) {
  const row = element("div", "detail-actions");
  if (options.onMoreLikeThis) {
    const more = element("button", "button primary detail-more", "More like this");
    more.type = "button";
    more.addEventListener("click", () => { handOff(more); close(); options.onMoreLikeThis(item.key); });
    row.append(more);
  }
  const link = productLink(item.product_url, "View product", "button detail-link");
  if (link) {
    link.setAttribute("aria-label", `View product: ${productTitle(item)} (opens in a new tab)`);
    row.append(link);
  }
  if (options.onDelete) row.append(deleteControl(item, options.onDelete, close));
  return row;
}

// Deleting cannot be undone, so it asks once more in place instead of acting on the first tap.
function deleteControl(item, onDelete, close) {
  const wrap = element("div", "detail-delete");
  const start = element("button", "button danger", "Delete");
  start.type = "button";
  const confirmRow = element("div", "detail-confirm");
  confirmRow.hidden = true;
  const question = element("p", "", "Delete this item from the catalogue? This cannot be undone.");
  const yes = element("button", "button danger", "Yes, delete");
  yes.type = "button";
  const no = element("button", "button", "Keep it");
  no.type = "button";
  confirmRow.append(question, yes, no);
  start.addEventListener("click", () => { start.hidden = true; confirmRow.hidden = false; no.focus(); });
  no.addEventListener("click", () => { confirmRow.hidden = true; start.hidden = false; start.focus(); });
  yes.addEventListener("click", () => { handOff(yes); close(); onDelete(item.key); });
  wrap.append(start, confirmRow);
  return wrap;
}

// The action's handler decides where focus goes next, so closing must not pull it back to the opener.
function handOff(button) { button.closest("dialog").dataset.handedOff = "true"; }

function humanName(name) {
  const spaced = String(name).replace(/[_-]+/g, " ").trim();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
}
