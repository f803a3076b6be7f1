"""Issue 14, finding 7: private keys are created 0600, never written first and chmod-ed after.

A spy records the permissions every file has at the moment it is created (``fstat`` right
after ``open``, whether through ``os.open`` or Python's ``open``), so a file that is created
0644 and narrowed later is caught even though its final mode is right.
"""

from __future__ import annotations

import builtins
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kuar.base import CertificateAuthority
from kuar.base.files import write_private
from kuar.webhook import SelfSignedSource


@pytest.fixture
def created(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """``{path: permission bits at creation}`` of files created during the test."""
    modes: dict[str, int] = {}
    real_os_open, real_io_open, real_replace = os.open, io.open, os.replace

    def os_open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        existed = os.path.lexists(path) if dir_fd is None else True
        fd = real_os_open(path, flags, mode, dir_fd=dir_fd)
        if flags & os.O_CREAT and not existed:
            modes[str(path)] = stat.S_IMODE(os.fstat(fd).st_mode)
        return fd

    def io_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        existed = isinstance(file, int) or os.path.lexists(file)
        f = real_io_open(file, mode, *args, **kwargs)
        if not existed and any(c in mode for c in "wax"):
            modes[str(file)] = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        return f

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        real_replace(src, dst, **kwargs)
        if str(src) in modes:
            modes[str(dst)] = modes.pop(str(src))

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(io, "open", io_open)
    monkeypatch.setattr(builtins, "open", io_open)
    monkeypatch.setattr(os, "replace", replace)
    old_umask = os.umask(0o022)  # the usual umask: a plain write makes 0644
    try:
        yield modes
    finally:
        os.umask(old_umask)


def test_the_spy_sees_a_plain_write_as_0644(created: dict[str, int], tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"x")
    assert created[str(tmp_path / "plain")] == 0o644


def test_write_private_creates_0600_and_replaces_atomically(
    created: dict[str, int], tmp_path: Path
) -> None:
    key = tmp_path / "tls.key"
    write_private(key, b"secret-1")
    assert created[str(key)] == 0o600
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_bytes() == b"secret-1"
    # an existing, wider file is replaced by a new 0600 one (never rewritten in place)
    key.chmod(0o644)
    write_private(key, b"secret-2")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_bytes() == b"secret-2"
    assert [p.name for p in tmp_path.iterdir()] == ["tls.key"]  # no temporary file left


def test_write_private_gives_the_complete_file_its_mode(
    created: dict[str, int], tmp_path: Path
) -> None:
    token = tmp_path / "token"
    write_private(token, b"t", mode=0o400)
    assert created[str(token)] == 0o600  # born private; given its mode once complete
    assert stat.S_IMODE(token.stat().st_mode) == 0o400 and token.read_bytes() == b"t"
    assert [p.name for p in tmp_path.iterdir()] == ["token"]


def test_write_private_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (tmp_path / "ca.key").symlink_to(elsewhere)  # dangling: someone wants the key written there
    write_private(tmp_path / "ca.key", b"secret")
    assert not elsewhere.exists()
    assert not (tmp_path / "ca.key").is_symlink()
    assert (tmp_path / "ca.key").read_bytes() == b"secret"


async def test_self_signed_ca_folder_key_is_created_0600(
    created: dict[str, int], tmp_path: Path
) -> None:
    ca_dir = tmp_path / "ca"
    await SelfSignedSource(ca_dir=ca_dir).fetch()
    assert created[str(ca_dir / "ca.key")] == 0o600
    assert stat.S_IMODE(ca_dir.stat().st_mode) == 0o700
    # reused on the next start
    again = SelfSignedSource(ca_dir=ca_dir)
    await again.fetch()
    assert again.ca is not None and again.ca.cert_pem == (ca_dir / "ca.crt").read_bytes()


async def test_self_signed_ca_key_never_goes_through_a_planted_symlink(tmp_path: Path) -> None:
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir(mode=0o700)
    elsewhere = tmp_path / "stolen.key"
    (ca_dir / "ca.key").symlink_to(elsewhere)
    await SelfSignedSource(ca_dir=ca_dir).fetch()
    assert not elsewhere.exists()
    assert b"PRIVATE KEY" in (ca_dir / "ca.key").read_bytes()


def test_demo_service_key_is_created_0600(created: dict[str, int], tmp_path: Path) -> None:
    from kuar_demo.run import write_service_certificates

    ca = CertificateAuthority.create("demo")
    pair = ca.issue_serving(["my-service"])
    cert, key, ca_file = write_service_certificates(tmp_path, ca, pair)
    assert created[str(key)] == 0o600
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert cert.read_bytes() == pair.cert_pem and ca_file.read_bytes() == ca.cert_pem
