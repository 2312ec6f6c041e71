// The web UI's entry point: the session (token from #token=… or a login), the router.
import { api, setToken, token } from "./api.js";
import { $, toast } from "./dom.js";
import * as backups from "./backups.js";
import * as files from "./files.js";
import * as health from "./health.js";
import * as published from "./published.js";
import * as recovery from "./recovery.js";
import * as sharing from "./sharing.js";

const VIEWS = { files, published, sharing, backups, health, recovery };

function takeTokenFromFragment() {
  const m = location.hash.match(/(?:^#|&)token=([A-Za-z0-9_-]+)/);
  if (!m) return;
  setToken(m[1]);
  history.replaceState(null, "", location.pathname + location.search + "#/files");
}

function current() {
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  return name in VIEWS ? name : "files";
}

async function route() {
  const loggedIn = Boolean(token());
  $("#nav").hidden = !loggedIn;
  $("#logout").hidden = !loggedIn;
  for (const s of document.querySelectorAll(".view")) s.hidden = true;
  if (!loggedIn) { $("#view-login").hidden = false; $("#login-pass").focus(); return; }
  const name = current();
  $(`#view-${name}`).hidden = false;
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  for (const [n, v] of Object.entries(VIEWS)) if (v.show) v.show(n === name);
  document.title = `ownvault · ${name}`;
  await VIEWS[name].render();
}

async function startSession() {
  // Exchange the token for the download cookie (GET only; changes always need the header).
  try { await api("POST", "/session"); }
  catch (e) {
    if (e.status === 401) { setToken(null); toast("The session has ended: log in again"); }
  }
}

async function main() {
  takeTokenFromFragment();
  files.init(); health.init(); recovery.init(); sharing.init();
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#login-error").textContent = "";
    try {
      const doc = await api("POST", "/session", { passphrase: $("#login-pass").value });
      setToken(doc.token);
      $("#login-pass").value = "";
      location.hash = "#/files";
      await route();
    } catch (err) { $("#login-error").textContent = err.message; }
  });
  $("#logout").addEventListener("click", async () => {
    try { await api("DELETE", "/session"); } catch { /* already gone */ }
    setToken(null);
    await route();
  });
  window.addEventListener("hashchange", route);
  if (token()) await startSession();
  await route();
  document.body.dataset.ready = "true";
}

main();
