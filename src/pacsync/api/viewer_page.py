"""The minimal study viewer page (``/viewer/{uid}``): the study's series from QIDO-RS,
each with its thumbnail, and the chosen series' images rendered by WADO-RS.

The page holds no data and no key.  Its script takes the API key from the URL's
``#key=`` fragment (never sent to a server; removed from the address bar once
read, kept for the tab in sessionStorage) or asks for it, and sends it as a
bearer token; images are fetched the same way and shown from blob URLs.  Its
Content-Security-Policy allows exactly its own inline script and style (by hash),
requests to this origin, and nothing else."""

from __future__ import annotations

import base64
import hashlib
import html

STYLE = """
body{margin:0;font:14px system-ui,sans-serif;background:#111;color:#ddd;display:flex;height:100vh}
nav{width:220px;overflow-y:auto;border-right:1px solid #333;padding:8px;flex:none}
nav button{display:block;width:100%;margin:0 0 8px;padding:4px;background:#1c1c1c;color:inherit;
border:1px solid #333;text-align:left;cursor:pointer}
nav button[aria-pressed=true]{border-color:#6af}
nav img{display:block;width:100%;min-height:40px;background:#000}
main{flex:1;display:flex;flex-direction:column;align-items:center;justify-content:center;gap:8px}
main img{max-width:100%;max-height:calc(100vh - 80px);background:#000}
#status{color:#f99}
"""

SCRIPT = """
"use strict";
const study = document.body.dataset.study;
const api = new URL("../api/v1/dicomweb/studies/" + study, location.href).href;
const statusLine = document.getElementById("status");
const nav = document.querySelector("nav");
const image = document.getElementById("image");
const slider = document.getElementById("slider");
const caption = document.getElementById("caption");
let instances = [];
let series = null;

function apiKey() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  let key = fragment.get("key");
  if (key) {
    sessionStorage.setItem("pacsync-key", key);
    history.replaceState(null, "", location.pathname);
  }
  key = key || sessionStorage.getItem("pacsync-key") || prompt("pacsync API key (psk_...)");
  if (key) sessionStorage.setItem("pacsync-key", key);
  return key || "";
}
const key = apiKey();

async function ask(path, accept) {
  const response = await fetch(api + path, {
    headers: {Authorization: "Bearer " + key, Accept: accept},
    referrerPolicy: "no-referrer",
  });
  if (!response.ok) {
    let why = response.status + " " + response.statusText;
    try { why = (await response.json()).detail || why; } catch (e) { /* not JSON */ }
    if (response.status === 401) sessionStorage.removeItem("pacsync-key");
    throw new Error(why);
  }
  return response;
}
const json = async (path) => (await ask(path, "application/dicom+json")).json();
const picture = async (path) => URL.createObjectURL(await (await ask(path, "image/png")).blob());
const value = (item, tag) => ((item[tag] || {}).Value || [""])[0];

async function show(index) {
  const one = instances[index];
  if (!one) return;
  caption.textContent = "image " + (index + 1) + " of " + instances.length;
  one.url = one.url || await picture("/series/" + series + "/instances/" + one.uid + "/rendered");
  if (Number(slider.value) === index) image.src = one.url;
}

async function open(uid, button) {
  for (const other of nav.querySelectorAll("button")) other.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  series = uid;
  const found = await json("/series/" + uid + "/instances");
  instances = found
    .map((i) => ({uid: value(i, "00080018"), number: Number(value(i, "00200013")) || 0}))
    .sort((a, b) => a.number - b.number);
  slider.max = String(Math.max(instances.length - 1, 0));
  slider.value = "0";
  slider.hidden = instances.length < 2;
  await show(0);
}

async function start() {
  const found = await json("/series");
  if (!found.length) throw new Error("no series of this study in the index");
  found.sort((a, b) => Number(value(a, "00200011")) - Number(value(b, "00200011")));
  for (const item of found) {
    const uid = value(item, "0020000E");
    const button = document.createElement("button");
    const thumbnail = document.createElement("img");
    thumbnail.alt = "";
    const label = document.createElement("div");
    label.textContent = [value(item, "00080060"), value(item, "00200011"),
      value(item, "0008103E"), "(" + value(item, "00201209") + ")"].join(" ");
    button.append(thumbnail, label);
    button.addEventListener("click", () => open(uid, button).catch(fail));
    nav.append(button);
    picture("/series/" + uid + "/thumbnail?size=small").then((u) => { thumbnail.src = u; },
      () => { thumbnail.alt = "no thumbnail"; });
  }
  await open(value(found[0], "0020000E"), nav.querySelector("button"));
}

function fail(error) { statusLine.textContent = String(error.message || error); }
slider.addEventListener("input", () => show(Number(slider.value)).catch(fail));
document.addEventListener("keydown", (event) => {
  const step = {ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1}[event.key];
  if (!step || !instances.length) return;
  slider.value = String(Math.min(Math.max(Number(slider.value) + step, 0), instances.length - 1));
  show(Number(slider.value)).catch(fail);
});
start().catch(fail);
"""


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


POLICY = (
    f"default-src 'none'; script-src {_hash(SCRIPT)}; style-src {_hash(STYLE)}; "
    "img-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'self'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def page(study_uid: str) -> tuple[str, dict[str, str]]:
    """The page for ``study_uid`` and the headers it is served with."""
    uid = html.escape(study_uid, quote=True)
    body = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Study {uid} · pacsync</title><style>{STYLE}</style></head>"
        f'<body data-study="{uid}"><nav aria-label="Series"></nav>'
        '<main><p id="status" role="status"></p><img id="image" alt="">'
        '<input id="slider" type="range" min="0" value="0" hidden aria-label="Image">'
        f'<p id="caption"></p></main><script>{SCRIPT}</script></body></html>'
    )
    return body, dict(HEADERS)
