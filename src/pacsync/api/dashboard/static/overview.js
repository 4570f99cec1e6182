"use strict";
(async function () {
  const {api, el, statusBadge} = window.pacsync;
  const badge = document.getElementById("health-status");
  const body = document.querySelector("#health-table tbody");
  let data;
  try {
    data = await api("GET", "/ready");
  } catch (error) {
    data = error.data && error.data.status ? error.data : null;
    if (!data) { badge.textContent = "UNKNOWN"; body.replaceChildren(el("tr", {}, el("td", {colspan: 3, text: error.message}))); return; }
  }
  badge.textContent = data.status;
  badge.className = "health health-" + data.status;
  const rows = data.checks.map((c) => el("tr", {},
    el("th", {scope: "row"}, c.name, c.detail ? el("div", {class: "small muted", text: c.detail}) : null),
    el("td", {}, statusBadge(c.status === "up" ? "HEALTHY" : "UNHEALTHY")),
    el("td", {class: "num", text: c.response_ms === null ? "—" : c.response_ms.toFixed(1)})));
  for (const n of data.dicom_nodes || []) {
    rows.push(el("tr", {}, el("th", {scope: "row"}, "DICOM node " + n.name,
      n.reasons.length ? el("div", {class: "small muted", text: n.reasons.join("; ")}) : null),
    el("td", {}, statusBadge(n.status)), el("td", {class: "num", text: n.echo_ms === null ? "—" : n.echo_ms.toFixed(1)})));
  }
  body.replaceChildren(...rows);
})();
