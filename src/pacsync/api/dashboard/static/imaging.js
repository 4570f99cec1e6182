"use strict";
(function () {
  const {api, el, toast, busy} = window.pacsync;
  const input = document.getElementById("q");
  const modality = document.getElementById("modality");
  const table = document.getElementById("results");
  const body = table.querySelector("tbody");
  const status = document.getElementById("search-status");
  let timer = null;
  let asked = 0;

  function criteria(text) {
    const q = text.trim();
    if (!q) return null;
    const params = new URLSearchParams({limit: "50"});
    // an ID has digits and no separators of a name; anything else is a name prefix
    if (/\d/.test(q) && !/[\s^,]/.test(q)) params.set("PatientID", q + "*");
    else params.set("PatientName", q.replace(/,\s*/g, "^").replace(/\s+/g, "^") + "*");
    if (modality.value) params.set("ModalitiesInStudy", modality.value);
    return params;
  }

  async function search() {
    const params = criteria(input.value);
    const mine = ++asked;
    if (!params) { table.hidden = true; status.textContent = ""; return; }
    const began = performance.now();
    try {
      const rows = await api("GET", "/search/study?" + params.toString());
      if (mine !== asked) return;  // a newer keystroke has asked since
      const ms = Math.round(performance.now() - began);
      status.textContent = rows.length + (rows.length === 1 ? " study" : " studies") + " in " + ms + " ms";
      body.replaceChildren(...rows.map(row));
      table.hidden = rows.length === 0;
    } catch (error) { if (mine === asked) status.textContent = error.message; }
  }

  function row(s) {
    const href = "/imaging/studies/" + encodeURIComponent(s.StudyInstanceUID);
    return el("tr", {},
      el("th", {scope: "row"}, el("a", {href, text: (s.PatientName || "(no name)").replace(/\^/g, " ")})),
      el("td", {text: s.PatientID || ""}), el("td", {text: s.PatientBirthDate || ""}),
      el("td", {text: s.StudyDate || ""}), el("td", {text: s.ModalitiesInStudy || ""}),
      el("td", {text: s.StudyDescription || ""}),
      el("td", {class: "num", text: (s.NumberOfStudyRelatedSeries || 0) + " / " + (s.NumberOfStudyRelatedInstances || 0)}),
      el("td", {text: s.archive || s.Archive || ""}));
  }

  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 120); });
  modality.addEventListener("change", search);
  document.getElementById("patient-search").addEventListener("submit", (e) => { e.preventDefault(); search(); });

  for (const button of document.querySelectorAll("button[data-scan]")) {
    button.addEventListener("click", () => busy(button, async () => {
      try {
        const full = button.dataset.full ? "?full=true" : "";
        const r = await api("POST", "/archives/" + encodeURIComponent(button.dataset.scan) + "/scan" + full);
        toast("Scan queued: job " + r.job_id.slice(0, 8));
      } catch (error) { toast(error.message, "error"); }
    }));
  }
})();

// scans of the archives, live: the active archive-scan jobs and their files so far
(function () {
  const {el, statusBadge} = window.pacsync;
  const list = document.getElementById("scans");
  if (!list || !window.EventSource) return;
  const source = new EventSource("/pacs-sync/events");
  source.addEventListener("jobs", (event) => {
    const scans = JSON.parse(event.data).jobs.filter((j) => j.kind === "archive-scan");
    if (!scans.length) { list.replaceChildren(el("li", {text: "No scan is running."})); return; }
    list.replaceChildren(...scans.map((s) => {
      const total = Object.values(s.entities).reduce((n, e) => n + (e.total || 0), 0);
      const bar = el("progress", {"aria-label": "scan of " + s.pipeline});
      if (total) { bar.max = total; bar.value = Math.min(s.records, total); }
      return el("li", {}, el("a", {href: "/jobs/" + s.id, text: s.pipeline}), " ",
        statusBadge(s.status), " ", bar, " " + s.records + (total ? " / " + total : "") + " files");
    }));
  });
})();
