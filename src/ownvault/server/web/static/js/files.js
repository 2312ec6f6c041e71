// Files: browse (virtual folders by "/" in names, stored trees), search by name and tag,
// upload, download, details (versions with restore, tags, publish toggle), delete.
import { api, q, contentUrl } from "./api.js";
import { h, $, clear, size, when, toast, confirmDialog, copy } from "./dom.js";
import { upload, bindDrop, pickedFiles } from "./upload.js";
import { prefill } from "./sharing.js";

function shareThis(kind, target) { prefill(kind, target); $("#details").close(); location.hash = "#/sharing"; }

const state = { cwd: "", tree: null, query: "", tag: "" };

function navigate(cwd, tree = null) { state.cwd = cwd; state.tree = tree; render(); }

function crumbs() {
  const nav = clear($("#crumbs"));
  nav.append(h("button", { type: "button", class: "link", onclick: () => navigate("") }, "All files"));
  const path = state.tree ? `${state.tree.name}/${state.tree.path}`.replace(/\/$/, "") : state.cwd.replace(/\/$/, "");
  if (!path) return;
  let acc = "";
  for (const part of path.split("/")) {
    acc = acc ? `${acc}/${part}` : part;
    const target = acc;
    nav.append(" / ", h("button", { type: "button", class: "link", onclick: () => openPath(target) }, part));
  }
}

async function openPath(path) {
  // A path is a virtual folder unless it is (inside) a stored tree.
  try {
    const doc = await api("GET", `/files/entries${q({ name: path })}`);
    navigate("", { name: doc.tree, path: doc.path });
  } catch { navigate(`${path}/`); }
}

function tagsOf(o) { return (o.tags || []).map((t) => h("span", { class: "tag" }, t)); }

function row(cells, actions) {
  return h("tr", {}, ...cells, h("td", { class: "num" }, actions));
}

async function renderTree(tbody) {
  const name = state.tree.path ? `${state.tree.name}/${state.tree.path}` : state.tree.name;
  const doc = await api("GET", `/files/entries${q({ name })}`);
  for (const e of doc.entries) {
    const full = `${doc.tree}/${e.path}`;
    const base = e.path.split("/").pop();
    if (e.kind === "dir") {
      tbody.append(row([h("td", { class: "name-cell" }, h("button", { type: "button", class: "link folder", onclick: () => navigate("", { name: doc.tree, path: e.path }) }, `${base}/`)),
        h("td", {}, ""), h("td", { class: "wide" }, ""), h("td", { class: "wide" }, "")], ""));
    } else if (e.kind === "file") {
      tbody.append(row([h("td", { class: "name-cell" }, base), h("td", { class: "num" }, size(e.size)), h("td", { class: "wide" }, ""), h("td", { class: "wide" }, "")],
        h("a", { href: contentUrl(full), download: base, "aria-label": `Download ${base}` }, "Download")));
    } else {
      tbody.append(row([h("td", { class: "name-cell" }, `${base} → ${e.target}`), h("td", {}, ""), h("td", { class: "wide" }, ""), h("td", { class: "wide" }, "")], ""));
    }
  }
  return doc.entries.length;
}

