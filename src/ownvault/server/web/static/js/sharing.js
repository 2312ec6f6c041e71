// Sharing: your identity and contact card, contacts, share a file / folder / tag with a
// contact (a grant: the ovgrant1: string and a file), who can read what, revoke (a job with
// progress), never-share tags, and grants other people made for you ("Shared with me").
import { api, q, BASE } from "./api.js";
import { h, $, clear, when, toast, confirmDialog, copy } from "./dom.js";

const STATE_PILL = { active: "ok", expired: "degraded", revoked: "down" };

function short(did) { return did.length > 24 ? `${did.slice(0, 16)}…${did.slice(-6)}` : did; }

async function renderIdentity() {
  const doc = await api("GET", "/identity");
  const box = clear($("#identity-box"));
  box.append(h("dl", { class: "kv" },
    h("dt", {}, "did:key"), h("dd", {}, h("code", { id: "my-did" }, doc.did)),
    h("dt", {}, "X25519 key"), h("dd", {}, h("code", {}, doc.agreement))),
  h("div", { class: "row" },
    h("a", { href: `${BASE}/identity/card`, download: "ownvault-contact.json", class: "button-like", id: "card-download" }, "Download your contact card"),
    h("button", { type: "button", class: "secondary", onclick: () => copy(JSON.stringify(doc.card, null, 2)) }, "Copy your card")));
}

async function renderContacts() {
  const doc = await api("GET", "/contacts");
  const list = clear($("#contacts-list"));
  if (!doc.contacts.length) list.append(h("li", {}, "No contacts yet: add someone's card below."));
  for (const c of doc.contacts) {
    const label = c.name || short(c.did);
    list.append(h("li", { dataset: { did: c.did } },
      h("strong", {}, label), h("div", {}, h("code", { class: "cid" }, c.did)),
      h("div", { class: "muted" }, `added ${when(c.added)}`),
      h("button", { type: "button", class: "danger", "aria-label": `Remove contact ${label}`, onclick: async () => {
        if (!(await confirmDialog(`Remove ${label} from your contacts? Grants already made stay until you revoke them.`, "Remove"))) return;
        try { await api("DELETE", `/contacts${q({ who: c.did })}`); toast(`Removed ${label}`); } catch (e) { toast(e.message); }
        renderContacts();
      } }, "Remove")));
  }
  const to = $("#share-to");
  const keep = to.value;
  clear(to).append(h("option", { value: "" }, doc.contacts.length ? "Choose a contact" : "No contacts yet"));
  for (const c of doc.contacts) to.append(h("option", { value: c.did }, c.name || short(c.did)));
  if (keep) to.value = keep;
}

async function renderGrants() {
  const doc = await api("GET", "/grants");
  const tbody = clear($("#grants-table tbody"));
  $("#grants-empty").hidden = doc.grants.length > 0;
  for (const g of [...doc.grants].reverse()) {
    const who = g.contact || short(g.to);
    const what = g.tag ? `tag ${g.tag}: ${g.items.join(", ")}` : g.items.join(", ");
    const status = h("span", { class: `pill ${STATE_PILL[g.state] || "degraded"}` }, g.state);
    const cell = h("td", { class: "num" });
    if (g.state !== "revoked") {
      cell.append(h("button", { type: "button", class: "danger", "aria-label": `Revoke the grant to ${who}`,
        onclick: () => revoke(g, who, cell) }, "Revoke"));
    }
    tbody.append(h("tr", { dataset: { grant: g.grant, state: g.state } },
      h("td", {}, h("strong", {}, who), h("div", { class: "muted wide" }, h("code", {}, g.grant.slice(0, 12)))),
      h("td", { class: "name-cell" }, what),
      h("td", { class: "wide" }, when(g.created)),
      h("td", {}, g.expires ? when(g.expires) : "never"),
      h("td", {}, status, g.revoked ? h("div", { class: "muted" }, when(g.revoked)) : ""),
      cell));
  }
}

