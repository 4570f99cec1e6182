"""Pipeline files written from text (the API's uploads): validated before they replace
anything, then moved into place in one step, so a bad upload changes nothing."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from pacsync.config import Settings, find_pipeline, load_pipeline
from pacsync.domain.spec import PipelineSpec
from pacsync.errors import ConfigError, UnknownPipeline


def folder_for(settings: Settings, name: str | None) -> Path:
    """Where the file of pipeline ``name`` is (or would be) kept."""
    if name is not None:
        try:
            return find_pipeline(name, settings).parent
        except UnknownPipeline:
            pass
    return settings.pipelines_dir or settings.home / "pipelines"


def check_text(settings: Settings, text: str, name: str | None = None) -> PipelineSpec:
    """The pipeline ``text`` declares, validated as a file beside the others (its ``.env``
    applies); with ``name``, the pipeline must be called that."""
    folder = folder_for(settings, name)
    with _draft(folder, text, name or "pipeline") as draft:
        spec = _load(draft, name or "pipeline")
    if name is not None and spec.name != name:
        raise ConfigError(
            f"the file names pipeline '{spec.name}', not '{name}'",
            hint=f"Set `name: {name}` in the file, or save it as '{spec.name}'.",
        )
    return spec


def save_text(settings: Settings, name: str, text: str) -> tuple[Path, PipelineSpec, bool]:
    """Validate and store pipeline ``name``; (its file, its spec, whether it is new)."""
    try:
        path = find_pipeline(name, settings)
        created = False
    except UnknownPipeline:
        path = folder_for(settings, name) / f"{name}.yaml"
        created = True
    with _draft(path.parent, text, name) as draft:
        spec = _load(draft, name)
        if spec.name != name:
            raise ConfigError(
                f"the file names pipeline '{spec.name}', not '{name}'",
                hint=f"Set `name: {name}` in the file, or save it as '{spec.name}'.",
            )
        os.replace(draft, path)
    return path, spec, created


@contextlib.contextmanager
def _draft(folder: Path, text: str, name: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    fd, raw = tempfile.mkstemp(prefix=f".{name}.", suffix=".draft", dir=folder)
    draft = Path(raw)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        yield draft
    finally:
        draft.unlink(missing_ok=True)


def _load(draft: Path, name: str) -> PipelineSpec:
    try:
        return load_pipeline(draft)
    except ConfigError as error:
        message = error.message.replace(str(draft), f"{name}.yaml")
        raise ConfigError(message, hint=error.hint) from None
