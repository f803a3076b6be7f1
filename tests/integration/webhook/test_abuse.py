"""Issue 14's abuse suite: 1,000 generated LoadTest specs and 1,000 malformed AdmissionReview
bodies against the LoadTest webhooks over TLS. Each is answered with a 4xx or a clean verdict
(allowed, or denied with a message): never a 5xx, never a hang, never a traceback in the log.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kuar.base import CertificateAuthority
from kuar.webhook import WebhookServer, WebhookServerSettings, issue_serving_certificate
from kuar_loadtest.webhooks import build
from tests.unit.webhook.conftest import admission_review, client_context

EXAMPLES = 1000


class Served:
    def __init__(self) -> None:
        ca = CertificateAuthority.create("abuse-ca")
        self.cert = issue_serving_certificate(ca, ["localhost"], ["127.0.0.1"])
        validating, mutating, conversion = build()
        self.paths = [validating.path, mutating.path]
        self.loop = asyncio.new_event_loop()
        self.server = WebhookServer(
            webhooks=[validating, mutating], conversions=[conversion], certificates=self.cert,
            settings=WebhookServerSettings(host="127.0.0.1", port=0, body_timeout=2.0))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        self.context: ssl.SSLContext = client_context(self.cert.ca_pem)

    def post(self, path: str, body: bytes) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.server.port, context=self.context,
                                           timeout=10)  # a hang fails the example
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read() or b"null")
        finally:
            conn.close()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    s = Served()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    assert not [r for r in caplog.records if r.exc_info], "a handler logged a traceback"


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=False), st.text(max_size=40),
    st.sampled_from(["http", "https", "ftp", "/", "/a b", "/\r\nX: y", "/€", "1m", "0s",
                     "-5s", "web", "web.other.svc", "http://evil.example", "a" * 300]),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=8)
specs = st.fixed_dictionaries({}, optional={
    "service": values, "scheme": values, "requestsPerSecond": values, "paths": values,
    "duration": values, "workers": values, "port": values, "extra": values,
})


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=specs, operation=st.sampled_from(["CREATE", "UPDATE"]))
def test_generated_loadtest_specs_get_a_verdict(
    served: Served, spec: dict[str, Any], operation: str
) -> None:
    obj = {"apiVersion": "beta.kuar.com/v1", "kind": "LoadTest",
           "metadata": {"name": "fuzz", "namespace": "default"}, "spec": spec}
    body = admission_review(obj, operation=operation, old=obj if operation == "UPDATE" else None)
    for path in served.paths:
        status, answer = served.post(path, json.dumps(body).encode())
        assert status < 500, (status, answer)
        if status == 200:
            response = answer["response"]
            assert isinstance(response["allowed"], bool)
            if not response["allowed"]:
                assert response["status"]["message"], answer  # a denial says why


bodies = st.one_of(
    st.binary(max_size=200),
    values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["apiVersion", "kind", "request", "response"]), values,
                    max_size=4).map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=1, max_value=5000).map(lambda n: b"[" * n + b"]" * n),
    st.builds(lambda r: json.dumps({"apiVersion": "admission.k8s.io/v1",
                                    "kind": "AdmissionReview", "request": r}).encode(), values),
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_malformed_admission_reviews_get_a_4xx(served: Served, body: bytes) -> None:
    status, answer = served.post(served.paths[0], body)
    assert status < 500, (status, answer)
    if status == 200:  # a well-formed review hidden in the noise: a clean verdict
        assert isinstance(answer["response"]["allowed"], bool)
    else:
        assert 400 <= status < 500 and answer is not None  # a JSON error body
