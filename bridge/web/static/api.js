// The daemon's HTTP API as the page uses it: the session (CSRF value, token), JSON requests, uploads.
// Every request carries the token when there is one; every POST carries the CSRF header.

const TOKEN_KEY = "visage.token";

/** An error answered by the daemon ({"error": {code, message, field}}) or by the network. */
export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let csrf = "";

export function storedToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function storeToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function baseHeaders() {
  const headers = {};
  const token = storedToken();
  if (token) headers["X-Visage-Token"] = token;
  return headers;
}

async function errorOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: fall back to the status line
  }
  const e = body && body.error;
  if (e && e.code) return new ApiError(response.status, e.code, e.message || e.code, e.field ?? null);
  return new ApiError(response.status, `http_${response.status}`, response.statusText || "request failed");
}

/** GET /api/session: stores the CSRF value; the daemon sets the session cookie that authorises GETs. */
export async function openSession() {
  const response = await fetch("/api/session", { headers: baseHeaders(), credentials: "same-origin" });
  if (!response.ok) throw await errorOf(response);
  const session = await response.json();
  csrf = session.csrf;
  return session;
}

async function send(method, url, body, contentType, retried = false) {
  const headers = baseHeaders();
  if (method !== "GET") {
    headers["X-Visage-CSRF"] = csrf;
    if (contentType) headers["Content-Type"] = contentType;
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "network", `the daemon does not answer (${e.message}): is “visage serve” still running?`);
  }
  if (response.status === 403 && method !== "GET" && !retried) {
    const error = await errorOf(response);
    if (error.code !== "csrf") throw error;
    await openSession(); // the daemon restarted or the cookie expired: a fresh CSRF value, once
    return send(method, url, body, contentType, true);
  }
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

export function getJson(url) {
  return send("GET", url);
}

export function postJson(url, value) {
  return send("POST", url, JSON.stringify(value ?? {}), "application/json");
}

export function postText(url, text) {
  return send("POST", url, text, "text/plain; charset=utf-8");
}

/** POST /api/uploads with the file as the raw body; XMLHttpRequest because fetch reports no upload progress. */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", `/api/uploads?name=${encodeURIComponent(file.name)}`);
    for (const [name, value] of Object.entries(baseHeaders())) request.setRequestHeader(name, value);
    request.setRequestHeader("X-Visage-CSRF", csrf);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onerror = () => reject(new ApiError(0, "network", "the upload was interrupted"));
    request.onload = () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        // reported below
      }
      if (request.status >= 200 && request.status < 300 && body) resolve(body);
      else {
        const e = (body && body.error) || {};
        reject(new ApiError(request.status, e.code || `http_${request.status}`, e.message || "upload failed", e.field));
      }
    };
    request.send(file);
  });
}

/** A URL with ?download=1 added (the daemon then answers with Content-Disposition: attachment). */
export function downloadUrl(url) {
  return url + (url.includes("?") ? "&" : "?") + "download=1";
}

export function mediaUrl(path) {
  return `/api/media?path=${encodeURIComponent(path)}`;
}
