"""The declarative base, mixins and clock every table here uses; they live in infra/db so that
infra's own tables (alerts, log entries) can derive from them too."""

from chainconsult.infra.db.declarative import NAMING, Base, IdMixin, TimestampMixin, utcnow

__all__ = ["NAMING", "Base", "IdMixin", "TimestampMixin", "utcnow"]
