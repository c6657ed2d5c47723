"""Alerting: rules over metric windows and health, stored with fingerprint dedup, escalated by
severity. See ``_evaluator`` for how it keeps working while PostgreSQL or Redis is down, and
``_spool`` for what a restart keeps."""

from chainconsult.infra.monitoring.alerts._escalation import (
    PAGERDUTY,
    WEBHOOK,
    Escalation,
    acknowledgeable,
    pagerduty_payload,
    slack_payload,
)
from chainconsult.infra.monitoring.alerts._evaluator import AlertEvaluator
from chainconsult.infra.monitoring.alerts._lease import EvaluatorLease
from chainconsult.infra.monitoring.alerts._model import Action, AlertRecord, AlertStatus, Severity
from chainconsult.infra.monitoring.alerts._rules import (
    RULES,
    AlertRule,
    BackupAge,
    Finding,
    Signals,
    Thresholds,
)
from chainconsult.infra.monitoring.alerts._spool import AlertSpool, Delivery, SpoolState
from chainconsult.infra.monitoring.alerts._store import AlertStore

__all__ = [
    "PAGERDUTY",
    "RULES",
    "WEBHOOK",
    "Action",
    "AlertEvaluator",
    "AlertRecord",
    "AlertRule",
    "AlertSpool",
    "AlertStatus",
    "AlertStore",
    "BackupAge",
    "Delivery",
    "Escalation",
    "EvaluatorLease",
    "Finding",
    "Severity",
    "Signals",
    "SpoolState",
    "Thresholds",
    "acknowledgeable",
    "pagerduty_payload",
    "slack_payload",
]
