"""kuar.client.kubeconfig: what users' kubeconfigs hold, merged lists, in-cluster, bad input."""

from __future__ import annotations

import base64
import json
import ssl
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuar.client import ConfigError, load_config
from kuar.client import kubeconfig as kc
from kuar.webhook import CertificateAuthority, issue_serving_certificate

CA = CertificateAuthority.create("kubeconfig-test-ca")
PAIR = issue_serving_certificate(CA, ["localhost"], ["127.0.0.1"])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, *, user: dict[str, Any], cluster: dict[str, Any] | None = None,
          namespace: str | None = None, current: str | None = "ctx", name: str = "ctx",
          ) -> Path:
    context: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": current,
        "clusters": [{"name": "c", "cluster": cluster or {
            "server": "https://127.0.0.1:6443/", "certificate-authority-data": b64(CA.cert_pem)}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": name, "context": context}],
    }))
    return path


async def test_client_certificate_and_ca_from_data(tmp_path: Path) -> None:
    path = write(tmp_path / "config", namespace="team-a", user={
        "client-certificate-data": b64(PAIR.cert_pem), "client-key-data": b64(PAIR.key_pem)})
    config = await load_config(path)
    assert config.server == "https://127.0.0.1:6443"
    assert config.namespace == "team-a"
    assert config.ssl_context is not None
    assert config.ssl_context.verify_mode is ssl.CERT_REQUIRED
    assert config.ssl_context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert await config.token() is None
    # the cluster's CA is the only one trusted (client-go's rule), not the system's roots too
    [only] = config.ssl_context.get_ca_certs()
    assert dict(x[0] for x in only["subject"])["commonName"] == "kubeconfig-test-ca"
    assert config.ssl_context.cert_store_stats()["x509_ca"] == 1


async def test_relative_files_resolve_against_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs/ca.crt").write_bytes(CA.cert_pem)
    (tmp_path / "certs/tls.crt").write_bytes(PAIR.cert_pem)
    (tmp_path / "certs/tls.key").write_bytes(PAIR.key_pem)
    (tmp_path / "token").write_text("first\n")
    path = write(tmp_path / "config", cluster={
        "server": "https://h:1", "certificate-authority": "certs/ca.crt"},
        user={"client-certificate": "certs/tls.crt", "client-key": "certs/tls.key",
              "tokenFile": "token"})
    config = await load_config(path)
    assert config.ssl_context is not None
    assert await config.token() == "Bearer first"
    (tmp_path / "token").write_text("rotated")  # read again on every request
    assert await config.token() == "Bearer rotated"


async def test_kubeconfig_list_is_merged_first_definition_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = write(tmp_path / "a", user={"token": "from-a"}, current=None, name="other")
    second = write(tmp_path / "b", user={"token": "from-b"}, namespace="b-ns")
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    config = await load_config()
    # current-context "ctx" comes from b (a sets none); user "u" was defined first by a
    assert config.namespace == "b-ns"
    assert await config.token() == "Bearer from-a"


async def test_basic_auth_and_plain_http(tmp_path: Path) -> None:
    path = write(tmp_path / "config", cluster={"server": "http://127.0.0.1:8080"},
                 user={"username": "admin", "password": "s3cret"})
    config = await load_config(path)
    assert config.ssl_context is None
    assert await config.token() == "Basic " + b64(b"admin:s3cret")
    assert "s3cret" not in repr(config)


def plugin(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "plugin.py"
    script.write_text(body)
    return [sys.executable, str(script)]


async def test_exec_plugin_token_is_cached_until_it_expires(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    command = plugin(tmp_path, f"""
import json, os, pathlib
runs = pathlib.Path({str(runs)!r})
n = len(runs.read_text()) if runs.exists() else 0
runs.write_text("x" * (n + 1))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["spec"]["interactive"] is False and os.environ["EXTRA"] == "yes"
expires = "2000-01-01T00:00:00Z" if n < 2 else "2999-01-01T00:00:00Z"
print(json.dumps({{"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {{"token": f"tok-{{n}}", "expirationTimestamp": expires}}}}))
""")
    path = write(tmp_path / "config", user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": command[0],
        "args": command[1:], "env": [{"name": "EXTRA", "value": "yes"}],
        "interactiveMode": "Never"}})
    config = await load_config(path)  # run once at load time
    assert await config.token() == "Bearer tok-1"  # expired: run again
    assert await config.token() == "Bearer tok-2"  # expired: run again, now far in the future
    assert await config.token() == "Bearer tok-2"  # cached
    assert runs.read_text() == "xxx"


