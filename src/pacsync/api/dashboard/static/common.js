"use strict";
// Shared by every page: calls to pacsync's REST API with the session (the server
// adds the session's key to same-origin /api/v1 requests; writes carry the CSRF token).
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";

  async function api(method, path, body, contentType) {
    const headers = {"X-CSRF-Token": csrf, Accept: "application/json"};
    let payload;
    if (body !== undefined) {
      if (contentType) { headers["Content-Type"] = contentType; payload = body; }
      else { headers["Content-Type"] = "application/json"; payload = JSON.stringify(body); }
    }
    const response = await fetch("/api/v1" + path, {
      method, headers, body: payload, credentials: "same-origin",
    });
    let data = null;
    const text = await response.text();
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
    if (!response.ok) {
      const error = new Error(describe(data, response));
      error.status = response.status;
      error.data = data;
      throw error;
    }
    return data;
  }

  function describe(data, response) {
    if (data && typeof data === "object") {
      const code = data.code ? data.code + " " : "";
      let detail = data.detail || data.title || response.statusText;
      if (Array.isArray(detail)) detail = detail.map((d) => d.msg || String(d)).join("; ");
      return code + detail + (data.hint ? " — " + data.hint : "");
    }
    return response.status + " " + response.statusText;
  }

  function toast(message, kind) {
    const box = document.getElementById("toast");
    if (!box) return;
    box.textContent = message;
    box.className = "toast " + (kind || "");
    box.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function statusBadge(status) {
    return el("span", {class: "status status-" + status, text: status});
  }

  function when(iso) {
    if (!iso) return "—";
    const at = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(iso) ? iso : iso + "Z");
    return at.toISOString().replace("T", " ").slice(0, 19);
  }

  // Buttons with data-busy show that they work and cannot be pressed twice.
  async function busy(button, work) {
    button.disabled = true;
    button.setAttribute("aria-busy", "true");
    try { return await work(); }
    finally { button.disabled = false; button.removeAttribute("aria-busy"); }
  }

  window.pacsync = {api, toast, el, statusBadge, when, busy, csrf,
    role: document.body.dataset.role || ""};
})();
