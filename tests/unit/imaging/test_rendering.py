"""The rendering cache over the in-memory blob store with a fake renderer, and the
DICOMweb viewport and window query parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pacsync.connectors.memory.blobs import MemoryBlobStore
from pacsync.errors import InvalidRequest, NotFound
from pacsync.imaging.rendering import (
    RENDERING_VERSION,
    RenderedCache,
    parse_viewport,
    parse_window,
    rendering_key,
)


@dataclass
class FakeRenderer:
    """Renders the parameters it was given; counts its calls; can be told to fail."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    error: Exception | None = None

    def __call__(
        self,
        data: bytes | Path,
        *,
        frame: int = 1,
        size: int | None = None,
        media_type: str = "image/png",
        window: tuple[float, float] | None = None,
        quality: int = 90,
    ) -> bytes:
        options = {
            "frame": frame,
            "size": size,
            "media_type": media_type,
            "window": window,
            "quality": quality,
        }
        self.calls.append({"data": data, **options})
        if self.error is not None:
            raise self.error
        return f"{data!r} {sorted(options.items())}".encode()


class Loader:
    def __init__(self, data: bytes | Path = b"DICM file") -> None:
        self.data = data
        self.calls = 0

    def __call__(self) -> bytes | Path:
        self.calls += 1
        return self.data


class BrokenStore(MemoryBlobStore):
    """A store whose disk fails: every read and write is an OSError."""

    def read(self, key: str) -> bytes | None:
        raise OSError(5, "Input/output error")

    def create(self, key: str, data: bytes) -> None:
        raise OSError(28, "No space left on device")


@pytest.fixture
def blobs() -> MemoryBlobStore:
    return MemoryBlobStore()


@pytest.fixture
def renderer() -> FakeRenderer:
    return FakeRenderer()


@pytest.fixture
def cache(blobs: MemoryBlobStore, renderer: FakeRenderer) -> RenderedCache:
    return RenderedCache(blobs, renderer)


def test_a_miss_renders_stores_and_returns(
    cache: RenderedCache, blobs: MemoryBlobStore, renderer: FakeRenderer
) -> None:
    load = Loader()

    rendered = cache.get("main/1.2.3/hash", load, frame=2, size=128, window=(40, 400))

    assert renderer.calls == [
        {
            "data": b"DICM file",
            "frame": 2,
            "size": 128,
            "media_type": "image/png",
            "window": (40, 400),
            "quality": 90,
        }
    ]
    key = rendering_key(
        "main/1.2.3/hash",
        frame=2,
        size=128,
        media_type="image/png",
        window=(40, 400),
        quality=90,
    )
    assert blobs.blobs == {key: rendered}


def test_a_second_request_is_served_from_the_cache_without_reading_the_file(
    cache: RenderedCache, renderer: FakeRenderer
) -> None:
    load = Loader()

    first = cache.get("main/1.2.3/hash", load, size=64)
    second = cache.get("main/1.2.3/hash", load, size=64)

    assert first == second
    assert len(renderer.calls) == 1
    assert load.calls == 1


def test_a_path_from_the_loader_goes_to_the_renderer(
    cache: RenderedCache, renderer: FakeRenderer, tmp_path: Path
) -> None:
    cache.get("k", Loader(tmp_path / "a.dcm"))

    assert renderer.calls[0]["data"] == tmp_path / "a.dcm"


@pytest.mark.parametrize(
    "other",
    [
        {"source_key": "main/1.2.3/new-hash"},
        {"frame": 2},
        {"size": 128},
        {"size": None},
        {"media_type": "image/jpeg"},
        {"window": (40, 400)},
        {"window": (40, 401)},
    ],
)
def test_every_parameter_is_part_of_the_key(
    cache: RenderedCache, renderer: FakeRenderer, other: dict[str, Any]
) -> None:
    base: dict[str, Any] = {"source_key": "main/1.2.3/hash", "size": 64}
    cache.get(load=Loader(), **base)

    cache.get(load=Loader(), **{**base, **other})

    assert len(renderer.calls) == 2


