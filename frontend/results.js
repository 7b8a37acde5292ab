// The results grid: product cards (photo, title, brand, price, match tier, "More like this", "View product").
// A tap on the photo or title opens the detail view; "More like this" is a visible button, not a hover effect.
"use strict";

import { element } from "./dom.js";
import { formatPrice, productLink, productTitle, thumbnailUrl } from "./product.js";
import { matchTier, scoreNote } from "./tiers.js";

const THUMBNAIL_PX = 320;

// `shape` is the answer's shape (tiers.js answerShape: a score is read against it); `onOpen(result)` opens the
// detail view; `onMore(result)` searches for more like it.
export function renderResultCards(list, results, { shape, onOpen, onMore }) {
  list.replaceChildren(...results.map((result, position) => {
    const item = document.createElement("li");
    item.appendChild(resultCard(result, position, shape, onOpen, onMore));
    return item;
  }));
}

function resultCard(result, position, shape, onOpen, onMore) {
  const card = element("article", "result");
  card.dataset.key = result.key;
  card.dataset.score = String(result.score);
  card.dataset.label = result.label || "";
  const title = productTitle(result);
  const titleId = `result-title-${position}`;

  // One button holds the photo and the title, so its accessible name is exactly the title on screen.
  const open = element("button", "result-open");
  open.type = "button";
  const frame = element("span", "result-frame");
  const image = document.createElement("img");
  image.src = thumbnailUrl(result.url, THUMBNAIL_PX);
  image.alt = "";
  image.loading = position < 12 ? "eager" : "lazy";
  image.width = result.width;
  image.height = result.height;
  frame.append(image);
  const name = element("span", "result-title", title);
  name.id = titleId;
  open.append(frame, name);
  open.addEventListener("click", () => onOpen(result));

  const meta = element("div", "result-meta");
  if (result.brand) meta.append(element("span", "result-brand", result.brand));
  const price = formatPrice(result.price, result.currency);
  if (price) meta.append(element("span", "result-price", price));
  const tier = matchTier(result.score, shape);
  const badge = element("span", `result-tier tier-${tier.level}`, tier.name);
  badge.title = scoreNote(result.score);
  meta.append(badge);

  const actions = element("div", "result-actions");
  const more = element("button", "button small result-more", "More like this");
  more.type = "button";
  more.setAttribute("aria-describedby", titleId);
  more.addEventListener("click", () => onMore(result));
  actions.append(more);
  const link = productLink(result.product_url, "View product", "button small result-link");
  if (link) {
    link.setAttribute("aria-describedby", titleId);
    actions.append(link);
  }
  card.append(open, meta, actions);
  return card;
}