async def test_exec_plugin_client_certificate(tmp_path: Path) -> None:
    cred = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
            "status": {"clientCertificateData": PAIR.cert_pem.decode(),
                       "clientKeyData": PAIR.key_pem.decode()}}
    command = plugin(tmp_path, f"print({json.dumps(json.dumps(cred))})")
    path = write(tmp_path / "config", user={"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": command[0],
        "args": command[1:]}})
    config = await load_config(path)
    assert config.ssl_context is not None
    assert await config.token() is None


async def test_failing_exec_plugin_is_one_clear_error(tmp_path: Path) -> None:
    command = plugin(tmp_path, "import sys; sys.stderr.write('login expired'); sys.exit(3)")
    path = write(tmp_path / "config", user={"exec": {"command": command[0],
                                                     "args": command[1:]}})
    with pytest.raises(ConfigError, match=r"exited with 3: login expired"):
        await load_config(path)


@pytest.mark.parametrize(("text", "match"), [
    ("clusters: [oops", "not valid YAML"),
    ("- a list", "not a mapping"),
])
async def test_malformed_kubeconfig(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "config").write_text(text)
    with pytest.raises(ConfigError, match=match):
        await load_config(tmp_path / "config")


async def test_unknown_context_missing_file_and_proxy_url(tmp_path: Path) -> None:
    path = write(tmp_path / "config", user={"token": "t"})
    with pytest.raises(ConfigError, match="no context 'nope'"):
        await load_config(path, context="nope")
    with pytest.raises(ConfigError, match="does not exist"):
        await load_config(tmp_path / "absent")
    proxied = write(tmp_path / "proxied", user={"token": "t"}, cluster={
        "server": "https://h:1", "proxy-url": "http://proxy:3128"})
    with pytest.raises(ConfigError, match="proxy-url"):
        await load_config(proxied)


async def test_tls_server_name_is_carried_to_the_client_config(tmp_path: Path) -> None:
    named = write(tmp_path / "named", user={"token": "t"}, cluster={
        "server": "https://10.0.0.1:6443", "tls-server-name": "api.internal"})
    assert (await load_config(named)).tls_server_name == "api.internal"
    plain = write(tmp_path / "plain", user={"token": "t"}, cluster={"server": "https://h:1"})
    assert (await load_config(plain)).tls_server_name is None
    odd = write(tmp_path / "odd", user={"token": "t"}, cluster={
        "server": "https://h:1", "tls-server-name": ["a"]})
    with pytest.raises(ConfigError, match="tls-server-name is not a string"):
        await load_config(odd)


def test_half_a_client_certificate_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "config", user={"client-certificate-data": b64(PAIR.cert_pem)})
    with pytest.raises(kc.KubeconfigError, match="both the certificate and the key"):
        kc.from_kubeconfig([path])


def test_auth_provider_users_are_left_to_the_library(tmp_path: Path) -> None:
    path = write(tmp_path / "config", user={"auth-provider": {"name": "oidc", "config": {}}})
    assert kc.from_kubeconfig([path]).uses_auth_provider


async def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_bytes(CA.cert_pem)
    (tmp_path / "namespace").write_text("pods-ns\n")
    monkeypatch.setattr(kc, "SERVICE_ACCOUNT", tmp_path)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    config = await load_config()
    assert config.server == "https://[fd00::1]:443"
    assert config.namespace == "pods-ns"
    assert await config.token() == "Bearer sa-token"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    with pytest.raises(ConfigError, match="not in a cluster"):
        await load_config()
