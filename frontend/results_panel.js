// The results panel for one answer: the cards (weak matches hidden unless asked for), "Show weaker matches",
// "Show more", the empty-state sentence and the status line.
"use strict";

import { $ } from "./dom.js";
import { shopperMessage } from "./feedback.js";
import { renderResultCards } from "./results.js";
import { isWeak } from "./tiers.js";


// `response` may be null (nothing shown yet); `k` is what the shown search asked for, `maxK` the API's limit.
export function renderResultsPanel({ response, k, maxK, showWeak, filtered, error, onOpen, onMore }) {
  const all = response ? response.results : [];
  const strong = all.filter((result) => !isWeak(result.score));
  const shown = showWeak ? all : strong;
  const weaker = all.length - strong.length;
  renderResultCards($("results"), shown, { onOpen, onMore });
  $("show-weaker").hidden = showWeak || weaker === 0;
  $("show-weaker").textContent = `Show weaker matches (${weaker})`;
  // More results can only be weaker than the weakest shown, so "Show more" waits until weak ones are shown.
  const mayHaveMore = !!response && all.length >= k && k < maxK;
  $("show-more").hidden = !(mayHaveMore && (showWeak || weaker === 0));
  $("empty-state").hidden = shown.length > 0;
  $("empty-text").textContent = emptyText(response, all.length, filtered, error);
  $("status").textContent = response ? statusText(shown.length, all.length) : "";
}

function emptyText(response, total, filtered, error) {
  if (!response) return error ? `That search didn't work. ${shopperMessage(error)}` : "Results appear here. Tap one to see it larger.";
  if (total === 0) return filtered ? "No matching items. Try removing a category filter." : "No matching items.";
  return "No close matches. Show weaker matches to see the nearest items.";
}

function statusText(shown, total) {
  const hidden = total - shown;
  return `${shown} match${shown === 1 ? "" : "es"}${hidden ? ` · ${hidden} weaker hidden` : ""}`;
}
