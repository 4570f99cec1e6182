"use strict";
(function () {
  const {api, toast, statusBadge, busy} = window.pacsync;

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-cancel], button[data-retry], button[data-reprocess], button[data-discard]");
    if (!button) return;
    busy(button, async () => {
      try {
        if (button.dataset.cancel) {
          const r = await api("DELETE", "/jobs/" + button.dataset.cancel);
          toast("Job " + r.id.slice(0, 8) + " " + r.status);
          markEnded(button, r.id, r.status);
        } else if (button.dataset.retry) {
          const r = await api("POST", "/jobs/" + button.dataset.retry + "/retry");
          toast("Queued again as job " + r.job_id.slice(0, 8));
          const note = document.createElement("a");
          note.href = "/jobs/" + r.job_id;
          note.className = "small retried";
          note.dataset.newJob = r.job_id;
          note.textContent = "→ " + r.job_id.slice(0, 8);
          button.after(" ", note);
        } else if (button.dataset.reprocess) {
          const r = await api("POST", "/dead-letters/" + button.dataset.reprocess + "/retry");
          toast("Reprocessing in job " + r.job_id.slice(0, 8));
          button.closest("td, div").replaceChildren("queued as " + r.job_id.slice(0, 8));
        } else if (button.dataset.discard) {
          await api("POST", "/dead-letters/" + button.dataset.discard + "/discard");
          toast("Dead letter " + button.dataset.discard + " discarded");
          button.closest("td, div").replaceChildren("discarded");
        }
      } catch (error) { toast(error.message, "error"); }
    });
  });

  function markEnded(button, id, status) {
    const row = button.closest("tr") || document.getElementById("job");
    if (row) {
      row.dataset.status = status;
      const cell = row.querySelector('[data-field="status"]');
      if (cell) cell.replaceChildren(statusBadge(status));
    }
    const retry = document.createElement("button");
    retry.type = "button";
    retry.dataset.retry = id;
    retry.textContent = "Retry";
    retry.setAttribute("aria-label", "Retry job " + id.slice(0, 8));
    button.replaceWith(retry);
    retry.focus();
  }

  // live progress of the active jobs listed
  const rows = [...document.querySelectorAll('#jobs tr[data-job]')].filter((r) =>
    r.dataset.status === "queued" || r.dataset.status === "running");
  const single = document.getElementById("job");
  const ids = rows.map((r) => r.dataset.job);
  if (single && (single.dataset.status === "queued" || single.dataset.status === "running")) ids.push(single.dataset.job);
  if (!ids.length) return;
  const params = new URLSearchParams();
  for (const id of ids) params.append("job", id);
  const source = new EventSource("/pacs-sync/events?" + params.toString());
  source.addEventListener("jobs", (event) => {
    for (const job of JSON.parse(event.data).jobs) {
      const row = document.querySelector('#jobs tr[data-job="' + job.id + '"]');
      if (!row) { if (single && single.dataset.job === job.id && single.dataset.status !== job.status) location.reload(); continue; }
      if (row.dataset.status === "cancelled") continue;
      row.dataset.status = job.status;
      row.querySelector('[data-field="status"]').replaceChildren(statusBadge(job.status));
      const total = Object.values(job.entities).reduce((s, e) => s + (e.total || 0), 0);
      const cell = row.querySelector('[data-field="progress"]');
      const bar = document.createElement("progress");
      bar.setAttribute("aria-label", "progress of " + job.id.slice(0, 8));
      if (total) { bar.max = total; bar.value = Math.min(job.records, total); }
      cell.replaceChildren(bar, " " + job.records + (total ? " / " + total : ""));
    }
  });
})();
