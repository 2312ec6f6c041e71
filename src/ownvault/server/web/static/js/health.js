// Health: the vault's status, files at risk first, providers as a table and as a world
// view grouped by jurisdiction, and a repair button with live progress (a background job).
import { api } from "./api.js";
import { h, $, clear, size, when, toast, confirmDialog } from "./dom.js";

const CONTINENTS = {
  Europe: "AD AL AT BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GI GR HR HU IE IM IS IT LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SK SM UA VA XK EU",
  Americas: "AG AR BB BO BR BS BZ CA CL CO CR CU DM DO EC GD GT GY HN HT JM KN LC MX NI PA PE PR PY SR SV TT US UY VC VE",
  "Asia and Pacific": "AE AF AM AU AZ BD BH BN BT CN FJ GE HK ID IL IN IQ IR JO JP KG KH KR KW KZ LA LB LK MM MN MO MV MY NP NZ OM PG PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN WS YE",
  Africa: "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG ML MR MU MW MZ NA NE NG RW SC SD SL SN SO SS ST SZ TD TG TN TZ UG ZA ZM ZW",
};
function continentOf(code) {
  for (const [name, codes] of Object.entries(CONTINENTS)) if (codes.split(" ").includes(code)) return name;
  return "Unspecified or elsewhere";
}
const LABEL = { ok: "healthy", degraded: "degraded", unreadable: "unreadable", down: "unreachable", stale: "stale" };
const STATE = { healthy: "Healthy", unverified: "Unverified", degraded: "Degraded", "at-risk": "At risk", damaged: "Data lost" };
const SAYS = {
  healthy: (d) => `all ${d.files.length} file(s) present on ${d.providers.length} provider(s) and audited.`,
  unverified: (d) => `all ${d.files.length} file(s) present, not yet proved by an audit.`,
  degraded: (d, n) => `${n || "no"} file(s) short of shares; still readable. Checked ${when(d.checked_at)}.`,
  "at-risk": (d, n) => `${n} file(s) one loss away from unreadable. Checked ${when(d.checked_at)}.`,
  damaged: (d) => `some files cannot be read: ${d.health.pieces_lost} piece(s) below k shares.`,
};

const AUDIT = { ok: ["ok", "passed"], failing: ["unreadable", "failing"], unreachable: ["down", "unreachable"], empty: ["empty", "held nothing"] };

function auditCell(a) {
  if (!a) return h("span", { class: "muted" }, "never");
  const [cls, label] = AUDIT[a.verdict] || ["degraded", a.verdict];
  const detail = `${a.passed} of ${a.challenges} challenge(s) passed` + (a.missing_shares ? `, ${a.missing_shares} share(s) missing` : "")
    + (a.holds_at_least !== null ? `; holds ≥ ${(a.holds_at_least * 100).toFixed(1)}% of its blocks` : "");
  return h("span", { dataset: { verdict: a.verdict } }, h("span", { class: `pill ${cls}`, title: detail }, label),
    h("div", { class: "muted" }, when(a.at)), h("div", { class: "muted wide" }, detail));
}

let timer = 0;
let active = false;

