"""Certificate rotation with an injected clock: renewal time, order of injection, retries."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from kuar.webhook import (
    CertificateAuthority,
    CertificateError,
    CertificateManager,
    RotationSettings,
    SelfSignedSource,
    ServingCertificate,
    issue_serving_certificate,
    renewal_time,
)
from kuar.webhook.tls import ca_fingerprints

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def test_renewal_time_defaults_to_two_thirds_of_the_lifetime(
    ca: CertificateAuthority,
) -> None:
    cert = issue_serving_certificate(ca, ["a"], validity=dt.timedelta(hours=3))
    lifetime = cert.not_after - cert.not_before
    assert renewal_time(cert, RotationSettings()) == cert.not_before + lifetime * 2 / 3
    fixed = RotationSettings(renew_before=dt.timedelta(minutes=30))
    assert renewal_time(cert, fixed) == cert.not_after - dt.timedelta(minutes=30)


class FakeClock:
    """A kuar.base Clock whose sleeps move time at once."""

    def __init__(self, now: dt.datetime) -> None:
        self.wall = now
        self.sleeps: list[float] = []
        self.wake = asyncio.Event()

    def now(self) -> dt.datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.wall.timestamp()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.wall += dt.timedelta(seconds=seconds)
        await asyncio.sleep(0)


class Recorder:
    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.bundles: list[bytes] = []

    async def inject(self, ca_pem: bytes) -> None:
        self.bundles.append(ca_pem)
        self.events.append("inject")


class Source:
    """Hands out certificates from a list; may fail once."""

    def __init__(self, certs: list[ServingCertificate], events: list[str],
                 fail_at: int | None = None) -> None:
        self.certs, self.events, self.fail_at, self.calls = certs, events, fail_at, 0
        self.poll_interval: float | None = None

    async def fetch(self) -> ServingCertificate:
        self.calls += 1
        if self.fail_at == self.calls:
            raise RuntimeError("signer down")
        self.events.append("fetch")
        return self.certs.pop(0)


async def wait_for(cond, limit: int = 2000) -> None:  # type: ignore[no-untyped-def]
    for _ in range(limit):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


async def test_manager_renews_before_expiry_and_injects_a_new_ca_first(
    ca: CertificateAuthority,
) -> None:
    other = CertificateAuthority.create("other")
    certs = [issue_serving_certificate(ca, ["a"], validity=dt.timedelta(hours=1)),
             issue_serving_certificate(ca, ["a"], validity=dt.timedelta(hours=1)),
             issue_serving_certificate(other, ["a"], validity=dt.timedelta(hours=1))]
    events: list[str] = []
    injector = Recorder(events)
    clock = FakeClock(dt.datetime.now(dt.UTC))
    manager = CertificateManager(Source(list(certs), events), injector=injector,  # type: ignore[arg-type]
                                 clock=clock)
    original_load = manager.tls.load

    def load(cert: ServingCertificate) -> None:
        events.append("load")
        original_load(cert)

    manager.tls.load = load  # type: ignore[method-assign]
    await manager.start()
    assert events == ["fetch", "inject", "load"]
    await wait_for(lambda: manager.rotations == 2)
    await manager.stop()
    # same CA: no new injection; new CA: inject (both CAs), settle, then load
    assert events == ["fetch", "inject", "load", "fetch", "load", "fetch", "inject", "load"]
    assert ca_fingerprints(injector.bundles[-1]) == ca_fingerprints(ca.cert_pem +
                                                                    other.cert_pem)
    assert RotationSettings().ca_settle in clock.sleeps
    # the first renewal waited until 2/3 of the first certificate's lifetime
    assert clock.sleeps[0] == pytest.approx(
        (renewal_time(certs[0], RotationSettings()) - (clock.wall - dt.timedelta(
            seconds=sum(clock.sleeps)))).total_seconds(), abs=5)
    assert manager.current is not None and manager.current.ca_pem == other.cert_pem


async def test_failed_renewal_keeps_serving_and_retries_with_backoff(
    ca: CertificateAuthority,
) -> None:
    certs = [issue_serving_certificate(ca, ["a"], validity=dt.timedelta(hours=1)),
             issue_serving_certificate(ca, ["a"], validity=dt.timedelta(hours=1))]
    events: list[str] = []
    clock = FakeClock(dt.datetime.now(dt.UTC))
    settings = RotationSettings(retry_min=3, retry_max=10)
    manager = CertificateManager(Source(list(certs), events, fail_at=2),  # type: ignore[arg-type]
                                 settings=settings, clock=clock)
    await manager.start()
    first = manager.current
    await wait_for(lambda: manager.rotations == 1)
    await manager.stop()
    assert 3 in clock.sleeps  # retried after retry_min
    assert first is not None and manager.current is not None
    assert manager.current.fingerprint != first.fingerprint


async def test_a_broken_pair_is_neither_injected_nor_served(ca: CertificateAuthority) -> None:
    good = issue_serving_certificate(ca, ["a"])
    other = issue_serving_certificate(CertificateAuthority.create("x"), ["a"])
    broken = ServingCertificate(cert_pem=other.cert_pem, key_pem=good.key_pem,
                                ca_pem=other.ca_pem)
    events: list[str] = []
    injector = Recorder(events)
    manager = CertificateManager(Source([good], events), injector=injector)  # type: ignore[arg-type]
    await manager.start()
    await manager.stop()
    with pytest.raises(CertificateError):
        await manager.apply(broken)
    assert len(injector.bundles) == 1
    assert manager.current is good


async def test_self_signed_source_keeps_its_ca_in_a_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    first = await SelfSignedSource(ca_dir=tmp_path).fetch()
    second = await SelfSignedSource(ca_dir=tmp_path).fetch()
    assert first.ca_pem == second.ca_pem
    assert first.fingerprint != second.fingerprint
    assert (tmp_path / "ca.key").stat().st_mode & 0o077 == 0
