// The results panel for one answer: the cards (weak matches hidden unless asked for), "Show weaker matches",
// "Show more", the empty-state sentence and the status line.
"use strict";

import { shopperMessage } from "./feedback.js";
import { renderResultCards } from "./results.js";
import { answerShape, isWeak } from "./tiers.js";

// `elements` = {list, showWeaker, showMore, emptyState, emptyText, status}. `response` may be null (nothing shown
// yet); `k` is what the shown search asked for, `maxK` the API's limit. Returns the results on screen.
export function renderResultsPanel(elements, { response, k, maxK, showWeak, filtered, error, onOpen, onMore }) {
  const all = response ? response.results : [];
  const shape = answerShape(all.map((result) => result.score));
  const strong = all.filter((result) => !isWeak(result.score, shape));
  const shown = showWeak ? all : strong;
  const weaker = all.length - strong.length;
  renderResultCards(elements.list, shown, { shape, onOpen, onMore });
  elements.showWeaker.hidden = showWeak || weaker === 0;
  elements.showWeaker.textContent = `Show weaker matches (${weaker})`;
  // More results can only be weaker than the weakest shown, so "Show more" waits until weak ones are shown.
  const mayHaveMore = !!response && all.length >= k && k < maxK;
  elements.showMore.hidden = !(mayHaveMore && (showWeak || weaker === 0));
  elements.emptyState.hidden = shown.length > 0;
  elements.emptyText.textContent = emptyText(response, all.length, filtered, error);
  elements.status.textContent = response ? statusText(shown.length, all.length) : "";
  return shown;
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
