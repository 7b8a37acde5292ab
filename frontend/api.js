// The search API client: base URL from config.json ("" = same origin), optional X-API-Key, JSON error messages.
"use strict";

const KEY_STORAGE = "visual-search-api-key";

// Used until config.json answers (and kept where an older server's config.json has no `limits`): the server's
// defaults at the time of writing. The server's own numbers replace them (api/client_limits.py).
const FALLBACK_LIMITS = {
  maxK: 100, maxUploadBytes: 10 * 1024 * 1024, maxPixels: 64000000,
  imageTypes: ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp", "image/tiff"],
};

export const client = {
  apiBase: "",
  apiKey: sessionStorage.getItem(KEY_STORAGE) || "",
  apiKeyRequired: false,
  limits: { ...FALLBACK_LIMITS },
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
    client.limits = { ...FALLBACK_LIMITS, ...(config.limits || {}) };
  } catch (err) { /* no config.json: same origin, no key */ }
}

// Resolves to the JSON body; rejects with an apiError carrying the API's code, the status and its message. A
// request that never got an answer is "offline" when the browser knows it has no network, else "unreachable"
// (the network is there, the server is not: a stopped or restarting server, not the shopper's connection).
export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (client.apiKey) headers["X-API-Key"] = client.apiKey;
  let response;
  try {
    response = await fetch(client.apiBase + path, Object.assign({}, options, { headers }));
  } catch (err) {
    const code = navigator.onLine === false ? "offline" : "unreachable";
    throw apiError(code, 0, `network error: ${err.message}`);
  }
  let body = null;
  try { body = await response.json(); } catch (err) { /* a non-JSON error page */ }
  if (!response.ok) {
    if (response.status === 401) client.onUnauthorized();
    const detail = body && body.error ? body.error : {};
    const fallback = response.status >= 500 ? "server_error" : `http_${response.status}`;
    throw apiError(detail.code || fallback, response.status,
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