export async function render() {
  let doc;
  try { doc = await api("GET", "/health"); } catch (e) { toast(e.message); return; }
  // The banner is the vault's one verdict (the API's `health`, as `ownvault check` and
  // `ownvault status` print it); data-status keeps the file check's own result.
  const v = doc.health;
  const banner = clear($("#health-banner"));
  banner.className = `banner ${v.state}`;
  banner.dataset.state = v.state;
  banner.dataset.status = doc.status;
  const atRisk = doc.files.filter((f) => !f.healthy).length;
  banner.append(h("div", { class: "verdict" }, `${STATE[v.state]}: ${SAYS[v.state](doc, atRisk)}`),
    v.reasons.length ? h("ul", {}, v.reasons.map((r) => h("li", {}, r))) : "");
  const machine = $("#health-machine");
  machine.dataset.survives = String(doc.machine_loss.survives);
  machine.textContent = doc.machine_loss.summary;
  const advice = clear($("#health-advice"));
  for (const line of v.advice) if (line !== "nothing to do") advice.append(h("li", {}, line));

  const files = clear($("#health-files"));
  for (const f of doc.files) {
    const st = f.healthy ? "ok" : f.readable ? "degraded" : "unreadable";
    files.append(h("li", { dataset: { name: f.name, status: st } },
      h("span", { class: `pill ${st}` }, st === "ok" ? "all shares" : LABEL[st]), " ", h("strong", {}, f.name), ` v${f.version}: `,
      `${f.shares_present} of ${f.shares_total} shares (needs ${f.shares_needed})`,
      f.policy_ok ? "" : h("div", { class: "muted" }, `policy: ${f.policy_violations.join("; ")}`),
      f.missing.length ? h("div", { class: "muted" }, `missing on: ${[...new Set(f.missing.map((m) => m.provider))].join(", ")}`) : ""));
  }
  if (!doc.files.length) files.append(h("li", {}, "No files stored yet."));

  const tbody = clear($("#providers-table tbody"));
  const stale = new Set(v.stale_providers.map((s) => s.name));
  for (const p of doc.providers) {
    if (stale.has(p.name) && p.status !== "down") p.status = "stale";
    tbody.append(h("tr", { dataset: { provider: p.name, status: p.status } },
      h("td", { class: "name-cell" }, h("strong", {}, p.name), h("div", { class: "muted wide" }, p.location)),
      h("td", {}, p.kind), h("td", {}, p.jurisdiction || "-"),
      h("td", {}, h("span", { class: `pill ${p.reachable ? "ok" : "down"}` }, p.reachable ? `yes${p.latency_ms !== null ? ` (${Math.round(p.latency_ms)} ms)` : ""}` : "no"),
        p.error ? h("div", { class: "muted" }, p.error) : ""),
      h("td", { class: "num" }, String(p.shares)), h("td", { class: "num" }, size(p.bytes)),
      h("td", {}, h("span", { class: `pill ${p.status}` }, p.missing_shares ? `${p.missing_shares} missing` : LABEL[p.status])),
      h("td", { class: "audit-cell" }, auditCell(p.last_audit)),
      h("td", { class: "num" }, h("button", { type: "button", class: "danger", "aria-label": `Remove provider ${p.name}`,
        onclick: () => removeProvider(p) }, "Remove"))));
  }

  const world = clear($("#world"));
  const groups = new Map();
  for (const r of doc.regions) {
    const c = continentOf(r.jurisdiction);
    if (!groups.has(c)) groups.set(c, []);
    groups.get(c).push(r);
  }
  const byName = new Map(doc.providers.map((p) => [p.name, p]));
  for (const [continent, regions] of groups) {
    world.append(h("section", { class: "continent", "aria-label": continent }, h("h4", {}, continent),
      regions.map((r) => h("div", { class: "country" },
        h("span", { class: "code" }, r.jurisdiction === "??" ? "—" : r.jurisdiction),
        r.providers.map((n) => {
          const p = byName.get(n);
          return h("span", { class: "row" }, h("span", { class: `dot ${p.status}`, role: "img", "aria-label": `${n}: ${LABEL[p.status]}` }), n);
        }),
        h("span", { class: "muted" }, `${r.shares} shares, ${size(r.bytes)}`)))));
  }
  $("#policy-text").textContent = doc.policy;
  $("#health-runs").textContent = [
    doc.last_audit ? `Last audit ${when(doc.last_audit.at)}.` : "No audit has run yet: press Audit now.",
    doc.last_repair ? `Last repair ${when(doc.last_repair.at)}.` : "",
  ].join(" ");
  if (!policyLoaded) await loadPolicy();
}

// -- providers and the placement policy (the API's POST/DELETE /providers, PUT /policy) ----------

let policyLoaded = false;
const codes = (text) => text.split(/[\s,]+/).map((c) => c.trim().toUpperCase()).filter(Boolean);

async function loadPolicy() {
  const doc = await api("GET", "/policy");
  const p = doc.policy;
  $("#policy-k").value = p.k; $("#policy-n").value = p.n;
  $("#policy-exclude").value = p.exclude.join(", "); $("#policy-only").value = p.jurisdictions.join(", ");
  $("#policy-max-j").value = p.max_per_jurisdiction ?? "";
  $("#policy-survive").checked = p.survive_jurisdiction_loss;
  policyLoaded = true;
}

async function savePolicy(e) {
  e.preventDefault();
  const err = $("#policy-error");
  err.textContent = "";
  const maxJ = $("#policy-max-j").value;
  const body = {
    k: Number($("#policy-k").value), n: Number($("#policy-n").value),
    exclude: codes($("#policy-exclude").value), jurisdictions: codes($("#policy-only").value),
    max_per_jurisdiction: maxJ ? Number(maxJ) : null, survive_jurisdiction_loss: $("#policy-survive").checked,
  };
  try {
    const r = await api("PUT", "/policy", body);
    toast(r.packs_out_of_policy ? `Policy saved: ${r.packs_out_of_policy} piece(s) out of line; press Rebalance` : "Policy saved");
    policyLoaded = false;
  } catch (x) { err.textContent = x.message; }
  await render();
}

