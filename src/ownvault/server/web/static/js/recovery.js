// The recovery kit: the phrase after the passphrase is entered again; print it.
import { api } from "./api.js";
import { h, $, clear } from "./dom.js";

export function init() {
  $("#phrase-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#phrase-error").textContent = "";
    try {
      const doc = await api("POST", "/recovery/phrase", { passphrase: $("#phrase-pass").value });
      const ol = clear($("#phrase-words"));
      for (const w of doc.phrase.split(" ")) ol.append(h("li", {}, w));
      $("#phrase-box").hidden = false;
    } catch (err) { $("#phrase-error").textContent = err.message; }
    $("#phrase-pass").value = "";
  });
  $("#phrase-print").addEventListener("click", () => window.print());
  $("#phrase-hide").addEventListener("click", () => { clear($("#phrase-words")); $("#phrase-box").hidden = true; });
}

export function show(on) {
  if (!on) { clear($("#phrase-words")); $("#phrase-box").hidden = true; }
}
export function render() {}
