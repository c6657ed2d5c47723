"""The part of the settings object that infra's builders read (monitoring in the lifespan, the job
worker, the cache, backups). A Protocol, so infra names what it needs without importing
chainconsult.config, which composes these groups into ``Settings`` and satisfies it."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from chainconsult.infra.settings.alerting import MonitoringSettings
from chainconsult.infra.settings.backups import BackupSettings, StorageSettings
from chainconsult.infra.settings.caching import CacheSettings, RedisSettings
from chainconsult.infra.settings.conversations import ConversationSettings
from chainconsult.infra.settings.database import DatabaseSettings
from chainconsult.infra.settings.job_queue import JobSettings, RetentionSettings


class ProcessSettings(Protocol):
    """The application group's fields infra reads."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def log_to_database(self) -> bool: ...


class PlatformSettings(Protocol):
    # Read-only properties: a settings object's plain attributes satisfy them.
    @property
    def app(self) -> ProcessSettings: ...

    @property
    def database(self) -> DatabaseSettings: ...

    @property
    def redis(self) -> RedisSettings: ...

    @property
    def cache(self) -> CacheSettings: ...

    @property
    def jobs(self) -> JobSettings: ...

    @property
    def retention(self) -> RetentionSettings: ...

    @property
    def monitoring(self) -> MonitoringSettings: ...

    @property
    def storage(self) -> StorageSettings: ...

    @property
    def backup(self) -> BackupSettings: ...

    @property
    def conversations(self) -> ConversationSettings: ...
