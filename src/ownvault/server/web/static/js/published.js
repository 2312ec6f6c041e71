// Published content: each publication with its ipfs:// address, gateway link and copy buttons.
import { api } from "./api.js";
import { h, $, clear, when, toast, copy } from "./dom.js";

export async function render() {
  const list = clear($("#pub-list"));
  let doc;
  try { doc = await api("GET", "/published"); } catch (e) { toast(e.message); return; }
  if (!doc.published.length) list.append(h("li", {}, "Nothing is published. Open a file's details and switch on “Public on IPFS”."));
  for (const p of doc.published) {
    const link = `${location.origin}${p.gateway}`;
    list.append(h("li", { dataset: { name: p.name } },
      h("strong", {}, p.name), ` v${p.version} · since ${when(p.published_at)}`,
      h("div", {}, h("code", { class: "cid" }, p.url)),
      h("div", { class: "row" },
        h("a", { href: link, target: "_blank", rel: "noopener noreferrer" }, "Open on the gateway"),
        h("button", { type: "button", class: "secondary", onclick: () => copy(p.url), "aria-label": `Copy the ipfs address of ${p.name}` }, "Copy ipfs://"),
        h("button", { type: "button", class: "secondary", "aria-label": `Unpublish ${p.name}`, onclick: async () => {
          try { await api("POST", "/unpublish", { target: p.cid }); toast("No longer public"); } catch (e) { toast(e.message); }
          render();
        } }, "Unpublish"))));
  }
}
