"""Running an operator: ordered start and stop, leader election, probes and metrics.

Known as ``pkg/manager`` in controller-runtime.
"""

from kuar.manager.health import HealthServer, HealthSettings
from kuar.manager.leader import LeaderElectionSettings, LeaderElector
from kuar.manager.manager import LeadershipLost, Manager, ManagerSettings, Runnable

__all__ = [
    "HealthServer",
    "HealthSettings",
    "LeaderElectionSettings",
    "LeaderElector",
    "LeadershipLost",
    "Manager",
    "ManagerSettings",
    "Runnable",
]
