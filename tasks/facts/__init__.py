"""Facts about a server running the srq-hpn stack, by domain (stack, database,
source, release, backups), as pyinfra splits its own facts.

Each fact is read-only and prints nothing secret, so it is safe at any verbosity.
Ask them ad hoc by these short names, e.g.::

    pyinfra inventory.py fact tasks.facts.StackContainers
    pyinfra inventory.py fact tasks.facts.StackHealth domain=example.com
    pyinfra inventory.py fact tasks.facts.AuditLog lines=5
    pyinfra inventory.py fact tasks.facts.Checklist
    pyinfra inventory.py fact tasks.facts.Backups
    pyinfra inventory.py fact tasks.facts.LastDrill
"""

from tasks.facts.acme import CaddyAcmeLog, DomainAddresses, ServedCertificate
from tasks.facts.backups import Backups, CalendarCheck, LastDrill, MigrationHistory, OffsitePassword, WalArchive
from tasks.facts.checklist import Checklist, SecretsRecord
from tasks.facts.database import AppRoleDrift, DatabaseRevision, MigrationState
from tasks.facts.release import AuditLog, DeployLock, Releases
from tasks.facts.source import (
    CheckoutHead,
    DataVolumes,
    FileStates,
    GitCheckout,
    GitRelease,
    TextFile,
    UploadedSource,
)
from tasks.facts.stack import (
    AppWithoutTls,
    ComposeVersion,
    ContainerLogs,
    ContainerRunning,
    ContainerVolumes,
    ImageLabels,
    MaintenancePage,
    RepoFiles,
    StackContainers,
    StackHealth,
)

__all__ = [
    "AppRoleDrift",
    "AppWithoutTls",
    "AuditLog",
    "Backups",
    "CaddyAcmeLog",
    "CalendarCheck",
    "Checklist",
    "CheckoutHead",
    "ComposeVersion",
    "ContainerRunning",
    "DatabaseRevision",
    "ContainerLogs",
    "ContainerVolumes",
    "DataVolumes",
    "DomainAddresses",
    "FileStates",
    "DeployLock",
    "GitCheckout",
    "GitRelease",
    "ImageLabels",
    "LastDrill",
    "MaintenancePage",
    "MigrationHistory",
    "MigrationState",
    "OffsitePassword",
    "Releases",
    "RepoFiles",
    "SecretsRecord",
    "ServedCertificate",
    "StackContainers",
    "StackHealth",
    "TextFile",
    "UploadedSource",
    "WalArchive",
]
