// Hotspots: the object regions the server proposes on the query photo, as numbered, tappable markers. Tapping
// one searches that region (the same as drawing its box by hand); the chosen one stays marked.
"use strict";

// Hotspots are asked for after the results are on screen, in their own request (POST /regions with the same
// photo), so the shopper never waits for them. `onArrive(regions)` runs once they are known; a failure only
// means no hotspots for this photo.
export async function requestHotspots(api, searchBody, onArrive) {
  const query = {};
  for (const source of ["image", "url", "upload"]) if (searchBody[source]) query[source] = searchBody[source];
  let answer;
  try {
    answer = await api("/regions", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(query),
    });
  } catch (err) {
    console.warn("visual search: /regions failed:", err.detail || err.message);
    return;
  }
  onArrive(answer.regions || []);
}

export function renderHotspots(layer, regions, chosen, onPick) {
  layer.replaceChildren(...regions.map((region, index) => {
    const spot = document.createElement("button");
    spot.type = "button";
    spot.className = "hotspot";
    spot.dataset.index = String(index);
    const number = String(index + 1);
    spot.textContent = number;
    // Starts with the visible number, then says what a tap does.
    spot.setAttribute("aria-label", `${number}: search this item`);
    const on = !!chosen && sameRegion(region, chosen);
    spot.setAttribute("aria-pressed", String(on));
    // The marker sits at the region's centre; the outline shows the region itself while pressed or hovered.
    Object.assign(spot.style, {
      left: `${(region.x + region.w / 2) * 100}%`, top: `${(region.y + region.h / 2) * 100}%`,
    });
    const outline = document.createElement("span");
    outline.className = "hotspot-outline";
    outline.setAttribute("aria-hidden", "true");
    Object.assign(outline.style, {
      left: `${region.x * 100}%`, top: `${region.y * 100}%`, width: `${region.w * 100}%`, height: `${region.h * 100}%`,
    });
    spot.addEventListener("click", (event) => { event.stopPropagation(); onPick(region); });
    const wrap = document.createElement("span");
    wrap.className = "hotspot-wrap";
    wrap.append(spot, outline);
    return wrap;
  }));
  layer.hidden = regions.length === 0;
}

export function sameRegion(a, b) {
  return ["x", "y", "w", "h"].every((side) => Math.abs(a[side] - b[side]) < 1e-3);
}
