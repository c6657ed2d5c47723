"""Every Prometheus metric of the contract (DESIGN.md), defined once. Names carry the
``chainconsult_`` prefix. Code anywhere increments these; the /metrics endpoint and
multiprocess aggregation live with the monitoring issue's work.

In multiprocess mode (several server workers) prometheus-client picks its storage when a
metric is created, so PROMETHEUS_MULTIPROC_DIR must be set before this module is imported;
`chainconsult serve` sets it for its workers."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

NAMESPACE = "chainconsult"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

http_requests_total = Counter(
    "http_requests_total",
    "HTTP requests served, by route template and status.",
    ["method", "route", "status"],
    namespace=NAMESPACE,
)
http_request_duration_seconds = Histogram(
    "http_request_duration_seconds",
    "Time to serve a request, by route template.",
    ["method", "route"],
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
cache_requests_total = Counter(
    "cache_requests_total",
    "Cache lookups by cache name and result (hit or miss).",
    ["cache", "result"],
    namespace=NAMESPACE,
)
cache_backend = Gauge(
    "cache_backend",
    "1 for the cache backend in use (redis or memory), 0 for the other.",
    ["backend"],
    namespace=NAMESPACE,
    multiprocess_mode="max",
)
rate_limit_decisions_total = Counter(
    "rate_limit_decisions_total",
    "Rate limit decisions by policy and result (allowed, limited, exempt).",
    ["policy", "result"],
    namespace=NAMESPACE,
)
db_pool_connections = Gauge(
    "db_pool_connections",
    "Database pool connections by state (checked_out, idle, overflow).",
    ["state"],
    namespace=NAMESPACE,
    multiprocess_mode="livesum",
)
db_query_duration_seconds = Histogram(
    "db_query_duration_seconds",
    "Time per SQL statement.",
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
db_slow_queries_total = Counter(
    "db_slow_queries_total",
    "Statements slower than SLOW_QUERY_MS.",
    namespace=NAMESPACE,
)
db_transaction_retries_total = Counter(
    "db_transaction_retries_total",
    "Units of work retried after a serialization failure, deadlock or lost connection.",
    namespace=NAMESPACE,
)
jobs_total = Counter(
    "jobs_total",
    "Background jobs finished, by task and status (succeeded, failed, retried, cancelled).",
    ["task", "status"],
    namespace=NAMESPACE,
)
jobs_queue_depth = Gauge(
    "jobs_queue_depth",
    "Jobs waiting, by queue.",
    ["queue"],
    namespace=NAMESPACE,
    multiprocess_mode="max",
)
alerts_active = Gauge(
    "alerts_active",
    "Firing alerts, by severity.",
    ["severity"],
    namespace=NAMESPACE,
    multiprocess_mode="max",
)
auth_failures_total = Counter(
    "auth_failures_total",
    "Failed logins and rejected credentials.",
    namespace=NAMESPACE,
)
business_events_total = Counter(
    "business_events_total",
    "Marketplace events: user_registered, expert_application_submitted, expert_approved, "
    "project_submitted, proposal_submitted, proposal_accepted, project_completed.",
    ["event"],
    namespace=NAMESPACE,
)
auth_events_total = Counter(
    "auth_events_total",
    "Account security events: reset_requested, reset_completed, password_changed, "
    "email_verified, mfa_enabled, mfa_disabled, mfa_login, mfa_failed, siwe_login, wallet_linked, "
    "wallet_unlinked.",
    ["event"],
    namespace=NAMESPACE,
)
api_v1_requests_total = Counter(
    "api_v1_requests_total",
    "Requests served by the deprecated API v1, by method, v1 route template and client (the "
    "User-Agent product name, capped to a bounded set; 'other' beyond it).",
    ["method", "route", "client"],
    namespace=NAMESPACE,
)
escrow_events_total = Counter(
    "escrow_events_total",
    "Confirmed escrow contract events applied, by event (Deposited, Released, Disputed, "
    "Resolved, Refunded).",
    ["event"],
    namespace=NAMESPACE,
)
escrow_reconciliation_differences = Gauge(
    "escrow_reconciliation_differences",
    "Milestones whose state or amount in the database differs from the escrow contract's at "
    "the last confirmed block, as of the last reconciliation (anything above 0 is a bug).",
    namespace=NAMESPACE,
    multiprocess_mode="max",
)

backup_last_success_timestamp_seconds = Gauge(
    "backup_last_success_timestamp_seconds",
    "When the newest verified backup in BACKUP_URL was taken, seconds since the epoch (0: "
    "none found yet).",
    namespace=NAMESPACE,
    multiprocess_mode="max",
)

# Beyond the contract: added by the database resilience work.
db_pool_wait_seconds = Histogram(
    "db_pool_wait_seconds",
    "Time a caller waited for a pooled database connection (includes opening a new one).",
    namespace=NAMESPACE,
    buckets=_LATENCY_BUCKETS,
)
