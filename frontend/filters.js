// Category filters, in the sticky bar above the results: chips, each with the count of the current results in
// that category (before the first search: of the catalogue). The categories the results have come first (most
// first), then the catalogue's (largest first); a filtered answer keeps the order it found, so a chip does not
// move under the finger that tapped it. Collapsed, the bar shows the first few, every category the results have
// and the chosen ones; "More" shows the rest. An optional setting that hides catch-all labels kept for data
// hygiene (shown only when the catalogue has such labels), and the active filters, each removable with one tap.
"use strict";

import { element } from "./dom.js";

const VISIBLE_CHIPS = 8;
export const HYGIENE_LABELS = new Set(["Not sure", "Other", "Skip"]);
const HIDE_HYGIENE_KEY = "visual-search-hide-catch-all";

export class CategoryFilters {
  // `elements` = {chips, moreButton, activeBar, activeList, clearButton, hygieneSetting, hygieneToggle,
  // afterRemove (the element that takes focus once the last active filter is removed)}. `selected` is a Set of
  // labels shared with the page; `onChange()` runs after the shopper changes it.
  constructor(elements, { selected, onChange }) {
    Object.assign(this, elements, { selected, onChange });
    this.catalogueCounts = [];   // [[label, count]] in the catalogue, largest first
    this.resultCounts = null;    // Map label -> count among the current results, or null before a search
    this.order = [];             // the labels in chip order
    this.expanded = false;
    const { hygieneToggle } = elements;
    hygieneToggle.checked = localStorage.getItem(HIDE_HYGIENE_KEY) !== "false";
    hygieneToggle.addEventListener("change", () => {
      localStorage.setItem(HIDE_HYGIENE_KEY, String(hygieneToggle.checked));
      const hidden = [...this.selected].filter((label) => this.hides(label));
      hidden.forEach((label) => this.selected.delete(label));
      this.render();
      if (hidden.length) this.onChange();
    });
    this.moreButton.addEventListener("click", () => { this.expanded = !this.expanded; this.render(); });
    this.clearButton.addEventListener("click", () => {
      this.selected.clear();
      this.render();
      this.onChange();
      this.afterRemove.focus({ preventScroll: true });
    });
  }

  hides(label) { return this.hygieneToggle.checked && HYGIENE_LABELS.has(label); }

  // What the catalogue holds: [[label, count]]. Sets the chips' order, and their counts until a search.
  setCatalogueCounts(labelCounts) {
    this.catalogueCounts = [...labelCounts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    this.render();
  }

  // The results on screen (or null for none): each chip then counts those in its category. `filtered`: the
  // answer was restricted to the chosen categories, so the chips keep their order.
  setResults(results, { filtered = false } = {}) {
    if (!results) { this.resultCounts = null; this.order = []; this.render(); return; }
    const counts = new Map();
    for (const result of results) if (result.label) counts.set(result.label, (counts.get(result.label) || 0) + 1);
    this.resultCounts = counts;
    if (!filtered) this.order = [...counts.keys()].sort((a, b) => counts.get(b) - counts.get(a) || a.localeCompare(b));
    this.render();
  }

  count(label) {
    if (!this.resultCounts) return (this.catalogueCounts.find(([name]) => name === label) || [null, 0])[1];
    return this.resultCounts.get(label) || 0;
  }

  // Puts the chips and the active-filter bar in line with `selected` (after a failed search restores it, too).
  render() {
    const catalogueOrder = this.catalogueCounts.map(([label]) => label);
    const labels = [...this.order, ...catalogueOrder.filter((label) => !this.order.includes(label))];
    for (const label of this.resultCounts ? this.resultCounts.keys() : []) if (!labels.includes(label)) labels.push(label);
    const shown = labels.filter((label) => !this.hides(label));
    const firstFew = new Set(catalogueOrder.filter((label) => !this.hides(label)).slice(0, VISIBLE_CHIPS));
    // The setting matters only where catch-all labels exist, and waits with the rest behind "More".
    const hasCatchAll = labels.some((label) => HYGIENE_LABELS.has(label));
    this.chips.closest(".control").hidden = shown.length === 0;
    const collapsed = !this.expanded && shown.length > VISIBLE_CHIPS;
    const inResults = (label) => !!this.resultCounts && this.resultCounts.has(label);
    const visible = collapsed
      ? shown.filter((label) => firstFew.has(label) || this.selected.has(label) || inResults(label))
      : shown;
    // Re-rendered chips are new elements: a chip that had focus keeps it (a search answer re-renders them).
    const focused = this.chips.contains(document.activeElement) ? document.activeElement.dataset.label : null;
    this.chips.replaceChildren(...visible.map((label) => this.chip(label, this.count(label))));
    const again = focused === null ? null : this.chips.querySelector(`[data-label="${CSS.escape(focused)}"]`);
    if (again) again.focus({ preventScroll: true });
    this.chips.classList.toggle("expanded", !collapsed);
    const hiddenCount = shown.length - visible.length;
    this.moreButton.hidden = shown.length <= VISIBLE_CHIPS && !hasCatchAll;
    this.moreButton.textContent = this.expanded ? "Fewer" : (hiddenCount ? `More (${hiddenCount})` : "More");
    this.moreButton.setAttribute("aria-expanded", String(this.expanded));
    this.hygieneSetting.hidden = !(hasCatchAll && this.expanded);
    this.renderActive();
  }

  chip(label, count) {
    const button = element("button", "chip");
    button.type = "button";
    button.dataset.label = label;
    button.setAttribute("aria-pressed", String(this.selected.has(label)));
    const scope = this.resultCounts ? "of the results shown" : "in the catalogue";
    button.append(element("span", "", label));
    // A category none of the results shown belong to has no number: choosing it still searches the catalogue.
    if (count > 0) {
      const number = element("span", "chip-count", String(count));
      number.title = `${count} ${scope}`;
      button.append(" ", number);
    }
    button.addEventListener("click", () => {
      if (this.selected.has(label)) this.selected.delete(label); else this.selected.add(label);
      this.render();
      this.onChange();
    });
    return button;
  }

  renderActive() {
    const labels = [...this.selected];
    this.activeBar.hidden = labels.length === 0;
    this.activeList.replaceChildren(...labels.map((label) => {
      const item = element("li");
      const remove = element("button", "chip active-filter");
      remove.type = "button";
      remove.dataset.label = label;
      // The name starts with what is shown ("Shoes"), then says what a tap does.
      remove.setAttribute("aria-label", `${label}, remove this filter`);
      remove.append(label, " ");
      const cross = element("span", "", "×");
      cross.setAttribute("aria-hidden", "true");
      remove.append(cross);
      remove.addEventListener("click", () => {
        this.selected.delete(label);
        this.render();
        this.onChange();
        this.afterRemove.focus({ preventScroll: true });
      });
      item.append(remove);
      return item;
    }));
  }
}
