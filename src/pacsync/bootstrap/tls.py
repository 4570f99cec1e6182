"""Server-side TLS from the settings, for the listeners that speak it (MLLP, DICOM).

A certificate (with its chain) and key make the listener speak TLS 1.2 or newer;
a CA file besides makes it ask every peer for a certificate signed by that CA
(mutual TLS, as the DICOM BCP 195 profiles and many HL7 interfaces require).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pacsync.errors import ConfigError


def server_context(
    cert: Path | None, key: Path | None, ca: Path | None, *, what: str, env: str
) -> ssl.SSLContext | None:
    """The context for ``what`` (``env``: the settings' prefix, for the hint), or None
    when no certificate is set."""
    if cert is None:
        if ca is not None:
            raise ConfigError(
                f"{env}_TLS_CA is set but no certificate for the {what}",
                hint=f"Set {env}_TLS_CERT and {env}_TLS_KEY too, or unset {env}_TLS_CA",
            )
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if ca is not None:
            context.load_verify_locations(cafile=ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"the {what}'s certificate cannot be loaded: {exc}",
            hint=f"Set {env}_TLS_CERT and {env}_TLS_KEY (and {env}_TLS_CA) to PEM files",
        ) from exc
    return context


__all__ = ["server_context"]
