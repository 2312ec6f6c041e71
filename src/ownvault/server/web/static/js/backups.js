// Backups: each profile's state (last run, result, next run, size, what changed), its
// recent runs, a retention preview (what `backup forget --dry-run` would keep and remove)
// and "Run now". The same API as `ownvault backup ls|run|forget --dry-run`.
import { api } from "./api.js";
import { h, $, clear, size, when, toast } from "./dom.js";

function status(p) {
  if (p.last_run && p.last_run.result === "failed") return "failed";
  if (p.overdue) return "overdue";
  return p.last_run ? "ok" : "never";
}

const LABEL = { ok: "OK", failed: "Failed", overdue: "Overdue", never: "Never run" };
const PILL = { ok: "ok", failed: "down", overdue: "degraded", never: "empty" };

function changed(r) {
  return r && r.result === "ok" ? `+${r.added} ~${r.changed} −${r.removed}` : "-";
}

async function showRuns(p, box) {
  clear(box);
  let doc;
  try { doc = await api("GET", `/backups/${encodeURIComponent(p.name)}/runs?limit=10`); } catch (e) { toast(e.message); return; }
  const rows = doc.runs.map((r) => h("tr", { dataset: { result: r.result } },
    h("td", {}, when(r.started)),
    h("td", {}, h("span", { class: `pill ${r.result === "ok" ? "ok" : "down"}` }, r.result)),
    h("td", {}, r.version === null ? "-" : `v${r.version}`),
    h("td", { class: "num" }, size(r.bytes)),
    h("td", {}, changed(r)),
    h("td", {}, r.error || (r.forgotten ? `${r.forgotten} old version(s) forgotten` : ""))));
  box.append(h("table", { class: "list runs", "aria-label": `Runs of ${p.name}` },
    h("thead", {}, h("tr", {}, ["Started", "Result", "Version", "Size", "Changed", "Note"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows)));
}

async function showPreview(p, box) {
  clear(box);
  let doc;
  try { doc = await api("GET", `/backups/${encodeURIComponent(p.name)}/forget-preview`); } catch (e) { toast(e.message); return; }
  const row = (k, verdict) => h("tr", { dataset: { version: k.version, verdict } },
    h("td", {}, `v${k.version}`), h("td", {}, when(k.time)),
    h("td", {}, verdict === "keep" ? "keep" : "would remove"),
    h("td", {}, (k.reasons || []).join(", ")));
  box.append(h("p", {}, `Retention: ${doc.policy}.`),
    h("table", { class: "list preview", "aria-label": `Retention preview of ${p.name}` },
      h("thead", {}, h("tr", {}, ["Version", "Made", "", "Why"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, doc.keep.map((k) => row(k, "keep")), doc.remove.map((k) => row(k, "remove")))));
}

function card(p) {
  const st = status(p);
  const detail = h("div", { class: "detail" });
  const r = p.last_run;
  const runNow = h("button", { type: "button", class: "run-now", "aria-label": `Run ${p.name} now` }, "Run now");
  runNow.addEventListener("click", async () => {
    runNow.disabled = true;
    runNow.textContent = "Running…";
    try {
      const run = await api("POST", `/backups/${encodeURIComponent(p.name)}/run`);
      toast(run.result === "ok" ? `${p.name}: version ${run.version} stored` : `${p.name} failed: ${run.error}`);
    } catch (e) { toast(e.message); }
    await render();
  });
  return h("li", { dataset: { name: p.name, status: st } },
    h("span", { class: `pill ${PILL[st]}` }, LABEL[st]), " ", h("strong", {}, p.name),
    ` · ${p.source} → ${p.dest} · every ${p.every}`,
    h("div", {},
      r ? `Last run ${when(r.started)}: ${r.result === "ok" ? `${size(r.bytes)}, ${r.files} files, changed ${changed(r)}` : r.error}.` : "Not run yet.",
      ` Next run ${when(p.next_run)}.`),
    h("div", { class: "muted" }, p.retention_text, p.excludes.length ? ` · excludes ${p.excludes.join(" ")}` : ""),
    h("div", { class: "row" }, runNow,
      h("button", { type: "button", class: "secondary", "aria-label": `Runs of ${p.name}`, onclick: () => showRuns(p, detail) }, "Runs"),
      h("button", { type: "button", class: "secondary", "aria-label": `Retention preview of ${p.name}`, onclick: () => showPreview(p, detail) }, "Retention preview")),
    detail);
}

export async function render() {
  const list = clear($("#backup-list"));
  let doc;
  try { doc = await api("GET", "/backups"); } catch (e) { toast(e.message); return; }
  if (!doc.profiles.length) {
    list.append(h("li", {}, "No backup profiles yet. Add one: ", h("code", {}, "ownvault backup add docs ~/Documents --every 6h --keep-daily 7")));
  }
  for (const p of doc.profiles) list.append(card(p));
  const bad = doc.profiles.filter((p) => status(p) === "failed" || status(p) === "overdue");
  const banner = $("#backup-banner");
  banner.dataset.status = bad.length ? "attention" : "ok";
  banner.className = `banner ${bad.length ? "down" : "ok"}`;
  banner.textContent = bad.length
    ? `Needs a look: ${bad.map((p) => `${p.name} (${LABEL[status(p)].toLowerCase()})`).join(", ")}`
    : doc.profiles.length ? "Every backup ran on time." : "No backups configured.";
}
