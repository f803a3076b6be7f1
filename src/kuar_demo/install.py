"""The install trees a user applies with ``kubectl apply -k``, pinned to the images just built.

Place in the pipeline: ``kuar demo --node real`` (:mod:`kuar_demo.real`) and
tests/e2e/test_realnode.py write these small kustomize overlays into a temporary folder, then
run ``kubectl apply -k`` on them; nothing is installed by Python calls.

- :func:`write_operator_overlay`: ``deploy/default`` (CRD, RBAC, webhooks, the operator
  Deployment) plus the Component that ``kuar image build`` writes next to the archives
  (``images:`` pinned to the digests in images.json).
- :func:`write_target_overlay`: ``deploy/demo`` (my-service, the seed's https target) plus the
  Secret with its serving certificate, from a secretGenerator.
Guarantees: the overlays only reference the repository's trees (by relative path) and add
nothing else; :class:`DeployTreeMissing` says where the tree was looked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from kuar.base.files import write_private


class DeployTreeMissing(RuntimeError):
    """The repository's deploy/ tree (not part of the wheels) is not where it should be."""


def deploy_root() -> Path:
    """The repository's ``deploy/`` folder (``kuar demo --node real`` runs from a checkout)."""
    root = Path(__file__).resolve().parents[2] / "deploy"
    if not (root / "default" / "kustomization.yaml").exists():
        raise DeployTreeMissing(f"the install tree is not at {root}: run from a kuar checkout")
    return root


def _relative(target: Path, folder: Path) -> str:
    """``target`` as seen from ``folder``: kustomize refuses absolute resource paths."""
    return os.path.relpath(target.resolve(), folder.resolve())


def write_operator_overlay(folder: Path, image_dir: Path) -> Path:
    """Write ``folder/kustomization.yaml``: deploy/default with images pinned; return folder."""
    if not (image_dir / "kustomization.yaml").exists():
        raise DeployTreeMissing(f"{image_dir} holds no image Component: run `make images`")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [_relative(deploy_root() / "default", folder)],
        "components": [_relative(image_dir, folder)],
    }, sort_keys=False))
    return folder


def write_target_overlay(folder: Path, image_dir: Path, cert_pem: bytes, key_pem: bytes
                         ) -> Path:
    """Write the overlay of my-service with its TLS Secret (key file 0600); return folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tls.crt").write_bytes(cert_pem)
    write_private(folder / "tls.key", key_pem)
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [_relative(deploy_root() / "demo", folder)],
        "components": [_relative(image_dir, folder)],
        "secretGenerator": [{"name": "my-service-tls", "namespace": "default",
                             "type": "kubernetes.io/tls",
                             "files": ["tls.crt", "tls.key"]}],
        "generatorOptions": {"disableNameSuffixHash": True},
    }, sort_keys=False))
    return folder
