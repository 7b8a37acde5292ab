// Category filters: chips with their counts (the first few shown, the rest behind "More"), an optional setting
// that hides catch-all labels kept for data hygiene, and the bar of active filters beside the results, each
// removable with one tap.
"use strict";

const VISIBLE_CHIPS = 8;
export const HYGIENE_LABELS = new Set(["Not sure", "Other", "Skip"]);
const HIDE_HYGIENE_KEY = "visual-search-hide-catch-all";

export class CategoryFilters {
  // `selected` is a Set of labels shared with the page; `onChange()` runs after the shopper changes it.
  constructor({ chips, moreButton, activeBar, activeList, clearButton, hygieneToggle, selected, onChange }) {
    Object.assign(this, { chips, moreButton, activeBar, activeList, clearButton, hygieneToggle, selected, onChange });
    this.labelCounts = [];
    this.expanded = false;
    hygieneToggle.checked = localStorage.getItem(HIDE_HYGIENE_KEY) !== "false";
    hygieneToggle.addEventListener("change", () => {
      localStorage.setItem(HIDE_HYGIENE_KEY, String(hygieneToggle.checked));
      const hidden = [...this.selected].filter((label) => this.hides(label));
      hidden.forEach((label) => this.selected.delete(label));
      this.render();
      if (hidden.length) this.onChange();
    });
    moreButton.addEventListener("click", () => { this.expanded = !this.expanded; this.render(); });
    clearButton.addEventListener("click", () => { this.selected.clear(); this.render(); this.onChange(); });
  }

  hides(label) { return this.hygieneToggle.checked && HYGIENE_LABELS.has(label); }

  setCounts(labelCounts) {
    this.labelCounts = labelCounts;
    this.render();
  }

  // Puts the chips and the active-filter bar in line with `selected` (after a failed search restores it, too).
  render() {
    const shown = this.labelCounts.filter(([label]) => !this.hides(label));
    this.chips.closest(".control").hidden = shown.length === 0;
    const collapsed = !this.expanded && shown.length > VISIBLE_CHIPS;
    const visible = collapsed
      ? shown.filter(([label], index) => index < VISIBLE_CHIPS || this.selected.has(label))
      : shown;
    this.chips.replaceChildren(...visible.map(([label, count]) => this.chip(label, count)));
    this.moreButton.hidden = shown.length <= VISIBLE_CHIPS;
    this.moreButton.textContent = collapsed ? `More (${shown.length - visible.length})` : "Fewer";
    this.moreButton.setAttribute("aria-expanded", String(!collapsed));
    this.renderActive();
  }

  chip(label, count) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "chip";
    button.dataset.label = label;
    button.setAttribute("aria-pressed", String(this.selected.has(label)));
    const name = document.createElement("span");
    name.textContent = label;
    const number = document.createElement("span");
    number.className = "chip-count";
    number.textContent = String(count);
    button.append(name, " ", number);
    button.addEventListener("click", () => {
      if (this.selected.has(label)) this.selected.delete(label); else this.selected.add(label);
      this.render();
      this.onChange();
      const again = this.chips.querySelector(`[data-label="${CSS.escape(label)}"]`);
      if (again) again.focus();
    });
    return button;
  }

  renderActive() {
    const labels = [...this.selected];
    this.activeBar.hidden = labels.length === 0;
    this.activeList.replaceChildren(...labels.map((label) => {
      const item = document.createElement("li");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "chip active-filter";
      remove.dataset.label = label;
      // The name starts with what is shown ("Shoes"), then says what a tap does.
      remove.setAttribute("aria-label", `${label}, remove this filter`);
      remove.append(label, " ");
      const cross = document.createElement("span");
      cross.setAttribute("aria-hidden", "true");
      cross.textContent = "×";
      remove.append(cross);
      remove.addEventListener("click", () => {
        this.selected.delete(label);
        this.render();
        this.onChange();
        const heading = document.getElementById("results-heading");
        if (heading) heading.focus();
      });
      item.append(remove);
      return item;
    }));
  }
}