async function revoke(g, who, cell) {
  const ok = await confirmDialog(
    `Revoke what ${who} can read (${g.items.join(", ")})? Everything the grant covered is re-encrypted under new keys and the old shares are deleted. What they already downloaded stays with them.`,
    "Revoke");
  if (!ok) return;
  const bar = h("progress", { max: 1, "aria-label": `Revoking the grant to ${who}` });
  const status = h("span", { role: "status", class: "revoke-status" }, "revoking…");
  clear(cell).append(bar, " ", status);
  try {
    let job = await api("POST", `/grants/${g.grant}/revoke`);
    while (job.state === "running") {
      await new Promise((r) => setTimeout(r, 300));
      job = await api("GET", `/jobs/${job.id}`);
      if (job.total) { bar.max = job.total; bar.value = job.done; status.textContent = `${job.done} of ${job.total} pack(s)`; }
    }
    if (job.state === "failed") throw new Error(job.error.message);
    const r = job.result;
    toast(`Revoked: ${r.chunks_rekeyed || 0} chunk(s) re-encrypted, ${r.objects_deleted} old object(s) deleted`
      + (r.not_deleted.length ? `; ${r.not_deleted.length} could not be deleted` : ""));
  } catch (e) { toast(`Revoke failed: ${e.message}`); }
  renderGrants();
}

async function renderPolicies() {
  const doc = await api("GET", "/tags/policies");
  const list = clear($("#policies-list"));
  const never = doc.policies.filter((p) => p.never_share);
  if (!never.length) list.append(h("li", {}, "No tag is protected: anything may be shared."));
  for (const p of never) {
    list.append(h("li", { dataset: { tag: p.tag } }, h("span", { class: "tag" }, p.tag), " is never shared ",
      h("button", { type: "button", class: "link", "aria-label": `Allow sharing data tagged ${p.tag}`, onclick: async () => {
        try { await api("PUT", "/tags/policies", { tag: p.tag, never_share: false }); } catch (e) { toast(e.message); }
        renderPolicies();
      } }, "allow")));
  }
}

function showGrant(g) {
  const box = clear($("#grant-result"));
  box.hidden = false;
  box.append(
    h("p", {}, `Grant ${g.grant.slice(0, 12)} for ${$("#share-to").selectedOptions[0]?.textContent || short(g.to)}: ${g.items.join(", ")}`
      + (g.expires ? `, until ${when(g.expires)}` : "") + ". Only they can open it; send it by any channel."),
    h("label", { for: "grant-token" }, "The grant (ovgrant1: string)"),
    h("textarea", { id: "grant-token", readonly: true, rows: 4 }, g.token),
    h("div", { class: "row" },
      h("button", { type: "button", id: "grant-copy", onclick: () => copy(g.token) }, "Copy the grant"),
      h("a", { href: `${BASE}/grants/${g.grant}/document`, download: `ownvault-grant-${g.grant.slice(0, 12)}.json`, class: "button-like secondary", id: "grant-download" }, "Download the grant file")));
}

async function share(e) {
  e.preventDefault();
  const err = $("#share-error");
  err.textContent = "";
  delete err.dataset.code;
  const kind = $("#share-kind").value;
  const target = $("#share-target").value.trim();
  const body = { to: $("#share-to").value, read_only: true };
  if (kind === "name") body.names = [target]; else if (kind === "prefix") body.prefix = target; else body.tag = target;
  const day = $("#share-expires").value;
  if (day) body.expires = Math.floor(new Date(`${day}T23:59:59`).getTime() / 1000);
  if (!body.to) { err.textContent = "Choose a contact (add their card first)."; return; }
  try {
    const g = await api("POST", "/grants", body);
    showGrant(g);
    toast("Shared");
  } catch (x) { err.textContent = x.message; err.dataset.code = x.code; }
  renderGrants();
}

async function addContact(e) {
  e.preventDefault();
  const err = $("#contact-error");
  err.textContent = "";
  const file = $("#contact-file").files[0];
  const card = file ? await file.text() : $("#contact-card").value.trim();
  if (!card) { err.textContent = "Choose a card file or paste a card."; return; }
  const name = $("#contact-name").value.trim() || undefined;
  try {
    const c = await api("POST", "/contacts", { card, name });
    toast(`Added ${c.name || short(c.did)}`);
    $("#contact-form").reset();
  } catch (x) { err.textContent = x.message; err.dataset.code = x.code; }
  renderContacts();
}

