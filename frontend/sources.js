// Where a query photo comes from: the file picker, the live camera, a drop anywhere on the page, a paste, or an
// image address. Each calls onImage(blob) or onUrl(url); nothing here searches by itself.
"use strict";

import { captureFromCamera } from "./camera.js";
import { $ } from "./dom.js";

const MAX_SIDE_PX = 2048;            // larger photos are downscaled before upload: faster, and under Lambda's 6 MB
const MAX_SEND_BYTES = 4 * 1024 * 1024;

export function setupSources({ onImage, onUrl, onBadUrl }) {
  const takeImage = async (file) => { if (file) onImage(await shrinkIfLarge(file)); };
  $("choose-button").addEventListener("click", () => $("file-input").click());
  $("camera-button").addEventListener("click", async () => {
    try {
      const blob = await captureFromCamera();
      if (blob) onImage(blob);
    } catch (err) {
      // No live camera (none, refused, or an insecure page): say so, and let the device offer what it has.
      const note = $("camera-note");
      note.textContent = err.reason === "not-allowed"
        ? "Camera access was not allowed. Pick a photo instead, or allow the camera in your browser's settings."
        : "No camera is available here. Pick a photo instead.";
      note.hidden = false;
      console.info("visual search: live camera unavailable:", err.message);
      $("camera-input").click();
    }
  });
  for (const id of ["file-input", "camera-input"]) {
    $(id).addEventListener("change", (event) => {
      takeImage(event.target.files[0]);
      event.target.value = "";   // choosing the same file again still triggers a search
    });
  }
  setupDropAnywhere(takeImage, onUrl);
  document.addEventListener("paste", (event) => {
    const file = firstImageFile(event.clipboardData);
    if (file) { event.preventDefault(); takeImage(file); return; }
    const text = event.clipboardData ? event.clipboardData.getData("text/plain").trim() : "";
    if (isHttpUrl(text) && document.activeElement !== $("url-input")) {
      event.preventDefault();
      onUrl(text);
    }
  });
  $("url-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("url-input").value.trim();
    if (isHttpUrl(url)) onUrl(url); else onBadUrl();
  });
}

// The whole page takes drops: a photo dropped on the results (or anywhere) searches instead of the browser
// navigating away to the file.
function setupDropAnywhere(takeImage, onUrl) {
  let dragDepth = 0;   // dragenter/dragleave also fire for child elements; count them to avoid flicker
  const zone = $("drop-zone");
  const setDragging = (on) => {
    zone.classList.toggle("dragging", on);
    document.body.classList.toggle("dragging", on);
  };
  document.addEventListener("dragenter", (event) => { event.preventDefault(); dragDepth++; setDragging(true); });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("dragleave", () => { if (--dragDepth <= 0) { dragDepth = 0; setDragging(false); } });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
    setDragging(false);
    const file = firstImageFile(event.dataTransfer);
    const text = (event.dataTransfer.getData("text/uri-list") || event.dataTransfer.getData("text/plain")).trim();
    if (file) takeImage(file);
    else if (isHttpUrl(text)) onUrl(text);
  });
}

function firstImageFile(dataTransfer) {
  if (!dataTransfer) return null;
  const files = [...(dataTransfer.files || [])];
  return files.find((file) => file.type.startsWith("image/")) || files[0] || null;
}

export function isHttpUrl(text) { return /^https?:\/\/\S+$/i.test(text); }

async function shrinkIfLarge(file) {
  // Only big photos are re-encoded: a small one is sent byte for byte, so it matches its indexed copy exactly.
  if (!file.type.startsWith("image/") || typeof createImageBitmap !== "function") return file;
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (err) { return file; }
  const side = Math.max(bitmap.width, bitmap.height);
  if (side <= MAX_SIDE_PX && file.size <= MAX_SEND_BYTES) { bitmap.close(); return file; }
  const scale = Math.min(1, MAX_SIDE_PX / side);
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(blob || file), "image/jpeg", 0.9));
}
