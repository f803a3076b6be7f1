"""Issue 14, finding 7, for the local control plane: its keys and kubeconfigs are born 0600."""

from __future__ import annotations

from pathlib import Path

import pytest

from kuar.testing import ControlPlane, ControlPlaneSettings
from tests.unit.test_private_files import created  # noqa: F401 - the creation-mode spy

pytestmark = pytest.mark.controlplane


def test_control_plane_keys_and_kubeconfigs_are_created_0600(
    created: dict[str, int], tmp_path: Path  # noqa: F811
) -> None:
    with ControlPlane(ControlPlaneSettings()) as plane:
        alice = plane.add_user("alice", ["dev"])
        exported = plane.write_kubeconfig(tmp_path / "admin.kubeconfig")
        secrets = [plane.kubeconfig, alice, exported,
                   *(plane.kubeconfig.parent.parent.rglob("*.key"))]
        found = {str(p): created.get(str(p)) for p in secrets}
        assert len(found) >= 6, found
        assert all(mode == 0o600 for mode in found.values()), found
