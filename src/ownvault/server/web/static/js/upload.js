// Resumable uploads: one session per file (POST /uploads), 8 MiB chunks (PATCH with
// Upload-Offset, XMLHttpRequest for byte progress), resumed from the server's offset after
// a failure, then POST /uploads/{id}/finish stores the file in the vault.
import { api, token, BASE } from "./api.js";
import { h, $, size } from "./dom.js";

const CHUNK = 8 * 1024 * 1024;
const RETRIES = 5;

function patch(id, offset, blob, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("PATCH", `${BASE}/uploads/${id}`);
    x.setRequestHeader("Authorization", `Bearer ${token()}`);
    x.setRequestHeader("Upload-Offset", String(offset));
    x.setRequestHeader("Content-Type", "application/offset+octet-stream");
    x.upload.onprogress = (e) => onProgress(offset + e.loaded);
    x.onload = () => {
      let doc = null;
      try { doc = JSON.parse(x.responseText); } catch { doc = null; }
      if (x.status === 200) resolve(doc.offset);
      else reject(new Error((doc && doc.error && doc.error.message) || `HTTP ${x.status}`));
    };
    x.onerror = () => reject(new Error("network error"));
    x.send(blob);
  });
}

export async function upload(file, name, tags, list) {
  const bar = h("progress", { max: file.size || 1, value: 0, "aria-label": `Upload progress of ${name}` });
  const status = h("span", { class: "muted", role: "status" }, "starting…");
  const row = h("li", { dataset: { name } }, h("span", { class: "name-cell" }, name), status, bar);
  list.append(row);
  const show = (n) => { bar.value = n; status.textContent = `${size(n)} of ${size(file.size)}`; };
  try {
    const s = await api("POST", "/uploads", { name, size: file.size, tags, mtime_ms: file.lastModified || null });
    let offset = s.offset;
    let failures = 0;
    while (offset < file.size) {
      const end = Math.min(offset + Math.min(CHUNK, s.chunk_max), file.size);
      try {
        offset = await patch(s.id, offset, file.slice(offset, end), show);
        failures = 0;
      } catch (e) {
        if (++failures > RETRIES) throw e;
        status.textContent = `retrying (${e.message})…`;
        await new Promise((r) => setTimeout(r, 500 * failures));
        offset = (await api("GET", `/uploads/${s.id}`)).offset;
      }
      show(offset);
    }
    status.textContent = "storing…";
    const put = await api("POST", `/uploads/${s.id}/finish`);
    bar.value = bar.max;
    status.textContent = `stored v${put.version}`;
    row.dataset.done = "true";
    return put;
  } catch (e) {
    status.textContent = `failed: ${e.message}`;
    row.dataset.failed = "true";
    throw e;
  }
}

// A dropped folder is walked: every file inside, with its path relative to the drop.
async function walk(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: prefix + file.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`, out);
    }
  }
}

export async function droppedFiles(dataTransfer) {
  const entries = [...dataTransfer.items].map((i) => (i.webkitGetAsEntry ? i.webkitGetAsEntry() : null));
  if (!entries.some((e) => e && e.isDirectory)) return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  const out = [];
  for (const e of entries) if (e) await walk(e, "", out);
  return out;
}

// Files from a picker: a folder picker gives each file's path inside the chosen folder.
export function pickedFiles(fileList) {
  return [...fileList].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
}

export function bindDrop(zone, onFiles) {
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", async (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    if (e.dataTransfer && e.dataTransfer.items.length) onFiles(await droppedFiles(e.dataTransfer));
  });
  zone.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#file-input").click(); }
  });
}