// -- shared with me ------------------------------------------------------------------------

function contentLink(grant, name) { return `${BASE}/received/${grant}/content${q({ name })}`; }

function fileLink(grant, name) {
  return h("a", { href: contentLink(grant, name), download: name.split("/").pop(), "aria-label": `Download ${name} (shared)` }, "Download");
}

function renderReceived(doc) {
  const box = clear($("#received-box"));
  box.append(h("p", {}, `From `, h("code", {}, short(doc.from)), doc.expires ? `, until ${when(doc.expires)}` : "", ":"));
  const list = h("ul", { class: "cards", id: "received-items" });
  for (const it of doc.items) {
    const li = h("li", { dataset: { name: it.name } }, h("strong", {}, it.name), ` v${it.version} · ${it.kind} · ${it.files} file(s)`);
    if (it.kind === "file") li.append(" ", fileLink(doc.grant, it.name));
    else if (it.kind === "tree") {
      li.append(" ", h("button", { type: "button", class: "secondary", "aria-label": `Show the files of ${it.name}`, onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          const ents = await api("GET", `/received/${doc.grant}/entries${q({ name: it.name })}`);
          li.append(h("ul", {}, ents.entries.filter((x) => x.kind === "file").map((x) =>
            h("li", {}, `${x.path} `, fileLink(doc.grant, `${it.name}/${x.path}`)))));
        } catch (x) { toast(x.message); ev.target.disabled = false; }
      } }, "Show files"));
    }
    list.append(li);
  }
  box.append(list);
}

async function openReceived(e) {
  e.preventDefault();
  const err = $("#received-error");
  err.textContent = "";
  delete err.dataset.code;
  const file = $("#received-file").files[0];
  const grant = file ? await file.text() : $("#received-grant").value.trim();
  if (!grant) { err.textContent = "Paste a grant (ovgrant1:…) or choose a grant file."; return; }
  try {
    renderReceived(await api("POST", "/received", { grant }));
    $("#received-form").reset();
  } catch (x) {
    clear($("#received-box"));
    err.textContent = x.message; err.dataset.code = x.code;
  }
  renderReceivedList();
}

async function renderReceivedList() {
  const doc = await api("GET", "/received");
  const list = clear($("#received-list"));
  for (const g of doc.grants) {
    list.append(h("li", { dataset: { grant: g.grant } }, `From `, h("code", {}, short(g.from)), ` · ${when(g.created)} `,
      h("button", { type: "button", class: "secondary", "aria-label": `Open the grant ${g.grant.slice(0, 12)} again`, onclick: async () => {
        const err = $("#received-error");
        err.textContent = "";
        delete err.dataset.code;
        try { renderReceived(await api("GET", `/received/${g.grant}`)); }
        catch (x) { clear($("#received-box")); err.textContent = x.message; err.dataset.code = x.code; }
      } }, "Open")));
  }
}

// -- the view --------------------------------------------------------------------------------

export function prefill(kind, target) {
  $("#share-kind").value = kind;
  $("#share-target").value = target;
  clear($("#grant-result")).hidden = true;
}

export async function render() {
  try {
    await Promise.all([renderIdentity(), renderContacts(), renderGrants(), renderPolicies(), renderReceivedList()]);
  } catch (e) { toast(e.message); }
  const names = clear($("#share-names"));
  try {
    for (const o of (await api("GET", "/files")).objects) names.append(h("option", { value: o.name }));
  } catch { /* suggestions only */ }
}

export function init() {
  $("#share-form").addEventListener("submit", share);
  $("#contact-form").addEventListener("submit", addContact);
  $("#received-form").addEventListener("submit", openReceived);
  $("#policy-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api("PUT", "/tags/policies", { tag: $("#policy-tag").value.trim(), never_share: true });
      $("#policy-form").reset();
    } catch (x) { toast(x.message); }
    renderPolicies();
  });
  $("#share-kind").addEventListener("change", () => {
    $("#share-target").setAttribute("list", $("#share-kind").value === "tag" ? "" : "share-names");
  });
}
