"use strict";
(function () {
  const {api, el, toast} = window.pacsync;
  const form = document.getElementById("resolve");
  if (!form) return;
  const box = document.getElementById("manual-box");
  const value = document.getElementById("manual-value");
  form.addEventListener("change", () => {
    const strategy = (form.querySelector('input[name="strategy"]:checked') || {}).value;
    box.hidden = strategy !== "MANUAL" && strategy !== "MERGE";
    if (strategy === "MANUAL" && !value.value) value.value = JSON.stringify(JSON.parse(form.dataset.local), null, 2);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("resolve-result");
    const strategy = form.querySelector('input[name="strategy"]:checked').value;
    const body = {strategy, reason: document.getElementById("reason").value};
    if ((strategy === "MANUAL" || strategy === "MERGE") && value.value.trim()) {
      try { body.value = JSON.parse(value.value); }
      catch (error) { out.replaceChildren(el("p", {class: "error", text: "The value is not JSON: " + error.message})); return; }
    }
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    try {
      const r = await api("POST", "/conflicts/" + form.dataset.conflict + "/resolve", body);
      toast("Conflict #" + r.id + " " + r.status);
      location.reload();
    } catch (error) {
      out.replaceChildren(el("p", {class: "error", text: error.message}));
      submit.disabled = false;
    }
  });
})();