def test_jpeg_quality_is_part_of_the_key_and_png_ignores_it(
    cache: RenderedCache, renderer: FakeRenderer
) -> None:
    cache.get("k", Loader(), media_type="image/jpeg", quality=80)
    cache.get("k", Loader(), media_type="image/jpeg", quality=50)
    cache.get("k", Loader(), quality=80)
    cache.get("k", Loader(), quality=50)

    assert len(renderer.calls) == 3


def test_equal_windows_of_ints_and_floats_share_a_key() -> None:
    options: dict[str, Any] = {"frame": 1, "size": 64, "media_type": "image/png", "quality": 90}

    assert rendering_key("k", window=(40, 400), **options) == rendering_key(
        "k", window=(40.0, 400.0), **options
    )


def test_keys_are_unambiguous_and_carry_the_rendering_version() -> None:
    options: dict[str, Any] = {"media_type": "image/png", "window": None, "quality": 90}

    tricky = rendering_key('a","b', frame=1, size=None, **options)
    plain = rendering_key("a", frame=1, size=None, **options)

    assert tricky != plain
    assert plain.startswith(f"rendered/v{RENDERING_VERSION}/")


def test_a_renderer_error_reaches_the_caller_and_nothing_is_stored(
    cache: RenderedCache, blobs: MemoryBlobStore, renderer: FakeRenderer
) -> None:
    renderer.error = NotFound("frame 5 of 1")

    with pytest.raises(NotFound, match="frame 5 of 1"):
        cache.get("k", Loader(), frame=5)

    assert blobs.blobs == {}


def test_an_empty_stored_blob_is_rendered_again(
    cache: RenderedCache, blobs: MemoryBlobStore, renderer: FakeRenderer
) -> None:
    cache.get("k", Loader())
    [key] = blobs.blobs
    blobs.blobs[key] = b""

    rendered = cache.get("k", Loader())

    assert rendered != b""
    assert len(renderer.calls) == 2


def test_a_failing_store_never_fails_the_request(
    renderer: FakeRenderer, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RenderedCache(BrokenStore(), renderer)

    rendered = cache.get("k", Loader())

    assert rendered == renderer(b"DICM file")
    assert "not cached" in caplog.text
    assert "unreadable" in caplog.text


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (None, None),
        ("", None),
        ("512,512", 512),
        ("256,128", 128),
        (" 64 , 100 ", 64),
    ],
)
def test_a_viewport_is_the_longer_side_that_fits_it(value: str | None, size: int | None) -> None:
    assert parse_viewport(value) == size


@pytest.mark.parametrize(
    "value",
    ["512", "0,10", "10,0", "-1,5", "a,b", "1.5,2", "²,2", "512,512,0,0,10,10", ",512", "512,"],
)
def test_a_bad_viewport_is_an_invalid_request(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_viewport(value)

    assert caught.value.code == "PACS-105"
    assert "viewport=" in caught.value.hint


@pytest.mark.parametrize(
    ("value", "window"),
    [
        (None, None),
        ("", None),
        ("40,400,linear", (40.0, 400.0)),
        ("40,400,LINEAR", (40.0, 400.0)),
        ("40,400", (40.0, 400.0)),
        ("-600.5, 1500.25, linear", (-600.5, 1500.25)),
        ("0.5,0.25,linear", (0.5, 0.25)),
    ],
)
def test_a_window_is_center_and_width(
    value: str | None, window: tuple[float, float] | None
) -> None:
    assert parse_window(value) == window


@pytest.mark.parametrize(
    "value",
    [
        "40",
        "40,400,linear,extra",
        "40,0,linear",
        "40,-1,linear",
        "40,400,sigmoid",
        "40,400,linear-exact",
        "a,400,linear",
        "40,b,linear",
        "nan,400,linear",
        "40,inf,linear",
    ],
)
def test_a_bad_window_is_an_invalid_request(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_window(value)

    assert caught.value.code == "PACS-105"
    assert "window=" in caught.value.hint
