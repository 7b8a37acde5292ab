// What the shopper is told: a toast pinned to the top of the viewport (so a phone sees it without scrolling)
// for "searching" and for errors, errors in plain words with a Retry button, engineering detail to the console.
"use strict";

import { $ } from "./dom.js";

// API error codes (and transport failures) in the shopper's words. Unknown codes fall back on the HTTP status.
const MESSAGES = {
  offline: "You seem to be offline. Check your connection, then try again.",
  invalid_image: "That file isn't a photo we can read. Try a JPEG, PNG or WebP photo.",
  unsupported_media_type: "That kind of file isn't supported. Try a JPEG, PNG or WebP photo.",
  payload_too_large: "That photo is too large. Try a smaller one.",
  url_refused: "We can't load photos from that address. Try saving the photo and uploading it instead.",
  fetch_timeout: "That address took too long to send the photo. Try again, or upload the photo instead.",
  url_not_image: "That address doesn't lead to a photo. Copy the image's own address (right-click, Copy image address).",
  url_malformed: "That doesn't look like a web address. It should start with http:// or https://.",
  url_disabled: "Searching by address isn't available here. Save the photo and upload it instead.",
  fetch_failed: "We couldn't load a photo from that address. Check that it links straight to an image.",
  not_found: "That item is no longer in the catalogue.",
  upload_expired: "This shared photo has expired. Upload it again to search with it.",
  invalid_upload_id: "This link's photo can't be found. Upload the photo again to search with it.",
  unauthorized: "This shop needs an access key before you can search.",
  colour_refused: "Match colour isn't available on this server yet. Turn it off to search.",
  region_load_failed: "We couldn't load that item's photo to search part of it. Try again.",
  bad_address: "Enter an image address starting with http:// or https://.",
};
const BY_STATUS = {
  400: MESSAGES.invalid_image, 404: MESSAGES.not_found, 413: MESSAGES.payload_too_large,
  415: MESSAGES.unsupported_media_type, 502: MESSAGES.fetch_failed, 504: MESSAGES.fetch_timeout,
};
const GENERIC = "Something went wrong on our side. Please try again in a moment.";

// The shopper's sentence for an error thrown by api.js (status, code, message) or by the page itself.
export function shopperMessage(error) {
  if (error && error.code && MESSAGES[error.code]) return MESSAGES[error.code];
  if (error && error.code && error.code.startsWith("url_")) return MESSAGES.fetch_failed;
  if (error && BY_STATUS[error.status]) return BY_STATUS[error.status];
  return GENERIC;
}

let retryAction = null;
let hideTimer = null;

export function setupFeedback() {
  $("toast-retry").addEventListener("click", () => { const retry = retryAction; hideToast(); if (retry) retry(); });
  $("toast-dismiss").addEventListener("click", hideToast);
}

export function showSearching(text = "Searching…") {
  clearTimeout(hideTimer);
  const toast = $("toast");
  toast.dataset.kind = "busy";
  $("toast-text").textContent = text;
  $("toast-retry").hidden = true;
  $("toast-dismiss").hidden = true;
  toast.hidden = false;
}

// An error toast that stays until dismissed or retried; `retry` (optional) runs the failed action again.
export function showError(error, retry) {
  clearTimeout(hideTimer);
  console.warn("visual search:", error && (error.detail || error.message), error);
  const toast = $("toast");
  toast.dataset.kind = "error";
  $("toast-text").textContent = shopperMessage(error);
  retryAction = retry || null;
  $("toast-retry").hidden = !retry;
  $("toast-dismiss").hidden = false;
  toast.hidden = false;
  (retry ? $("toast-retry") : $("toast-dismiss")).focus({ preventScroll: true });
}

export function hideToast() {
  retryAction = null;
  $("toast").hidden = true;
}

// A short confirmation ("3 filters cleared") that goes away on its own.
export function showNotice(text) {
  clearTimeout(hideTimer);
  const toast = $("toast");
  toast.dataset.kind = "notice";
  $("toast-text").textContent = text;
  $("toast-retry").hidden = true;
  $("toast-dismiss").hidden = false;
  toast.hidden = false;
  hideTimer = setTimeout(hideToast, 4000);
}
