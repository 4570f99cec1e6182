"""Settings and pipeline files: the only place that reads the environment.

Pipeline YAML may use ``${NAME}`` and ``${NAME:-default}``; values come from
the environment and from a ``.env`` file beside the pipeline or in the working
directory.  Errors name the file, the line and the field, with valid choices.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, Discriminator, Tag, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pacsync.domain.spec import PipelineSpec
from pacsync.errors import ConfigError, UnknownPipeline

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Settings(BaseSettings):
    """Global settings, from PACSYNC_* environment variables or .env."""

    model_config = SettingsConfigDict(env_prefix="PACSYNC_", env_file=".env", extra="ignore")

    home: Path = Path(".pacsync")
    database_url: str | None = None
    pipelines_dir: Path | None = None
    log_level: str = "INFO"
    circuit_failures: int = 5  # consecutive transient failures that open a connection's circuit
    circuit_cool_down_s: float = 30.0  # open this long before one probe call is let through
    secret_key: str | None = None  # base64 or hex of 32 bytes; else $PACSYNC_HOME/secret.key
    jwt_secret: str | None = None  # HS256 shared secret for bearer JWTs
    jwt_jwks_url: str | None = None  # JWKS of the RS256 issuer
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    webhook_backoff_s: float = 5.0  # first wait before a webhook delivery is tried again
    archive_workers: int = 0  # processes parsing archive files; 0: one per core
    render_cache_mb: int = 1024  # rendered frames and thumbnails kept under home/rendered
    dicom_ae: str = "PACSYNC"  # the AE title of the DICOM SCP (`pacsync dicom-listen`)
    dicom_port: int = 11112  # the port it listens on
    dicom_host: str = "127.0.0.1"  # the address it binds (0.0.0.0: every interface)
    dicom_listen: bool = False  # `pacsync serve` runs the DICOM SCP beside the API
    dicom_tls_cert: Path | None = None  # PEM certificate (and chain): the SCP speaks TLS
    dicom_tls_key: Path | None = None  # its private key
    dicom_tls_ca: Path | None = None  # peers must show a certificate signed by this CA
    viewer_url_template: str | None = None  # external viewer URL with {study_uid}, e.g. OHIF
    viewer_link_minutes: int = 60  # lifetime of a signed viewer link (a URL bound to one study)
    dicomweb_origins: str = ""  # browser origins allowed to call DICOMweb (comma-separated; *)
    dicomweb_stow: bool = True  # STOW-RS (POST /dicomweb/studies) stores into the inbox archive
    hl7_feed: str = "mllp"  # the name messages of the MLLP listener are logged under
    hl7_port: int = 2575  # the MLLP listener's port (`pacsync hl7 listen`)
    hl7_host: str = "127.0.0.1"  # the address it binds (0.0.0.0: every interface)
    hl7_listen: bool = False  # `pacsync serve` runs the MLLP listener beside the API
    hl7_encoding: str = "utf-8"  # a message's character set when MSH-18 is empty
    hl7_max_message_kb: int = 10240  # a larger message is answered AR
    hl7_idle_timeout_s: float = 300.0  # a connection silent this long is closed
    hl7_accept: str = ""  # kinds accepted, e.g. "ADT^*,ORU^R01" (empty: those processed)
    hl7_tls_cert: Path | None = None  # PEM certificate (and chain): the listener speaks TLS
    hl7_tls_key: Path | None = None  # its private key
    hl7_tls_ca: Path | None = None  # senders must show a certificate signed by this CA

    @property
    def store_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'pacsync.db').resolve()}"

    @property
    def pipeline_dirs(self) -> list[Path]:
        dirs = [self.pipelines_dir] if self.pipelines_dir else []
        return [*dirs, self.home / "pipelines", Path("pipelines")]


def find_pipeline(name_or_path: str, settings: Settings) -> Path:
    """The YAML file of a pipeline given by path or by name."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate
    for folder in settings.pipeline_dirs:
        for suffix in (".yaml", ".yml"):
            path = folder / f"{name_or_path}{suffix}"
            if path.is_file():
                return path
    searched = ", ".join(str(d) for d in settings.pipeline_dirs)
    raise UnknownPipeline(f"no pipeline '{name_or_path}' (looked in {searched})")


