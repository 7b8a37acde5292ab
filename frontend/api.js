// The search API client: base URL from config.json ("" = same origin), optional X-API-Key, JSON error messages.
"use strict";

const KEY_STORAGE = "visual-search-api-key";

export const client = {
  apiBase: "",
  apiKey: sessionStorage.getItem(KEY_STORAGE) || "",
  apiKeyRequired: false,
  onUnauthorized: () => {},
};

export function setApiKey(key) {
  client.apiKey = key;
  sessionStorage.setItem(KEY_STORAGE, key);
}

export async function loadConfig() {
  try {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) return;
    const config = await response.json();
    client.apiBase = String(config.apiBase || "").replace(/\/+$/, "");
    client.apiKeyRequired = !!config.apiKeyRequired;
  } catch (err) { /* no config.json: same origin, no key */ }
}

// Resolves to the JSON body; rejects with an Error whose message is the API's error.message.
export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (client.apiKey) headers["X-API-Key"] = client.apiKey;
  let response;
  try {
    response = await fetch(client.apiBase + path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new Error("Cannot reach the search service. Check your connection and try again.");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { /* a non-JSON error page */ }
  if (!response.ok) {
    if (response.status === 401) client.onUnauthorized();
    const message = body && body.error && body.error.message;
    const error = new Error(message || `The search service answered ${response.status}.`);
    error.status = response.status;
    throw error;
  }
  return body;
}
