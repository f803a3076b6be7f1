"""Issue 14, finding 8: the CSR signer neither hangs on a silent watch nor dies on one bad CSR."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kuar.client import ApiWatchEvent, ObjectList
from kuar.models.certificates.v1 import CertificateSigningRequest
from kuar.resources import ListMeta
from kuar.webhook.signer import Signer, SignerSettings

SETTINGS = SignerSettings(allowed_requesters=frozenset({"u"}),
                          allowed_dns_names=frozenset({"a"}), retry_delay=0.01,
                          watch_inactivity_timeout=0.2, csr_retry_initial=0.05)


def _csr(name: str) -> CertificateSigningRequest:
    return CertificateSigningRequest.model_validate({
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {"request": "", "signerName": SETTINGS.signer_name, "usages": []}})


class SilentApi:
    """Lists nothing, then opens watches that never say anything."""

    def __init__(self) -> None:
        self.watches = 0

    async def list(self, **_: Any) -> ObjectList[CertificateSigningRequest]:
        return ObjectList(items=[], metadata=ListMeta(resource_version="5"))

    async def watch(self, **_: Any) -> AsyncIterator[ApiWatchEvent[CertificateSigningRequest]]:
        self.watches += 1
        await asyncio.Event().wait()  # silent forever
        yield  # type: ignore[misc]


async def test_a_silent_watch_is_reopened_after_the_inactivity_timeout() -> None:
    api = SilentApi()
    signer = Signer(client=None, settings=SETTINGS)  # type: ignore[arg-type]
    signer.ca = object()  # type: ignore[assignment]
    signer._api = api  # type: ignore[attr-defined]
    task = asyncio.create_task(signer.run())
    try:
        await asyncio.sleep(0.7)
        assert api.watches >= 2, "the watch was never reopened"
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_one_failing_csr_backs_off_without_stopping_the_others() -> None:
    signer = Signer(client=None, settings=SETTINGS)  # type: ignore[arg-type]
    handled: list[str] = []
    warned: list[str] = []

    async def handle(csr: CertificateSigningRequest) -> None:
        if csr.metadata.name == "bad":
            raise ValueError("the CSR's request is not PEM")
        handled.append(csr.metadata.name or "")

    async def warn(csr: CertificateSigningRequest, message: str) -> None:
        warned.append(message)

    signer.handle = handle  # type: ignore[method-assign]
    signer._warn = warn  # type: ignore[method-assign]
    await signer._handle_all([_csr("bad"), _csr("good")])  # nothing escapes
    assert handled == ["good"]
    assert warned and "not PEM" in warned[0]
    assert signer._failures["bad"][0] == 1
    # an event right away does not retry it before its backoff has passed
    await signer._handle_all([_csr("bad")])
    assert signer._failures["bad"][0] == 1
    await asyncio.sleep(0.1)
    await signer._handle_all([_csr("bad")])
    assert signer._failures["bad"][0] == 2  # retried after the backoff, failed again
    await signer.stop()
