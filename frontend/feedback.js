// What the shopper is told: a toast pinned to the top of the viewport (so a phone sees it without scrolling)
// for "searching" and for errors. Errors are in plain words that say whose side the problem is on (the shopper's
// connection, our server, or the photo or address given), with Retry only where trying again can succeed;
// engineering detail goes to the console.
"use strict";

// API error codes (and transport failures) in the shopper's words. Unknown codes fall back on the HTTP status.
const MESSAGES = {
  offline: "Your device is offline. Check your Wi-Fi or mobile data, then try again.",
  unreachable: "We can't reach the search service right now. The problem is on our side, not your connection. "
    + "Please try again in a moment.",
  server_error: "Something went wrong on our side. Please try again in a moment.",
  busy: "The search service is busy right now (on our side). Please try again in a moment.",
  invalid_image: "That file isn't a photo we can read. Try a JPEG, PNG or WebP photo.",
  unsupported_media_type: "That kind of file isn't supported. Try a JPEG, PNG or WebP photo.",
  payload_too_large: "That photo is too large to send. Try a smaller one, or a screenshot of it.",
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
  415: MESSAGES.unsupported_media_type, 429: MESSAGES.busy, 502: MESSAGES.fetch_failed, 504: MESSAGES.fetch_timeout,
};
// Errors that trying the same thing again can cure: the network, our server, a slow website, a busy service.
// A file that is not a photo, too large or of the wrong type fails the same way every time, so it gets no Retry.
const RETRYABLE_CODES = new Set(["offline", "unreachable", "server_error", "busy", "fetch_timeout", "fetch_failed",
                                 "region_load_failed"]);

// The shopper's sentence for an error thrown by api.js (status, code, message) or by the page itself.
export function shopperMessage(error) {
  if (error && error.code && MESSAGES[error.code]) return MESSAGES[error.code];
  if (error && error.code && error.code.startsWith("url_")) return MESSAGES.fetch_failed;
  if (error && BY_STATUS[error.status]) return BY_STATUS[error.status];
  return MESSAGES.server_error;
}

// Whether the same request may succeed if sent again (so Retry is worth offering).
export function isRetryable(error) {
  if (!error) return false;
  if (RETRYABLE_CODES.has(error.code)) return true;
  return error.status === 429 || error.status >= 500 || error.status === 0 && !MESSAGES[error.code];
}

// The toast: `elements` = {toast, text, retry, dismiss}.
export class Feedback {
  constructor(elements) {
    this.elements = elements;
    this.retryAction = null;
    this.hideTimer = null;
    elements.retry.addEventListener("click", () => { const retry = this.retryAction; this.hide(); if (retry) retry(); });
    elements.dismiss.addEventListener("click", () => this.hide());
  }

  searching(text = "Searching…") {
    this.show("busy", text, { dismissable: false });
  }

  // An error toast that stays until dismissed or retried. `retry` (optional) runs the failed action again; it is
  // offered, and focused, only when the error is one a retry can cure.
  error(error, retry) {
    console.warn("visual search:", error && (error.detail || error.message), error);
    const canRetry = !!retry && isRetryable(error);
    this.show("error", shopperMessage(error), { dismissable: true });
    this.retryAction = canRetry ? retry : null;
    this.elements.retry.hidden = !canRetry;
    (canRetry ? this.elements.retry : this.elements.dismiss).focus({ preventScroll: true });
  }

  // A short confirmation ("3 filters cleared") that goes away on its own.
  notice(text) {
    this.show("notice", text, { dismissable: true });
    this.hideTimer = setTimeout(() => this.hide(), 4000);
  }

  show(kind, text, { dismissable }) {
    clearTimeout(this.hideTimer);
    const { toast } = this.elements;
    toast.dataset.kind = kind;
    this.elements.text.textContent = text;
    this.retryAction = null;
    this.elements.retry.hidden = true;
    this.elements.dismiss.hidden = !dismissable;
    toast.hidden = false;
  }

  hide() {
    clearTimeout(this.hideTimer);
    this.retryAction = null;
    this.elements.toast.hidden = true;
  }
}
