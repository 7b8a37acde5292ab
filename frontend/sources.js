// Where a query photo comes from: the file picker, the live camera, a drop anywhere on the page, a paste, or an
// image address. Each calls onImage(blob) or onUrl(url); nothing here searches by itself. A file is checked
// before anything is sent: a type the server cannot read, or a size over its limit that cannot be shrunk here,
// calls onRefused(error) instead; a large photo is downscaled in the browser so it is never uploaded whole.
"use strict";

import { apiError } from "./api.js";

const MAX_SIDE_PX = 2048;            // larger photos are downscaled before upload: faster, and under Lambda's 6 MB
const MAX_SEND_BYTES = 4 * 1024 * 1024;
const BROWSER_DECODES = new Set(["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"]);

// `elements` = {dropZone, chooseButton, fileInput, cameraButton, cameraInput, cameraNote, urlForm, urlInput,
// camera (a captureFromCamera-like function)}; `limits` = () => the server's limits (api.js client.limits).
export function setupSources(elements, { limits, onImage, onUrl, onBadUrl, onRefused }) {
  const takeImage = async (file) => {
    if (!file) return;
    try {
      onImage(await prepareUpload(file, limits()));
    } catch (err) {
      onRefused(err);
    }
  };
  elements.chooseButton.addEventListener("click", () => elements.fileInput.click());
  elements.cameraButton.addEventListener("click", async () => {
    try {
      const blob = await elements.camera();
      if (blob) onImage(blob);
    } catch (err) {
      // No live camera (none, refused, or an insecure page): say so, and let the device offer what it has.
      const note = elements.cameraNote;
      note.textContent = err.reason === "not-allowed"
        ? "Camera access was not allowed. Pick a photo instead, or allow the camera in your browser's settings."
        : "No camera is available here. Pick a photo instead.";
      note.hidden = false;
      console.info("visual search: live camera unavailable:", err.message);
      elements.cameraInput.click();
    }
  });
  for (const input of [elements.fileInput, elements.cameraInput]) {
    input.addEventListener("change", (event) => {
      takeImage(event.target.files[0]);
      event.target.value = "";   // choosing the same file again still triggers a search
    });
  }
  setupDropAnywhere(elements.dropZone, takeImage, onUrl);
  document.addEventListener("paste", (event) => {
    const file = firstImageFile(event.clipboardData);
    if (file) { event.preventDefault(); takeImage(file); return; }
    const text = event.clipboardData ? event.clipboardData.getData("text/plain").trim() : "";
    if (isHttpUrl(text) && document.activeElement !== elements.urlInput) {
      event.preventDefault();
      onUrl(text);
    }
  });
  elements.urlForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const url = elements.urlInput.value.trim();
    if (isHttpUrl(url)) onUrl(url); else onBadUrl();
  });
}

// The whole page takes drops: a photo dropped on the results (or anywhere) searches instead of the browser
// navigating away to the file.
function setupDropAnywhere(zone, takeImage, onUrl) {
  let dragDepth = 0;   // dragenter/dragleave also fire for child elements; count them to avoid flicker
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

// The blob to upload for `file`, or a rejection with the error the server would give (without sending it):
// unsupported_media_type for a type the server does not read, payload_too_large for a file over the limit that
// the browser cannot shrink. A photo the browser decodes is downscaled when big; one it cannot decode (a TIFF,
// or a broken file) goes as it is when small enough, and the server judges it.
export async function prepareUpload(file, limits) {
  const type = (file.type || "").toLowerCase();
  if (type && !limits.imageTypes.includes(type)) {
    throw apiError("unsupported_media_type", 415, `the server reads ${limits.imageTypes.join(", ")}, not ${type}`);
  }
  const shrunk = BROWSER_DECODES.has(type) || !type ? await shrinkIfLarge(file, limits) : file;
  if (shrunk.size > limits.maxUploadBytes) {
    throw apiError("payload_too_large", 413,
                   `${shrunk.size} bytes over the ${limits.maxUploadBytes}-byte upload limit, and not shrinkable here`);
  }
  return shrunk;
}

async function shrinkIfLarge(file, limits) {
  // Only big photos are re-encoded: a small one is sent byte for byte, so it matches its indexed copy exactly.
  if (typeof createImageBitmap !== "function") return file;
  let bitmap;
  try { bitmap = await createImageBitmap(file); } catch (err) { return file; }
  const maxSide = Math.min(MAX_SIDE_PX, Math.floor(Math.sqrt(limits.maxPixels)));
  const side = Math.max(bitmap.width, bitmap.height);
  const sendBytes = Math.min(MAX_SEND_BYTES, limits.maxUploadBytes);
  if (side <= maxSide && file.size <= sendBytes) { bitmap.close(); return file; }
  const scale = Math.min(1, maxSide / side);
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(bitmap.width * scale));
  canvas.height = Math.max(1, Math.round(bitmap.height * scale));
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  return new Promise((resolve) => canvas.toBlob((blob) => resolve(blob || file), "image/jpeg", 0.9));
}
