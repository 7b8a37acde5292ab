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

// Resolves to the JSON body; rejects with an apiError carrying the API's code, the status and its message.
export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (client.apiKey) headers["X-API-Key"] = client.apiKey;
  let response;
  try {
    response = await fetch(client.apiBase + path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw apiError("offline", 0, `network error: ${err.message}`);
  }
  let body = null;
  try { body = await response.json(); } catch (err) { /* a non-JSON error page */ }
  if (!response.ok) {
    if (response.status === 401) client.onUnauthorized();
    const detail = body && body.error ? body.error : {};
    throw apiError(detail.code || `http_${response.status}`, response.status,
                   detail.message || `the search service answered ${response.status}`);
  }
  return body;
}

// `code` is the API's error code (or "offline"), `detail` its message: for the console, not for the shopper.
export function apiError(code, status, detail) {
  const error = new Error(detail);
  Object.assign(error, { code, status, detail });
  return error;
}