async function renderList(tbody) {
  const searching = state.query || state.tag;
  const doc = await api("GET", `/files${q({ prefix: searching ? "" : state.cwd, q: state.query, tag: state.tag })}`);
  const folders = new Map();
  let count = 0;
  for (const o of doc.objects) {
    const rest = o.name.slice(searching ? 0 : state.cwd.length);
    if (!searching && rest.includes("/")) {
      const dir = rest.split("/")[0];
      folders.set(dir, (folders.get(dir) || 0) + 1);
      continue;
    }
    count++;
    const label = searching ? o.name : rest;
    const isTree = o.kind === "tree";
    const open = isTree
      ? h("button", { type: "button", class: "link folder", onclick: () => navigate("", { name: o.name, path: "" }) }, `${label}/`)
      : h("span", {}, label);
    const pub = o.published ? h("span", { class: "tag", title: o.published }, "public") : "";
    const actions = h("span", { class: "row" },
      isTree ? "" : h("a", { href: contentUrl(o.name), download: label.split("/").pop(), "aria-label": `Download ${o.name}` }, "Download"),
      h("button", { type: "button", class: "secondary", "aria-label": `Details of ${o.name}`, onclick: () => details(o.name) }, "Details"),
      h("button", { type: "button", class: "danger", "aria-label": `Delete ${o.name}`, onclick: () => remove(o.name) }, "Delete"));
    tbody.append(h("tr", { dataset: { name: o.name } },
      h("td", { class: "name-cell" }, open, " ", pub),
      h("td", { class: "num" }, size(o.size)),
      h("td", { class: "wide" }, `v${o.version}${o.versions > 1 ? ` (${o.versions})` : ""}`),
      h("td", { class: "wide" }, tagsOf(o)),
      h("td", { class: "num" }, actions)));
  }
  for (const [dir, n] of [...folders.entries()].sort().reverse()) {
    tbody.prepend(h("tr", {}, h("td", { class: "name-cell" },
      h("button", { type: "button", class: "link folder", onclick: () => navigate(`${state.cwd}${dir}/`) }, `${dir}/`)),
      h("td", { class: "num muted" }, `${n} item${n > 1 ? "s" : ""}`), h("td", { class: "wide" }, ""), h("td", { class: "wide" }, ""),
      h("td", { class: "num" }, h("button", { type: "button", class: "secondary", "aria-label": `Share the folder ${state.cwd}${dir}`,
        onclick: () => shareThis("prefix", `${state.cwd}${dir}`) }, "Share"))));
  }
  return count + folders.size;
}

export async function render() {
  crumbs();
  $("#drop").hidden = Boolean(state.tree);
  const tbody = clear($("#files-table tbody"));
  try {
    const n = state.tree ? await renderTree(tbody) : await renderList(tbody);
    $("#files-empty").hidden = n > 0;
  } catch (e) { toast(e.message); }
}

async function remove(name) {
  if (!(await confirmDialog(`Delete ${name} and all its versions? Shares nobody else needs are deleted from your providers.`))) return;
  try { await api("DELETE", `/files${q({ name })}`); toast(`Deleted ${name}`); } catch (e) { toast(e.message); }
  render();
}

