// Rendering the results grid (each card a button that asks for "more like this") and the label filter chips.
"use strict";

export function renderResultCards(list, results, onPick) {
  list.replaceChildren(...results.map((result, position) => {
    const item = document.createElement("li");
    item.appendChild(resultCard(result, position, onPick));
    return item;
  }));
}

function resultCard(result, position, onPick) {
  const button = element("button", "result");
  button.type = "button";
  button.dataset.key = result.key;
  const label = result.label || "Unlabelled";
  button.setAttribute("aria-label", `${label}, similarity ${result.score.toFixed(2)}. Find more like this.`);
  const image = document.createElement("img");
  image.src = result.url;
  image.alt = "";
  image.loading = position < 12 ? "eager" : "lazy";
  image.width = result.width;
  image.height = result.height;
  const meta = element("span", "result-meta");
  meta.append(element("span", "result-label", label), element("span", "result-score", result.score.toFixed(3)));
  button.append(image, meta, element("span", "result-more", "More like this"));
  button.addEventListener("click", () => onPick(result));
  return button;
}

// Chips toggle labels in `selected` (a Set); "All" clears it. `onChange` runs after every toggle.
export function renderChips(container, labelCounts, selected, onChange) {
  container.replaceChildren();
  const control = container.closest(".control");
  control.hidden = !labelCounts.length;
  if (!labelCounts.length) return;
  const all = chip("All", () => { selected.clear(); changed(); });
  all.dataset.all = "true";
  container.appendChild(all);
  for (const [label, count] of labelCounts) {
    const button = chip(label, () => {
      if (selected.has(label)) selected.delete(label); else selected.add(label);
      changed();
    });
    button.dataset.label = label;
    button.title = `${count} item${count === 1 ? "" : "s"}`;
    container.appendChild(button);
  }
  function changed() { updateChips(container, selected); onChange(); }
  updateChips(container, selected);
}

function updateChips(container, selected) {
  for (const button of container.children) {
    const on = button.dataset.all ? selected.size === 0 : selected.has(button.dataset.label);
    button.setAttribute("aria-pressed", String(on));
  }
}

function chip(text, onClick) {
  const button = element("button", "chip", text);
  button.type = "button";
  button.addEventListener("click", onClick);
  return button;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