def list_pipelines(settings: Settings) -> list[Path]:
    found: dict[str, Path] = {}
    for folder in settings.pipeline_dirs:
        if folder.is_dir():
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                found.setdefault(path.stem, path)
    return list(found.values())


def load_pipeline(path: Path, environ: dict[str, str] | None = None) -> PipelineSpec:
    """Parse, substitute and validate one pipeline file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    env = _environment(path, environ)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if node is None:
        raise ConfigError(f"{path}: the file is empty")
    lines: dict[tuple[Any, ...], int] = {}
    data = _construct(node, (), lines, env, path)
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path, lines, data)) from None


def _environment(path: Path, environ: dict[str, str] | None) -> dict[str, str]:
    env: dict[str, str] = {}
    for dotenv in (Path(".env"), path.parent / ".env"):
        if dotenv.is_file():
            env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    return env


def _construct(
    node: yaml.Node,
    at: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    env: dict[str, str],
    path: Path,
) -> Any:
    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                yaml.SafeLoader(key_node.value).construct_object(key_node)
                if not isinstance(key_node, yaml.ScalarNode)
                else key_node.value
            )
            lines[(*at, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*at, key), lines, env, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(v, (*at, i), lines, env, path) for i, v in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    if isinstance(node.value, str) and "${" in node.value:
        node.value = _substitute(node.value, env, f"{path}:{lines[at]}")
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _substitute(value: str, env: dict[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{where}: environment variable {name} is not set",
            hint=f"Set {name} in the environment or in a .env file, or write ${{{name}:-default}}.",
        )

    return _VARIABLE.sub(replace, value)


def _explain(exc: ValidationError, path: Path, lines: dict[tuple[Any, ...], int], data: Any) -> str:
    problems = []
    for error in exc.errors():
        loc = _in_file(tuple(error["loc"]), data)
        line = next((lines[loc[:i]] for i in range(len(loc), -1, -1) if loc[:i] in lines), 1)
        field = ".".join(str(p) for p in loc) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            choices = _choices(loc[:-1], data)
            message = f"unknown field '{loc[-1]}'" + (f"; valid: {choices}" if choices else "")
        elif error["type"] == "literal_error":
            message = f"{message} (got {error.get('input')!r})"
        problems.append(f"{path}:{line}: {field}: {message}")
    return problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")


def _in_file(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """``loc`` without the parts naming a union member (pydantic puts the tag of the kind
    it validated in the location, e.g. ``source.drop.delimiter``): only what the file has."""
    kept: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if present:
            node = node[part]
        elif i < len(loc) - 1:
            continue  # a union tag: the next part is the one in the file
        kept.append(part)
    return tuple(kept)


def _choices(loc: tuple[Any, ...], data: Any = None) -> str:
    """Valid field names at ``loc`` in a pipeline file, following the spec models (of a
    union, the kind the value in the file is)."""
    annotation: Any = PipelineSpec
    node = data
    for part in loc:
        origin = getattr(annotation, "__origin__", None)
        if origin in (dict, list):
            annotation = annotation.__args__[-1]
            node = _child(node, part)
            continue
        model = _inner_model(annotation)
        if model is None:
            return ""
        info = model.model_fields.get(str(part)) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        if info is None:
            return ""
        node = _child(node, part)
        annotation = _member(info.annotation, info.metadata, node)
    model = _inner_model(annotation)
    if model is None:
        return ""
    return ", ".join(sorted(f.alias or n for n, f in model.model_fields.items()))


def _child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None


def _member(annotation: Any, metadata: list[Any], value: Any) -> Any:
    """The member of a discriminated union ``value`` is validated as (else ``annotation``)."""
    for item in metadata:
        if isinstance(item, Discriminator) and callable(item.discriminator):
            tag = item.discriminator(value)
            for member in getattr(annotation, "__args__", ()):
                tags = [m for m in getattr(member, "__metadata__", ()) if isinstance(m, Tag)]
                if tags and tags[0].tag == tag:
                    return member
    return annotation


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if getattr(annotation, "__origin__", None) in (dict, list):
        return None
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
