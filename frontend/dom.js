// The two DOM helpers every page module uses: look an element up by id, and build one with a class and text.
// One copy here, so the pages and components agree on them.
"use strict";

// The element with this id, or null. Pages use it to find their elements and hand them to components.
export const $ = (id) => document.getElementById(id);

// A new <tag> with an optional class and text content.
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
