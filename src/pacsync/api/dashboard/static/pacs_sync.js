"use strict";
(function () {
  const {api, el, toast, statusBadge, busy, csrf} = window.pacsync;
  const root = document.getElementById("sync");
  if (!root) return;
  const pipeline = root.dataset.pipeline;
  const live = document.getElementById("live-status");
  const watched = new Set();
  let source = null;

  // -- the connection test ----------------------------------------------------------------
  const test = document.getElementById("test-connection");
  if (test) test.addEventListener("click", () => busy(test, async () => {
    const out = document.getElementById("test-result");
    out.replaceChildren("Connecting…");
    try {
      const r = await api("POST", "/connections/" + encodeURIComponent(test.dataset.connection) + "/test");
      if (r.status === "ok") {
        out.replaceChildren(el("p", {class: "ok"}, "Connected in " + r.response_ms + " ms: " + r.message));
      } else {
        out.replaceChildren(el("p", {class: "error"}, el("code", {class: "code", text: r.code || "failed"}), " " + r.message),
          r.hint ? el("p", {class: "small", text: "Hint: " + r.hint}) : "");
      }
    } catch (error) { out.replaceChildren(el("p", {class: "error", text: error.message})); }
  }));

  // -- starting syncs -----------------------------------------------------------------------
  for (const button of document.querySelectorAll("button[data-start]")) {
    button.addEventListener("click", () => busy(button, async () => {
      const entity = button.dataset.entity;
      const body = {pipeline, mode: button.dataset.start, entities: entity ? [entity] : []};
      try {
        const r = await api("POST", "/jobs", body);
        watched.add(r.job_id);
        live.dataset.job = r.job_id;
        live.dataset.status = r.status;
        live.textContent = (body.mode === "full" ? "Full" : "Incremental") + " sync " +
          r.job_id.slice(0, 8) + (entity ? " of " + entity : "") + " " + r.status + "…";
        toast("Sync queued: job " + r.job_id.slice(0, 8));
        follow();
      } catch (error) { toast(error.message, "error"); }
    }));
  }

  // -- live progress (server-sent events) -------------------------------------------------
  function follow() {
    if (source) source.close();
    const params = new URLSearchParams({pipeline});
    for (const id of watched) params.append("job", id);
    source = new EventSource("/pacs-sync/events?" + params.toString());
    source.addEventListener("jobs", (event) => show(JSON.parse(event.data).jobs));
  }

  function show(jobs) {
    // the job to show: a watched one first (newest), else any running/queued one
    const mine = jobs.filter((j) => watched.has(j.id));
    const job = mine.find((j) => j.status === "running") || mine.find((j) => j.status === "queued") ||
      jobs.find((j) => j.status === "running") || mine[mine.length - 1] || jobs[0];
    if (!job) return;
    for (const [name, c] of Object.entries(job.entities)) {
      const row = document.querySelector('#entities tr[data-entity="' + CSS.escape(name) + '"]');
      if (!row) continue;
      const bar = row.querySelector("progress");
      const total = c.total || (job.status === "succeeded" ? c.read : null);
      if (total) { bar.max = total; bar.value = Math.min(c.read, total); }
      else { bar.removeAttribute("value"); }
      row.querySelector(".pct").textContent = c.read + (c.total ? " / " + c.total : "");
      for (const key of ["read", "inserted", "updated", "deleted", "failed"]) {
        row.querySelector('[data-count="' + key + '"]').textContent = c[key];
      }
      row.querySelector('[data-count="when"]').replaceChildren(statusBadge(job.status));
    }
    live.dataset.job = job.id;
    live.dataset.status = job.status;
    const counts = Object.entries(job.entities)
      .map(([n, c]) => n + " " + c.read + (c.total ? "/" + c.total : "")).join(", ");
    live.replaceChildren("Job ", el("a", {href: "/jobs/" + job.id, text: job.id.slice(0, 8)}), " ",
      statusBadge(job.status), counts ? " — " + counts : "",
      job.error ? el("span", {class: "error"}, " ", el("code", {text: job.error.code}), " " + job.error.message) : "");
    let history = document.querySelector('#history tr[data-job="' + job.id + '"]');
    if (!history) {
      const body = document.querySelector("#history tbody");
      const empty = body.querySelector("td[colspan]");
      if (empty) empty.parentElement.remove();
      history = el("tr", {"data-job": job.id},
        el("td", {}, el("a", {href: "/jobs/" + job.id}, el("code", {text: job.id.slice(0, 8)}))),
        el("td", {text: job.mode}), el("td", {text: Object.keys(job.entities).join(", ") || "all"}),
        el("td", {"data-field": "status"}), el("td", {text: "api"}), el("td", {text: "now"}),
        el("td", {class: "num", "data-field": "duration"}), el("td", {class: "num", "data-field": "records"}));
      body.prepend(history);
    }
    history.querySelector('[data-field="status"]').replaceChildren(statusBadge(job.status));
    const duration = history.querySelector('[data-field="duration"]');
    if (duration && job.duration_s !== null) duration.textContent = job.duration_s + " s";
    const records = history.querySelector('[data-field="records"]');
    if (records) records.textContent = job.records;
  }

  const active = JSON.parse(root.dataset.active || "[]");
  if (active.length) show(active);
  follow();

  // -- reconciliation -----------------------------------------------------------------------
  const recon = document.getElementById("reconcile");
  if (recon) recon.addEventListener("click", () => busy(recon, async () => {
    const out = document.getElementById("reconciliation");
    out.replaceChildren("Comparing source and target…");
    const response = await fetch("/pacs-sync/reconcile", {method: "POST",
      body: JSON.stringify({pipeline}),
      headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json", Accept: "application/json"}});
    const data = await response.json();
    if (!response.ok) { out.replaceChildren(el("p", {class: "error", text: (data.code ? data.code + " " : "") + data.detail})); return; }
    const list = el("ul", {class: "checklist"});
    for (const r of data.entities) {
      const items = [
        [r.source_rows - r.parked_in_source === r.target_rows - r.parked_in_target,
          "row counts: source " + r.source_rows + ", target " + r.target_rows],
        [r.content_match, "content checksums " + (r.content_match ? "match" : "differ")],
        [r.orphans.every((o) => o.target === 0), "orphans: " + (r.orphans.map((o) => o.field + " " + o.source + "/" + o.target).join(", ") || "none")],
        [r.dead_letters === 0, "dead letters: " + r.dead_letters + " (parked " + r.parked_in_source + ")"],
      ];
      list.append(el("li", {class: r.explained ? "ok" : "error"},
        el("strong", {text: (r.explained ? "✓ " : "✗ ") + r.entity}),
        el("ul", {}, ...items.map(([good, text]) => el("li", {class: good ? "ok" : "warn", text: (good ? "✓ " : "! ") + text})))));
    }
    out.replaceChildren(list);
  }));

  // -- configuration ------------------------------------------------------------------------
  const text = document.getElementById("pipeline-text");
  const result = document.getElementById("config-result");
  const validate = document.getElementById("validate-pipeline");
  if (validate) validate.addEventListener("click", () => busy(validate, async () => {
    try {
      const r = await api("POST", "/pipelines/validate", text.value, "application/yaml");
      result.replaceChildren(r.valid
        ? el("p", {class: "ok", text: "Valid: " + r.name + " (" + r.entities.join(", ") + ")"})
        : el("p", {class: "error"}, el("code", {text: r.error.code}), " " + r.error.message));
    } catch (error) { result.replaceChildren(el("p", {class: "error", text: error.message})); }
  }));
  const save = document.getElementById("save-pipeline");
  if (save) save.addEventListener("click", () => busy(save, async () => {
    try {
      const r = await api("PUT", "/pipelines/" + encodeURIComponent(pipeline), text.value, "application/yaml");
      result.replaceChildren(el("p", {class: "ok", text: "Saved " + r.file}));
    } catch (error) { result.replaceChildren(el("p", {class: "error", text: error.message})); }
  }));
})();