async function details(name) {
  const d = $("#details");
  $("#details-h").textContent = name;
  const body = clear($("#details-body"));
  const [versions, objects, pubs] = await Promise.all([
    api("GET", `/files/versions${q({ name })}`), api("GET", `/files${q({ prefix: name })}`), api("GET", "/published"),
  ]);
  const o = objects.objects.find((x) => x.name === name);
  const latest = versions.versions[versions.versions.length - 1];
  body.append(h("dl", { class: "kv" },
    h("dt", {}, "Kind"), h("dd", {}, o.kind), h("dt", {}, "Size"), h("dd", {}, size(o.size)),
    h("dt", {}, "Stored"), h("dd", {}, when(o.created)),
    h("dt", {}, "CID"), h("dd", {}, h("code", { class: "cid" }, o.cid || "-"))));

  // publishing
  const pub = pubs.published.find((p) => p.name === name && p.version === latest.version);
  const pubBox = h("div", { id: "publish-box" });
  const toggle = h("input", { type: "checkbox", id: "publish-toggle", checked: Boolean(pub) });
  const showPub = (p) => {
    clear(pubBox);
    if (!p) return;
    const link = `${location.origin}${p.gateway}`;
    pubBox.append(h("dl", { class: "kv" },
      h("dt", {}, "IPFS"), h("dd", {}, h("code", { class: "cid", id: "ipfs-url" }, p.url)),
      h("dt", {}, "Gateway"), h("dd", {}, h("a", { href: link, id: "gateway-link", target: "_blank", rel: "noopener noreferrer" }, link))),
    h("div", { class: "row" },
      h("button", { type: "button", class: "secondary", onclick: () => copy(p.url) }, "Copy ipfs:// address"),
      h("button", { type: "button", class: "secondary", onclick: () => copy(link) }, "Copy gateway link")));
  };
  toggle.addEventListener("change", async () => {
    toggle.disabled = true;
    try {
      if (toggle.checked) { showPub(await api("POST", "/publish", { name })); toast("Published"); }
      else { await api("POST", "/unpublish", { target: name }); showPub(null); toast("No longer public"); }
    } catch (e) { toast(e.message); toggle.checked = !toggle.checked; }
    toggle.disabled = false;
    render();
  });
  body.append(h("div", { class: "row" }, h("button", { type: "button", class: "secondary", id: "details-share",
    onclick: () => shareThis("name", name) }, "Share with a contact…")));
  body.append(h("h3", {}, "Publishing"), h("div", { class: "switch" }, toggle, h("label", { for: "publish-toggle" }, "Public on IPFS")), pubBox);
  showPub(pub);

  // tags
  const tagInput = h("input", { type: "text", id: "tags-input", value: (o.tags || []).join(", ") });
  body.append(h("h3", {}, "Tags"), h("form", { class: "row", onsubmit: async (e) => {
    e.preventDefault();
    const want = tagInput.value.split(",").map((t) => t.trim()).filter(Boolean);
    const have = o.tags || [];
    try {
      const r = await api("POST", "/files/tags", { name, add: want.filter((t) => !have.includes(t)), remove: have.filter((t) => !want.includes(t)) });
      o.tags = r.tags; toast("Tags saved"); render();
    } catch (err) { toast(err.message); }
  } }, h("label", { for: "tags-input" }, "Tags (comma-separated)"), tagInput, h("button", { type: "submit" }, "Save tags")));

  // versions
  const list = h("ol", { class: "cards", id: "versions", reversed: true });
  for (const v of [...versions.versions].reverse()) {
    const isLatest = v.version === latest.version;
    list.append(h("li", { dataset: { version: v.version } },
      h("strong", {}, `v${v.version}`), ` · ${size(v.size)} · ${when(v.created)}${isLatest ? " · latest" : ""}`,
      h("div", { class: "row" },
        v.kind === "file" ? h("a", { href: contentUrl(name, v.version), download: name.split("/").pop(), "aria-label": `Download version ${v.version}` }, "Download") : "",
        isLatest ? "" : h("button", { type: "button", class: "secondary", "aria-label": `Restore version ${v.version}`, onclick: async () => {
          try { const r = await api("POST", "/files/restore", { name, version: v.version }); toast(`Restored as v${r.version}`); d.close(); render(); details(name); }
          catch (e) { toast(e.message); }
        } }, "Restore"))));
  }
  body.append(h("h3", {}, "Version history"), list);
  if (!d.open) d.showModal();
}

export function init() {
  bindDrop($("#drop"), uploadFiles);
  $("#file-input").addEventListener("change", (e) => { uploadFiles(pickedFiles(e.target.files)); e.target.value = ""; });
  $("#folder-input").addEventListener("change", (e) => { uploadFiles(pickedFiles(e.target.files)); e.target.value = ""; });
  $("#search").addEventListener("submit", (e) => { e.preventDefault(); state.query = $("#search-q").value.trim(); state.tag = $("#search-tag").value.trim(); render(); });
  $("#search-clear").addEventListener("click", () => { $("#search-q").value = ""; $("#search-tag").value = ""; state.query = ""; state.tag = ""; render(); });
}

const PARALLEL = 3;

async function uploadFiles(items) {
  // items: [{file, path}], path relative to the current folder ("a.txt", "trip/day1/b.jpg").
  const tags = $("#upload-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  const list = $("#uploads");
  const queue = [...items];
  const worker = async () => {
    for (let it = queue.shift(); it; it = queue.shift()) {
      try { await upload(it.file, `${state.cwd}${it.path}`, tags, list); } catch { /* shown on its row */ }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, queue.length) }, worker));
  render();
}