async function addProvider(e) {
  e.preventDefault();
  const err = $("#provider-error");
  err.textContent = "";
  const body = { name: $("#provider-name").value.trim(), url: $("#provider-url").value.trim() };
  const j = $("#provider-jurisdiction").value.trim().toUpperCase();
  if (j) body.jurisdiction = j;
  const button = $("#provider-form button");
  button.disabled = true;
  try {
    const r = await api("POST", "/providers", body);
    toast(`Added ${r.name} (${r.kind})`);
    $("#provider-form").reset();
  } catch (x) { err.textContent = x.message; }
  button.disabled = false;
  await render();
}

async function removeProvider(p) {
  if (!(await confirmDialog(`Remove ${p.name}? Its shares are moved to other providers first (that can take a while).`, "Remove"))) return;
  const status = $("#repair-status");
  status.textContent = `Removing ${p.name}…`;
  try {
    const r = await api("DELETE", `/providers/${encodeURIComponent(p.name)}`);
    status.textContent = `Removed ${p.name}: ${r.shares_moved ?? 0} share(s) moved, ${r.shares_regenerated ?? 0} regenerated.`;
  } catch (x) { status.textContent = `Could not remove ${p.name}: ${x.message}`; }
  await render();
}

async function runJob(kind) {
  const button = $({ rebalance: "#rebalance", audit: "#audit-now", deep_check: "#deep-check" }[kind] || "#repair");
  const bar = $("#repair-progress");
  const status = $("#repair-status");
  button.disabled = true;
  bar.hidden = false;
  bar.removeAttribute("value");
  status.dataset.kind = kind;
  delete status.dataset.state;
  try {
    let job = await api("POST", "/jobs", { kind });
    status.textContent = `${kind}: running…`;
    while (job.state === "running") {
      await new Promise((r) => setTimeout(r, 300));
      job = await api("GET", `/jobs/${job.id}`);
      if (job.total) { bar.max = job.total; bar.value = job.done; status.textContent = `${kind}: ${job.done} of ${job.total}`; }
    }
    if (job.state === "failed") throw new Error(job.error.message);
    const r = job.result || {};
    status.textContent = {
      rebalance: () => `Rebalance done: ${r.shares_moved} share(s) moved, ${r.shares_regenerated} regenerated${r.failures.length ? `, ${r.failures.length} failure(s)` : ""}.`,
      repair: () => `Repair done: ${r.shares_regenerated} share(s) regenerated (${r.shares_moved} moved elsewhere) in ${r.packs_repaired} of ${r.packs_checked} piece(s)`
        + (r.lost_names.length ? `; lost: ${r.lost_names.join(", ")}` : "") + (r.failures.length ? `; ${r.failures.length} failure(s)` : "") + ".",
      deep_check: () => `Deep check done: ${r.shares_verified} share(s) read and verified, ${r.shares_bad} bad${r.shares_bad ? ": press Repair" : ""}.`,
      audit: () => `Audit done: ${r.ok ? "every provider passed" : `failing: ${r.at_fault.join(", ") || "none"}; unreachable: ${r.unreachable.join(", ") || "none"}`}.`,
    }[kind]?.() || `${kind} done.`;
    status.dataset.state = "done";
  } catch (e) {
    status.textContent = `${kind} failed: ${e.message}`;
    status.dataset.state = "failed";
  }
  bar.hidden = true;
  button.disabled = false;
  await render();
}

export function init() {
  $("#health-refresh").addEventListener("click", render);
  $("#repair").addEventListener("click", () => runJob("repair"));
  $("#audit-now").addEventListener("click", () => runJob("audit"));
  $("#deep-check").addEventListener("click", () => runJob("deep_check"));
  $("#rebalance").addEventListener("click", () => runJob("rebalance"));
  $("#policy-edit").addEventListener("submit", savePolicy);
  $("#provider-form").addEventListener("submit", addProvider);
}

export function show(on) {
  active = on;
  clearInterval(timer);
  if (on) timer = setInterval(() => { if (active && !document.hidden) render(); }, 5000);
}
