"use strict";
// A study viewer over pacsync's DICOMweb: series from QIDO-RS, their attributes from
// WADO-RS metadata, frames rendered by the server (windowed there), drawn on a canvas
// with zoom, pan and a length measurement in millimetres from PixelSpacing.
(function () {
  const root = document.getElementById("viewer");
  if (!root) return;
  const study = root.dataset.study;
  const base = "/api/v1/dicomweb/studies/" + study;
  const canvas = document.getElementById("stage");
  const ctx = canvas.getContext("2d");
  const slider = document.getElementById("frame");
  const frameLabel = document.getElementById("frame-label");
  const wcInput = document.getElementById("wc");
  const wwInput = document.getElementById("ww");
  const measureOut = document.getElementById("measure");
  const statusLine = document.getElementById("viewer-status");
  const list = document.getElementById("series");
  const value = (item, tag) => ((item[tag] || {}).Value || [undefined])[0];

  let frames = [];      // [{instance, frame, spacing: [row, col] | null}]
  let index = 0;
  let image = null;     // the HTMLImageElement shown
  let view = {zoom: 1, x: 0, y: 0};
  let windowing = null; // {center, width}
  let line = null;      // {a: [x, y], b: [x, y]} in image pixels
  const cache = new Map();

  async function get(path, accept) {
    const response = await fetch(base + path, {headers: {Accept: accept}, credentials: "same-origin"});
    if (!response.ok) throw new Error(response.status + " " + response.statusText + " for " + path);
    return response;
  }

  function fail(error) { statusLine.textContent = String(error.message || error); }

  function fit() {
    const box = canvas.parentElement.getBoundingClientRect();
    const size = Math.max(240, Math.min(box.width - 4, window.innerHeight - 200));
    canvas.width = size;
    canvas.height = size;
    draw();
  }

  function scale() {
    if (!image) return 1;
    return Math.min(canvas.width / image.naturalWidth, canvas.height / image.naturalHeight) * view.zoom;
  }

  function origin() {
    const s = scale();
    return [(canvas.width - image.naturalWidth * s) / 2 + view.x, (canvas.height - image.naturalHeight * s) / 2 + view.y];
  }

  function toImage(event) {
    const rect = canvas.getBoundingClientRect();
    const s = scale();
    const [ox, oy] = origin();
    const cx = (event.clientX - rect.left) * canvas.width / rect.width;
    const cy = (event.clientY - rect.top) * canvas.height / rect.height;
    return [(cx - ox) / s, (cy - oy) / s];
  }

  function draw() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!image) return;
    const s = scale();
    const [ox, oy] = origin();
    ctx.imageSmoothingEnabled = view.zoom < 2;
    ctx.drawImage(image, ox, oy, image.naturalWidth * s, image.naturalHeight * s);
    if (line) {
      ctx.strokeStyle = "#ffd400";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(ox + line.a[0] * s, oy + line.a[1] * s);
      ctx.lineTo(ox + line.b[0] * s, oy + line.b[1] * s);
      ctx.stroke();
      ctx.fillStyle = "#ffd400";
      ctx.font = "14px system-ui, sans-serif";
      ctx.fillText(length(), ox + line.b[0] * s + 6, oy + line.b[1] * s - 6);
    }
    ctx.fillStyle = "#ddd";
    ctx.font = "12px system-ui, sans-serif";
    const w = windowing ? "W " + Math.round(windowing.width) + " L " + Math.round(windowing.center) : "default window";
    ctx.fillText((index + 1) + " / " + frames.length + "  " + w + "  zoom " + view.zoom.toFixed(1) + "×", 8, canvas.height - 8);
  }

  function length() {
    if (!line) return "";
    const f = frames[index];
    const dx = line.b[0] - line.a[0];
    const dy = line.b[1] - line.a[1];
    if (f && f.spacing) {
      const mm = Math.hypot(dx * f.spacing[1], dy * f.spacing[0]);
      return mm.toFixed(1) + " mm";
    }
    return Math.hypot(dx, dy).toFixed(1) + " px (no PixelSpacing)";
  }

  function url(f) {
    let path = "/series/" + f.series + "/instances/" + f.instance + "/frames/" + f.frame + "/rendered";
    if (windowing) path += "?window=" + windowing.center.toFixed(1) + "," + windowing.width.toFixed(1) + ",linear";
    return path;
  }

  async function load(f) {
    const key = url(f);
    if (!cache.has(key)) {
      cache.set(key, get(key, "image/png").then((r) => r.blob()).then((blob) => new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error("the image did not decode"));
        img.src = URL.createObjectURL(blob);
      })));
      if (cache.size > 400) cache.delete(cache.keys().next().value);
    }
    return cache.get(key);
  }

  async function show(i) {
    if (!frames.length) return;
    index = Math.max(0, Math.min(frames.length - 1, i));
    slider.value = String(index);
    frameLabel.textContent = "image " + (index + 1) + " of " + frames.length;
    const wanted = index;
    const img = await load(frames[index]);
    if (wanted !== index) return;
    image = img;
    canvas.dataset.loaded = String(index + 1);
    draw();
    const next = frames[index + 1];
    if (next) load(next).catch(() => {});
  }

  async function open(series, button) {
    for (const other of list.querySelectorAll("button")) other.setAttribute("aria-pressed", "false");
    if (button) button.setAttribute("aria-pressed", "true");
    statusLine.textContent = "Loading series…";
    const meta = await (await get("/series/" + series + "/metadata", "application/dicom+json")).json();
    const items = meta.map((m) => ({
      instance: value(m, "00080018"),
      number: Number(value(m, "00200013")) || 0,
      frames: Number(value(m, "00280008")) || 1,
      spacing: (m["00280030"] || {}).Value || null,
      center: value(m, "00281050"),
      width: value(m, "00281051"),
    })).sort((a, b) => a.number - b.number);
    frames = [];
    for (const item of items) {
      for (let f = 1; f <= item.frames; f++) {
        frames.push({series, instance: item.instance, frame: f,
          spacing: item.spacing ? item.spacing.map(Number) : null});
      }
    }
    const first = items[0] || {};
    windowing = first.center !== undefined && first.width !== undefined
      ? {center: Number(first.center), width: Number(first.width)} : null;
    wcInput.value = windowing ? String(Math.round(windowing.center)) : "";
    wwInput.value = windowing ? String(Math.round(windowing.width)) : "";
    slider.max = String(Math.max(frames.length - 1, 0));
    view = {zoom: 1, x: 0, y: 0};
    line = null;
    measureOut.textContent = "";
    statusLine.textContent = "";
    root.dataset.series = series;
    await show(0);
  }

  async function start() {
    const found = await (await get("/series", "application/dicom+json")).json();
    if (!found.length) throw new Error("no series of this study in the index");
    found.sort((a, b) => Number(value(a, "00200011")) - Number(value(b, "00200011")));
    const wanted = new URLSearchParams(location.search).get("series");
    let chosen = null;
    for (const item of found) {
      const uid = value(item, "0020000E");
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-pressed", "false");
      const thumb = document.createElement("img");
      thumb.alt = "";
      thumb.width = 96;
      thumb.height = 96;
      thumb.src = base + "/series/" + uid + "/thumbnail";
      const label = document.createElement("span");
      label.textContent = [value(item, "00080060"), "#" + (value(item, "00200011") ?? ""),
        value(item, "0008103E") || "", "(" + (value(item, "00201209") ?? "?") + ")"].join(" ");
      button.append(thumb, label);
      button.addEventListener("click", () => open(uid, button).catch(fail));
      const li = document.createElement("li");
      li.append(button);
      list.append(li);
      if (uid === wanted || (!chosen && !wanted)) chosen = [uid, button];
    }
    chosen = chosen || [value(found[0], "0020000E"), list.querySelector("button")];
    await open(chosen[0], chosen[1]);
  }

  // -- tools ------------------------------------------------------------------------------
  const tool = () => document.querySelector('input[name="tool"]:checked').value;
  let drag = null;
  let pending = null;

  function rewindow() {
    clearTimeout(pending);
    pending = setTimeout(() => show(index).catch(fail), 120);
  }

  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    drag = {x: event.clientX, y: event.clientY, start: {...view}, frame: index,
      windowing: windowing ? {...windowing} : {center: 128, width: 256}, at: toImage(event)};
    if (tool() === "measure") line = {a: drag.at, b: drag.at};
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    switch (tool()) {
      case "scroll": show(drag.frame + Math.round(dy / 8)).catch(fail); break;
      case "pan": view.x = drag.start.x + dx; view.y = drag.start.y + dy; draw(); break;
      case "wl":
        windowing = {center: drag.windowing.center + dy * Math.max(1, drag.windowing.width / 256),
          width: Math.max(1, drag.windowing.width + dx * Math.max(1, drag.windowing.width / 256))};
        wcInput.value = String(Math.round(windowing.center));
        wwInput.value = String(Math.round(windowing.width));
        draw();
        rewindow();
        break;
      case "measure": line.b = toImage(event); measureOut.textContent = "Length: " + length(); draw(); break;
    }
  });
  canvas.addEventListener("pointerup", () => { drag = null; });
  canvas.addEventListener("wheel", (event) => {
    event.preventDefault();
    if (event.ctrlKey) zoom(event.deltaY < 0 ? 1.25 : 0.8);
    else show(index + (event.deltaY > 0 ? 1 : -1)).catch(fail);
  }, {passive: false});
  canvas.addEventListener("keydown", (event) => {
    const step = {ArrowDown: 1, ArrowRight: 1, PageDown: 10, ArrowUp: -1, ArrowLeft: -1, PageUp: -10}[event.key];
    if (step) { event.preventDefault(); show(index + step).catch(fail); }
    else if (event.key === "+" || event.key === "=") zoom(1.25);
    else if (event.key === "-") zoom(0.8);
    else if (event.key === "r" || event.key === "R") reset();
    else if (event.key === "Home") show(0).catch(fail);
    else if (event.key === "End") show(frames.length - 1).catch(fail);
  });

  function zoom(factor) { view.zoom = Math.max(0.25, Math.min(16, view.zoom * factor)); draw(); }
  function reset() { view = {zoom: 1, x: 0, y: 0}; line = null; measureOut.textContent = ""; draw(); }

  slider.addEventListener("input", () => show(Number(slider.value)).catch(fail));
  document.getElementById("zoom-in").addEventListener("click", () => zoom(1.25));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(0.8));
  document.getElementById("reset").addEventListener("click", reset);
  for (const input of [wcInput, wwInput]) {
    input.addEventListener("change", () => {
      const center = Number(wcInput.value);
      const width = Number(wwInput.value);
      if (Number.isFinite(center) && width > 0) { windowing = {center, width}; show(index).catch(fail); }
    });
  }
  let original = null;
  document.getElementById("preset").addEventListener("change", (event) => {
    if (original === null) original = windowing;
    const value = event.target.value;
    windowing = value ? {center: Number(value.split(",")[0]), width: Number(value.split(",")[1])} : original;
    wcInput.value = windowing ? String(Math.round(windowing.center)) : "";
    wwInput.value = windowing ? String(Math.round(windowing.width)) : "";
    show(index).catch(fail);
  });
  window.addEventListener("resize", fit);
  fit();
  start().catch(fail);
})();
