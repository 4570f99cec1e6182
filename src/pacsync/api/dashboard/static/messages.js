"use strict";
(function () {
  const {api, el, statusBadge, when, busy, role} = window.pacsync;
  const form = document.getElementById("feed-filters");
  const feed = document.querySelector("#feed tbody");
  const failed = document.querySelector("#failed tbody");
  const updated = document.getElementById("feed-updated");
  const operator = role === "operator" || role === "admin";

  function messageRow(m) {
    return el("tr", {"data-message": m.id},
      el("td", {}, el("a", {href: "/messages/" + m.id, text: m.id})), el("td", {text: when(m.received_at)}),
      el("td", {}, el("code", {text: m.type})), el("td", {}, el("code", {text: m.control_id})),
      el("td", {text: m.sender}), el("td", {}, m.ack ? el("span", {class: "ack ack-" + m.ack, text: m.ack}) : "—"),
      el("td", {}, statusBadge(m.state)), el("td", {text: m.patient_id || ""}));
  }

  async function load() {
    const params = new URLSearchParams({limit: "50"});
    for (const name of ["type", "status", "control_id"]) {
      const value = form.elements[name].value.trim();
      if (value) params.set(name, value);
    }
    try {
      const page = await api("GET", "/messages?" + params.toString());
      feed.replaceChildren(...(page.items.length ? page.items.map(messageRow)
        : [el("tr", {}, el("td", {colspan: 8, text: "No messages match."}))]));
      updated.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) { feed.replaceChildren(el("tr", {}, el("td", {colspan: 8, text: error.message}))); }
  }

  async function loadFailed() {
    try {
      const page = await api("GET", "/messages?status=failed&limit=50");
      failed.replaceChildren(...(page.items.length ? page.items.map((m) => el("tr", {},
        el("td", {}, el("a", {href: "/messages/" + m.id, text: m.id})), el("td", {text: when(m.received_at)}),
        el("td", {}, el("code", {text: m.type})), el("td", {}, el("code", {text: m.control_id})),
        el("td", {class: "small", text: m.error ? (m.error.code || "") + " " + (m.error.message || "") : (m.reason || "")}),
        operator ? el("td", {}, el("button", {type: "button", "data-reprocess-message": m.id, "aria-label": "Reprocess message " + m.id, text: "Reprocess"})) : null))
        : [el("tr", {}, el("td", {colspan: 6, text: "No failed messages."}))]));
    } catch (error) { failed.replaceChildren(el("tr", {}, el("td", {colspan: 6, text: error.message}))); }
  }

  async function reprocess(ids, button) {
    const out = document.getElementById("reprocess-result");
    await busy(button, async () => {
      try {
        const r = await api("POST", "/messages/reprocess", {ids});
        out.textContent = r.requeued + " messages queued for processing again.";
        loadFailed();
      } catch (error) { out.textContent = error.message; }
    });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-reprocess-message]");
    if (button) reprocess([Number(button.dataset.reprocessMessage)], button);
  });
  const all = document.getElementById("reprocess-all");
  if (all) all.addEventListener("click", () => reprocess([], all));
  form.addEventListener("input", () => { clearTimeout(load.timer); load.timer = setTimeout(load, 250); });
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
  loadFailed();
  setInterval(() => { if (document.getElementById("m-live").checked && !document.hidden) load(); }, 3000);
})();
