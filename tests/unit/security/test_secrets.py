"""The secret box: sealing, opening, and where its key comes from."""

from __future__ import annotations

import base64
import os
import stat
import threading
from pathlib import Path

import pytest

from pacsync.config import Settings
from pacsync.errors import ConfigError
from pacsync.security import secrets as secret_box
from pacsync.security.secrets import SecretBox, is_sealed

KEY = bytes(range(32))


def settings(home: Path, secret_key: str | None = None) -> Settings:
    return Settings(_env_file=None, home=home, secret_key=secret_key)  # type: ignore[call-arg]


def test_sealed_text_opens_with_the_same_key_and_context() -> None:
    box = SecretBox(KEY)
    sealed = box.seal("s3cr3t pässword", "connection:legacy")
    assert sealed.startswith("enc:v1:")
    assert "s3cr3t" not in sealed
    assert is_sealed(sealed)
    assert box.open(sealed, "connection:legacy") == "s3cr3t pässword"
    assert SecretBox(KEY).open(sealed, "connection:legacy") == "s3cr3t pässword"


def test_each_seal_uses_a_new_nonce() -> None:
    box = SecretBox(KEY)
    assert box.seal("same", "c") != box.seal("same", "c")


def test_a_sealed_value_does_not_open_in_another_context() -> None:
    box = SecretBox(KEY)
    sealed = box.seal("pw", "connection:legacy")
    with pytest.raises(ConfigError, match="connection:warehouse"):
        box.open(sealed, "connection:warehouse")


def test_a_wrong_key_fails_with_a_hint_and_without_the_secret() -> None:
    sealed = SecretBox(KEY).seal("hunter22", "webhook:1")
    with pytest.raises(ConfigError) as caught:
        SecretBox(bytes(32)).open(sealed, "webhook:1")
    assert caught.value.code == "PACS-101"
    assert "secret key" in caught.value.hint
    assert "hunter22" not in str(caught.value)


@pytest.mark.parametrize("position", [8, 20, -1])
def test_tampered_text_does_not_open(position: int) -> None:
    box = SecretBox(KEY)
    sealed = box.seal("pw", "c")
    chars = list(sealed)
    chars[position] = "A" if chars[position] != "A" else "B"
    with pytest.raises(ConfigError):
        box.open("".join(chars), "c")


@pytest.mark.parametrize("text", ["plain", "enc:v1:", "enc:v1:!!!", "enc:v2:AAAA"])
def test_text_that_is_not_sealed_does_not_open(text: str) -> None:
    with pytest.raises(ConfigError):
        SecretBox(KEY).open(text, "c")
    assert not is_sealed(None)


@pytest.mark.parametrize(
    "encoded",
    [
        KEY.hex(),
        base64.b64encode(KEY).decode(),
        base64.urlsafe_b64encode(KEY).decode().rstrip("="),
    ],
)
def test_the_key_may_come_from_settings_as_hex_or_base64(tmp_path: Path, encoded: str) -> None:
    sealed = SecretBox(KEY).seal("pw", "c")
    assert SecretBox.load(settings(tmp_path, encoded)).open(sealed, "c") == "pw"
    assert not (tmp_path / "secret.key").exists()


@pytest.mark.parametrize("encoded", ["short", base64.b64encode(bytes(16)).decode(), "z" * 64])
def test_a_key_that_is_not_32_bytes_is_refused_when_the_box_is_used(
    tmp_path: Path, encoded: str
) -> None:
    box = SecretBox.load(settings(tmp_path, encoded))  # commands that need no secret still run
    with pytest.raises(ConfigError, match="PACSYNC_SECRET_KEY") as caught:
        box.seal("pw", "c")
    assert "32" in caught.value.hint
    with pytest.raises(ConfigError, match="16 bytes"):
        SecretBox(bytes(16))


def test_the_key_file_is_made_on_first_use_not_on_load(tmp_path: Path) -> None:
    box = SecretBox.load(settings(tmp_path / "home"))
    assert not (tmp_path / "home").exists()
    box.seal("pw", "c")
    assert (tmp_path / "home" / "secret.key").is_file()


def test_a_home_where_no_key_file_can_be_made_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "home").write_text("a file, not a folder")
    with pytest.raises(ConfigError, match="the secret key file") as caught:
        SecretBox.load(settings(tmp_path / "home")).seal("pw", "c")
    assert "PACSYNC_SECRET_KEY" in caught.value.hint


def test_without_a_configured_key_a_private_key_file_is_made_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sealed = SecretBox.load(settings(home)).seal("pw", "c")
    key_file = home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert SecretBox.load(settings(home)).open(sealed, "c") == "pw"
    assert [p.name for p in home.iterdir()] == ["secret.key"]


def test_the_key_file_is_private_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[int] = []
    real_link = os.link

    def link(src: str | Path, dst: str | Path) -> None:
        modes.append(stat.S_IMODE(os.stat(src).st_mode))
        assert Path(src).read_text().strip()  # whole before it is visible under its name
        real_link(src, dst)

    monkeypatch.setattr(secret_box.os, "link", link)
    old = os.umask(0)  # even a permissive umask gives no one else access
    try:
        SecretBox.load(settings(tmp_path)).seal("pw", "c")
    finally:
        os.umask(old)
    assert modes == [0o600]


def test_processes_creating_the_key_together_agree_on_it(tmp_path: Path) -> None:
    sealed: list[str] = []
    barrier = threading.Barrier(8)

    def make() -> None:
        barrier.wait()
        sealed.append(SecretBox.load(settings(tmp_path)).seal("pw", "c"))

    threads = [threading.Thread(target=make) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    box = SecretBox.load(settings(tmp_path))
    assert [box.open(s, "c") for s in sealed] == ["pw"] * 8
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_a_key_file_others_can_read_is_used_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "secret.key").write_text(base64.b64encode(KEY).decode())
    (tmp_path / "secret.key").chmod(0o644)
    sealed = SecretBox(KEY).seal("pw", "c")
    assert SecretBox.load(settings(tmp_path)).open(sealed, "c") == "pw"
    assert "chmod 600" in caplog.text


def test_the_box_does_not_show_its_key() -> None:
    assert repr(SecretBox(KEY)) == "SecretBox(***)"
