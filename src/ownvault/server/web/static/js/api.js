// The API client: the session token (sessionStorage), fetch with Authorization, JSON errors.
const KEY = "ownvault.token";
export const BASE = "/api/v1";

export function token() { return sessionStorage.getItem(KEY); }
export function setToken(t) { if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY); }

export class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function api(method, path, body, extra = {}) {
  const headers = { ...(extra.headers || {}) };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  let payload = body;
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const r = await fetch(BASE + path, { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
  if (r.status === 204) return null;
  const text = await r.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!r.ok) {
    const e = (doc && doc.error) || { code: "http", message: `${r.status} ${r.statusText}` };
    throw new ApiError(r.status, e.code, e.message);
  }
  return doc;
}

export const q = (params) => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") u.append(k, v);
  const s = u.toString();
  return s ? `?${s}` : "";
};

export function contentUrl(name, version) { return `${BASE}/files/content${q({ name, version })}`; }
