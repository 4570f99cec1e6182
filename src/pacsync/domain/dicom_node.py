"""A DICOM node (a PACS, a modality, a workstation) as a configured connection.

Stored as a connection of kind ``dicom`` whose URL is ``dicom://CALLED_AE@host:port``
and whose options say the rest::

    calling_ae: PACSYNC            # our AE title towards this node
    tls: {ca: ca.pem, cert: me.pem, key: me.key}   # TLS 1.2+ when given
    timeouts: {connect: 10, acse: 30, dimse: 60, network: 60}     # seconds
    max_pdu: 16384                 # 0: unlimited
    transfer_syntaxes: [jpeg2000-lossless, jpeg-ls-lossless, explicit-little]
    secondary: dicom://BACKUP_AE@host2:104          # tried when the primary fails
    retry: {attempts: 3, backoff_s: 2.0}
    query_cache_s: 30              # C-FIND answers kept this long (0: never)
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pacsync.errors import ConfigError

AE_TITLE = re.compile(r"^[\x21-\x5b\x5d-\x7e]([\x20-\x5b\x5d-\x7e]{0,14}[\x21-\x5b\x5d-\x7e])?$")

TRANSFER_SYNTAXES: dict[str, str] = {
    "jpeg2000-lossless": "1.2.840.10008.1.2.4.90",
    "jpeg2000": "1.2.840.10008.1.2.4.91",
    "jpeg-ls-lossless": "1.2.840.10008.1.2.4.80",
    "jpeg-lossless": "1.2.840.10008.1.2.4.70",
    "rle": "1.2.840.10008.1.2.5",
    "explicit-little": "1.2.840.10008.1.2.1",
    "implicit-little": "1.2.840.10008.1.2",
}


def ae_title(value: str, field: str = "AE title") -> str:
    """An AE title as the standard allows it: 1–16 characters, no backslash or control
    characters, not only spaces."""
    if not AE_TITLE.match(value):
        raise ConfigError(
            f"invalid {field} {value!r}",
            hint="Use 1 to 16 printable characters without '\\' (e.g. PACSYNC).",
        )
    return value


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    ae_title: str
    host: str
    port: int = Field(ge=1, le=65535)

    @classmethod
    def parse(cls, url: str) -> Address:
        """``dicom://AE@host:port``."""
        parts = urlsplit(url)
        if parts.scheme != "dicom" or not parts.username or not parts.hostname:
            raise ConfigError(
                f"invalid DICOM node URL {url!r}", hint="Use dicom://CALLED_AE@host:port."
            )
        try:
            port = parts.port or 104
        except ValueError:
            raise ConfigError(f"invalid port in {url!r}", hint="Use 1 to 65535.") from None
        return cls(ae_title=ae_title(parts.username, "called AE title"), host=parts.hostname,
                   port=port)  # fmt: skip


class Timeouts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    connect: float = Field(10.0, gt=0)
    acse: float = Field(30.0, gt=0)
    dimse: float = Field(60.0, gt=0)
    network: float = Field(60.0, gt=0)


class Tls(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    verify_hostname: bool = True


class Retry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    attempts: int = Field(3, ge=1, le=20)
    backoff_s: float = Field(2.0, ge=0)


class DicomNode(BaseModel):
    """A configured DICOM node (see the module docstring for the options)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    address: Address
    calling_ae: str = "PACSYNC"
    tls: Tls | None = None
    timeouts: Timeouts = Timeouts()
    max_pdu: int = Field(16384, ge=0)
    transfer_syntaxes: tuple[str, ...] = ("jpeg2000-lossless", "jpeg-ls-lossless",
                                          "explicit-little", "implicit-little")  # fmt: skip
    secondary: Address | None = None
    retry: Retry = Retry()
    query_cache_s: float = Field(30.0, ge=0)

    @field_validator("calling_ae")
    @classmethod
    def _calling(cls, value: str) -> str:
        return ae_title(value, "calling AE title")

    @field_validator("transfer_syntaxes")
    @classmethod
    def _syntaxes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            if name not in TRANSFER_SYNTAXES:
                raise ValueError(
                    f"unknown transfer syntax {name!r}; use: {', '.join(TRANSFER_SYNTAXES)}"
                )
        return value

    @property
    def transfer_syntax_uids(self) -> list[str]:
        return [TRANSFER_SYNTAXES[name] for name in self.transfer_syntaxes]

    @classmethod
    def of(cls, name: str, url: str, options: dict[str, Any]) -> DicomNode:
        """The node of a stored connection (kind ``dicom``); ConfigError naming the
        connection and the option when something is wrong."""
        data = dict(options)
        secondary = data.pop("secondary", None)
        try:
            return cls(
                name=name,
                address=Address.parse(url),
                secondary=Address.parse(secondary) if secondary else None,
                **data,
            )
        except ValidationError as error:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
            )
            raise ConfigError(
                f"connection '{name}': {detail}",
                hint="Options: calling_ae, tls, timeouts, max_pdu, transfer_syntaxes, "
                "secondary, retry, query_cache_s.",
            ) from None
