"""The OHIF viewer (3.13.2's prebuilt ``dist/``, fetched by ./scripts/services) served as
static files on a loopback port of its own, and a pacsync API serving DICOMweb on
another: cross-origin on purpose, as sites deploy them.

``ohif_viewer(dicomweb_url, token=…)`` serves the folder with an ``app-config.js`` of
its own: one DICOMweb data source pointed at pacsync, configured as OHIF documents for
a full DICOMweb server (QIDO includefield, fuzzy matching, WADO-RS frames and
thumbnails, lazy study loading, unquoted multipart Accept headers).

Authentication.  OHIF 3.13 sends a bearer token from an OIDC login, or from the
``token`` query parameter of its viewer route (``/viewer?StudyInstanceUIDs=…&token=…``;
OHIF removes it from the address bar and adds ``Authorization: Bearer`` to each
DICOMweb request).  The study list has neither, so with ``token=`` the config also adds
that header to the requests bound for pacsync's origin — what a site's login proxy
does.  Without ``token`` (a viewer link) nothing is added: the link brings its own.

``pacsync_dicomweb(home, folder)`` runs pacsync's API in this process (uvicorn in a
thread) over a store whose ``site`` archive is ``folder``, scanned, with a viewer key.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import uvicorn

from availability import unavailable
from orthanc import free_port
from pacsync import bootstrap
from pacsync.api.app import create_app
from pacsync.bootstrap import archives
from pacsync.config import Settings
from pacsync.domain.access import Role

REPO = Path(__file__).resolve().parents[1]
DIST = Path(os.environ.get("PACSYNC_TEST_OHIF_DIST", REPO / ".cache" / "ohif-3.13.2" / "dist"))
ARCHIVE = "site"

CONFIG = """\
window.config = {
  name: 'pacsync test',
  routerBasename: '/',
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  defaultDataSourceName: 'pacsync',
  investigationalUseDialog: { option: 'never' },
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'pacsync',
      configuration: {
        friendlyName: 'pacsync',
        name: 'pacsync',
        wadoUriRoot: %(root)s,
        qidoRoot: %(root)s,
        wadoRoot: %(root)s,
        qidoSupportsIncludeField: true,
        supportsReject: false,
        supportsStow: false,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true },
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
"""

# the bearer token added to requests bound for pacsync (XMLHttpRequest and fetch)
AUTHORIZATION = """\
(function () {
  const origin = new URL(%(root)s).origin;
  const bearer = 'Bearer ' + %(token)s;
  const ours = (url) => new URL(url, location.href).origin === origin;
  const xhr = XMLHttpRequest.prototype;
  const open = xhr.open, set = xhr.setRequestHeader, send = xhr.send;
  xhr.open = function (method, url) {
    this.__pacsync = ours(String(url));
    this.__authorized = false;
    return open.apply(this, arguments);
  };
  xhr.setRequestHeader = function (name, value) {
    if (String(name).toLowerCase() === 'authorization') this.__authorized = true;
    return set.apply(this, arguments);
  };
  xhr.send = function () {
    if (this.__pacsync && !this.__authorized) set.call(this, 'Authorization', bearer);
    return send.apply(this, arguments);
  };
  const plainFetch = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' || input instanceof URL ? String(input) : input.url;
    if (ours(url)) {
      init = Object.assign({}, init || {});
      const headers = new Headers(init.headers || (input instanceof Request ? input.headers : {}));
      if (!headers.has('authorization')) headers.set('Authorization', bearer);
      init.headers = headers;
    }
    return plainFetch.call(this, input, init);
  };
})();
"""


def app_config(
    dicomweb_url: str, token: str | None, data_source: dict[str, Any] | None = None
) -> str:
    root = json.dumps(dicomweb_url)
    text = CONFIG % {"root": root}
    if data_source:
        changes = json.dumps(data_source)
        text += f"Object.assign(window.config.dataSources[0].configuration, {changes});\n"
    if token is not None:
        text += AUTHORIZATION % {"root": root, "token": json.dumps(token)}
    return text


class _Handler(SimpleHTTPRequestHandler):
    """The dist folder; ``/app-config.js`` generated; any path that is no file is the
    single-page app's index.html (its router shows the route)."""

    config = ""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.endswith("/app-config.js"):
            body = self.config.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        if not (Path(self.directory) / path.lstrip("/")).is_file():
            self.path = "/index.html"
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def ohif_viewer(
    dicomweb_url: str,
    *,
    token: str | None = None,
    port: int | None = None,
    data_source: dict[str, Any] | None = None,
) -> Iterator[str]:
    """OHIF served on a loopback port (``port``, or a free one), reading DICOMweb at
    ``dicomweb_url`` (``data_source``: changes to its data source's configuration, e.g.
    ``{"thumbnailRendering": "rendered"}``); its URL."""
    if not (DIST / "index.html").is_file():
        unavailable(f"OHIF's dist is not at {DIST} (./scripts/services fetches it)")
    mimetypes.add_type("application/wasm", ".wasm")
    handler = type("Handler", (_Handler,), {"config": app_config(dicomweb_url, token, data_source)})
    server = ThreadingHTTPServer(
        ("127.0.0.1", port or free_port()), functools.partial(handler, directory=str(DIST))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="ohif-static", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@dataclass
class Pacsync:
    base: str  # http://127.0.0.1:port
    token: str  # a viewer API key
    admin: str  # an admin API key
    settings: Settings
    store: bootstrap.Store

    @property
    def dicomweb(self) -> str:
        return f"{self.base}/api/v1/dicomweb"


@contextmanager
def pacsync_dicomweb(
    home: Path, folder: Path, *, port: int | None = None, **settings: Any
) -> Iterator[Pacsync]:
    """pacsync's API on a loopback port (``port``, or a free one) over a new store in
    ``home`` whose archive ``site`` is ``folder`` (scanned before the API starts);
    ``settings`` as ``Settings`` fields (``dicomweb_origins=…``)."""
    values: dict[str, Any] = {
        "home": home,
        "database_url": None,
        "secret_key": None,
        "jwt_secret": None,
        "jwt_jwks_url": None,
        "archive_workers": 1,
        **settings,
    }
    configured = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    store = bootstrap.store(configured)
    store.archives.add(ARCHIVE, "dicom", str(folder), rescan_minutes=0)
    archives.scan(configured, store, ARCHIVE)
    token = store.api_keys.create("ohif viewer", Role.VIEWER)[1]
    admin = store.api_keys.create("ohif test admin", Role.ADMIN)[1]
    port = port or free_port()
    config = uvicorn.Config(
        create_app(configured, store=store), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="pacsync-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "the API did not start"
        assert time.monotonic() < deadline, "the API did not start within 20 s"
        time.sleep(0.05)
    try:
        yield Pacsync(f"http://127.0.0.1:{port}", token, admin, configured, store)
    finally:
        server.should_exit = True
        thread.join(15)
        store.engine.dispose()
