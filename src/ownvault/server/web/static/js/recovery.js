// The recovery kit: the phrase, or SLIP-39 guardian shares, each after the passphrase is
// entered again; printed by the print stylesheet (one page per guardian share). The words
// live only in this page's DOM while shown: never in a URL, storage or a log.
import { api } from "./api.js";
import { h, $, clear } from "./dom.js";

function hidePhrase() { clear($("#phrase-words")); $("#phrase-box").hidden = true; }
function hideGuardians() { clear($("#guardian-cards")); $("#guardians-box").hidden = true; }

function guardianCard(did, threshold, count, index, mnemonic) {
  const words = mnemonic.split(" ");
  return h("section", { class: "guardian-card", "aria-label": `Guardian share ${index} of ${count}` },
    h("h3", {}, `ownvault guardian share ${index} of ${count}`),
    h("p", {}, `Any ${threshold} of these ${count} shares recover the vault `, h("code", {}, did),
      `. Fewer reveal nothing. Keep this page private and offline; do not copy it into a computer.`),
    h("ol", { class: "words", "aria-label": `Words of guardian share ${index}` }, words.map((w) => h("li", {}, w))),
    h("p", { class: "muted" }, `SLIP-39, ${words.length} words. To recover: `,
      h("code", {}, "ownvault recover --guardian-shares FILE… --provider URL"), ` with ${threshold} shares. Made ${new Date().toLocaleDateString()}.`));
}

export function init() {
  $("#phrase-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#phrase-error").textContent = "";
    try {
      const doc = await api("POST", "/recovery/phrase", { passphrase: $("#phrase-pass").value });
      hideGuardians();
      const ol = clear($("#phrase-words"));
      for (const w of doc.phrase.split(" ")) ol.append(h("li", {}, w));
      $("#phrase-box").hidden = false;
    } catch (err) { $("#phrase-error").textContent = err.message; }
    $("#phrase-pass").value = "";
  });
  $("#phrase-print").addEventListener("click", () => window.print());
  $("#phrase-hide").addEventListener("click", hidePhrase);

  $("#guardians-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#guardians-error").textContent = "";
    const threshold = Number($("#guardians-threshold").value);
    const shares = Number($("#guardians-count").value);
    try {
      const [doc, me] = await Promise.all([
        api("POST", "/recovery/guardians", { passphrase: $("#guardians-pass").value, threshold, shares }),
        api("GET", "/identity"),
      ]);
      hidePhrase();
      const box = clear($("#guardian-cards"));
      const [group] = doc.groups;
      group.mnemonics.forEach((m, i) => box.append(guardianCard(me.did, group.threshold, group.shares, i + 1, m)));
      $("#guardians-box").hidden = false;
    } catch (err) { $("#guardians-error").textContent = err.message; }
    $("#guardians-pass").value = "";
  });
  $("#guardians-print").addEventListener("click", () => window.print());
  $("#guardians-hide").addEventListener("click", hideGuardians);
}

export function show(on) {
  if (!on) { hidePhrase(); hideGuardians(); }
}
export function render() {}
