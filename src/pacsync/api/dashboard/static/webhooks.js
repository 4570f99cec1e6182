"use strict";
(function () {
  const {api, el, toast, busy} = window.pacsync;
  const form = document.getElementById("new-webhook");
  if (form) form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("new-result");
    const events = [...form.querySelectorAll('input[name="events"]:checked')].map((i) => i.value);
    const pipelines = [...form.querySelector("#wh-pipelines").selectedOptions].map((o) => o.value);
    const body = {url: form.url.value.trim(), events, pipelines,
      description: form.description.value.trim() || null};
    if (!events.length) { out.replaceChildren(el("p", {class: "error", text: "Choose at least one event."})); return; }
    try {
      const r = await api("POST", "/webhooks", body);
      out.replaceChildren(el("div", {class: "ok"},
        el("p", {}, "Webhook added: ", el("a", {href: "/webhooks/" + r.id, text: r.url})),
        el("p", {}, "Signing secret (shown once; give it to the receiver): "),
        el("code", {class: "secret wrap", id: "webhook-secret", text: r.secret})));
      form.reset();
    } catch (error) { out.replaceChildren(el("p", {class: "error", text: error.message})); }
  });

  const hook = document.getElementById("hook");
  if (!hook) return;
  const id = hook.dataset.webhook;
  const out = document.getElementById("hook-result");
  const retry = document.getElementById("retry-deliveries");
  retry.addEventListener("click", () => busy(retry, async () => {
    try {
      const r = await api("POST", "/webhooks/" + id + "/retry");
      out.textContent = r.requeued.length + " deliveries queued again.";
      if (r.requeued.length) setTimeout(() => location.reload(), 1500);
    } catch (error) { out.textContent = error.message; }
  }));
  const remove = document.getElementById("delete-webhook");
  remove.addEventListener("click", () => busy(remove, async () => {
    if (!confirm("Delete this webhook and its delivery log?")) return;
    try { await api("DELETE", "/webhooks/" + id); location.href = "/webhooks"; }
    catch (error) { toast(error.message, "error"); }
  }));
  document.getElementById("refresh-deliveries").addEventListener("click", () => location.reload());
})();
