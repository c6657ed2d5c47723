"""Multi-host run: two API nodes and two job workers, each in its own network namespace (as on
four hosts), sharing one PostgreSQL and one Redis (on a fifth namespace, the database host),
all joined by a bridge, and shows:

  a) rate limits are shared: one anonymous client alternating between the nodes gets exactly
     its quota in total, counted down across both, then 429 from both;
  b) cache invalidation crosses nodes: node B serves a read from its cache, node A writes,
     and B's very next read shows the write (a plan change, a project edit);
  c) every job is processed exactly once by the two workers: each job started once and
     succeeded, each email arrived once, and both worker hosts did part of the work.

    sudo .venv/bin/python -m bench.multihost          (or `make multihost` as root)

Needs root (ip netns), iproute2, redis-server and PostgreSQL's server binaries. Everything it
creates (namespaces, bridge, private services, processes) is removed at the end, also on
failure, Ctrl-C or SIGTERM; leftovers of a run killed outright are removed at the next start.
Prints PASS or FAIL per check and exits 0 only when every check passed."""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
from bench.chaos._load import JobDeferrer
from bench.chaos._report import APP_TASKS
from bench.chaos._services import PrivatePostgres, PrivateRedis, SmtpSink
from bench.chaos._stack import ApiServer, SupervisedWorker, base_env, run_cli
from bench.multihost._netns import Network, Node

ANONYMOUS_LIMIT = 30
PASSWORD = "multihost password 2026"
ADMIN_EMAIL = "admin@multihost.example"
JOBS_DEFERRED = 200
REGISTRATIONS = 20
TIME_LIMIT_S = 420
WORKDIR_PREFIX = "ccmh-run-"


@dataclass
class Check:
    name: str
    passed: bool
    details: list[str] = field(default_factory=list)


@dataclass
class Cluster:
    network: Network
    api: list[ApiServer]
    workers: list[SupervisedWorker]
    postgres: PrivatePostgres
    redis: PrivateRedis
    smtp: SmtpSink
    database_url: str
    limited_client: str
    """An address of the host side that is not in TRUSTED_IPS: its requests are counted."""


def url(server: ApiServer) -> str:
    return server.base_url


def check_rate_limits(cluster: Cluster) -> Check:
    a, b = cluster.api
    transport = httpx.HTTPTransport(local_address=cluster.limited_client)
    answers: list[tuple[str, int, str]] = []
    with httpx.Client(transport=transport, timeout=10) as http:
        for number in range(ANONYMOUS_LIMIT + 10):
            node = (a, b)[number % 2]
            response = http.get(f"{url(node)}/api/v2/experts")
            header = response.headers.get("RateLimit", "")
            answers.append(("A" if node is a else "B", response.status_code, header))
    allowed = [answer for answer in answers if answer[1] == 200]
    refused = [answer for answer in answers if answer[1] == 429]
    remaining = [
        int(m.group(1)) for _, _, header in allowed if (m := re.search(r"r=(\d+)", header))
    ]
    counted_down = remaining == list(range(ANONYMOUS_LIMIT - 1, -1, -1))
    both_refuse = {node for node, _, _ in refused} == {"A", "B"}
    passed = (
        len(allowed) == ANONYMOUS_LIMIT
        and all(status == 200 for _, status, _ in answers[:ANONYMOUS_LIMIT])
        and len(refused) == len(answers) - ANONYMOUS_LIMIT
        and counted_down
        and both_refuse
    )
    return Check(
        f"a) rate limit {ANONYMOUS_LIMIT}/minute shared by both nodes",
        passed,
        [
            f"{len(answers)} requests alternating A, B from one client address: "
            f"{len(allowed)} x 200, {len(refused)} x 429 (A: "
            f"{sum(1 for n, s, _ in refused if n == 'A')}, B: "
            f"{sum(1 for n, s, _ in refused if n == 'B')})",
            "remaining quota in `RateLimit` across the nodes: "
            + ", ".join(f"{node}:{r}" for (node, _, _), r in zip(allowed, remaining, strict=False))
            + (" (one shared count)" if counted_down else " (NOT one count)"),
        ],
    )


def cache_hits(http: httpx.Client, node: ApiServer) -> float:
    text = http.get(f"{url(node)}/metrics").text
    return sum(
        float(value)
        for value in re.findall(
            r'^chainconsult_cache_requests_total\{[^}]*result="hit"[^}]*\} (\S+)$',
            text,
            re.MULTILINE,
        )
    )


def check_cache_invalidation(cluster: Cluster) -> Check:
    a, b = cluster.api
    details: list[str] = []
    with httpx.Client(timeout=10) as http:
        email = f"client-{secrets.token_hex(4)}@multihost.example"
        account = http.post(
            f"{url(a)}/api/v2/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Ada", "role": "client"},
        ).json()
        user = {
            "Authorization": "Bearer "
            + http.post(
                f"{url(b)}/api/v2/auth/login", json={"email": email, "password": PASSWORD}
            ).json()["access_token"]
        }
        admin = {
            "Authorization": "Bearer "
            + http.post(
                f"{url(a)}/api/v2/auth/login", json={"email": ADMIN_EMAIL, "password": PASSWORD}
            ).json()["access_token"]
        }

        # 1. The account behind a token (role, plan) is cached on every node for 60 s.
        hits_before = cache_hits(http, b)
        first = http.get(f"{url(b)}/api/v2/auth/me", headers=user).json()["plan"]
        http.get(f"{url(b)}/api/v2/auth/me", headers=user)
        hits_primed = cache_hits(http, b)
        changed = http.post(
            f"{url(a)}/api/v2/admin/users/{account['id']}/plan", json={"plan": "pro"}, headers=admin
        )
        after = http.get(f"{url(b)}/api/v2/auth/me", headers=user).json()["plan"]
        plan_ok = first == "free" and changed.status_code == 200 and after == "pro"
        details.append(
            f"plan: B read {first!r} (B's cache hits +{hits_primed - hits_before:.0f}), "
            f"admin on A set 'pro' ({changed.status_code}), B's next read: {after!r}"
        )

        # 2. The open-project list is cached for 120 s; an edit must drop it everywhere.
        project = http.post(
            f"{url(a)}/api/v2/projects",
            headers=user,
            json={
                "title": "Multihost round 0",
                "description": "A project edited on one node and read on the other.",
                "chains": ["ethereum"],
                "skills": ["solidity"],
                "budget": {"min": "1000", "max": "5000", "currency": "USD"},
                "deadline": "2031-01-01",
            },
        ).json()
        stale = 0
        rounds = 20
        hits_before = cache_hits(http, b)
        for round_ in range(1, rounds + 1):
            for _ in range(2):  # the second read is served from B's cache
                http.get(f"{url(b)}/api/v2/projects?view=open&limit=5", headers=user)
            edit = http.patch(
                f"{url(a)}/api/v2/projects/{project['id']}",
                json={"title": f"Multihost round {round_}"},
                headers=user,
            )
            page = http.get(f"{url(b)}/api/v2/projects?view=open&limit=5", headers=user).json()
            titles = [item["title"] for item in page["data"] if item["id"] == project["id"]]
            if edit.status_code != 200 or titles != [f"Multihost round {round_}"]:
                stale += 1
        hits = cache_hits(http, b) - hits_before
        details.append(
            f"project list: {rounds} rounds of (B reads twice, A edits the title, B reads): "
            f"{stale} stale reads on B; B's cache hits in those rounds: +{hits:.0f}"
        )
    return Check(
        "b) a write on node A is seen by the next read on node B",
        plan_ok and stale == 0 and hits >= rounds,
        details,
    )


def check_jobs_exactly_once(cluster: Cluster) -> Check:
    import psycopg
    from psycopg.rows import dict_row

    a, b = cluster.api
    started = time.monotonic()
    acknowledged = 0
    with httpx.Client(timeout=30) as http:
        for number in range(REGISTRATIONS):
            node = (a, b)[number % 2]
            response = http.post(
                f"{url(node)}/api/v2/auth/register",
                json={
                    "email": f"user-{number}-{secrets.token_hex(3)}@multihost.example",
                    "password": PASSWORD,
                    "display_name": "Grace",
                    "role": "client",
                },
            )
            acknowledged += response.status_code == 201
    deferrer = JobDeferrer(cluster.database_url, interval=0)

    async def defer_all() -> None:
        for _ in range(JOBS_DEFERRED):
            await deferrer.defer_one()
        await deferrer.engine.dispose()

    asyncio.run(defer_all())

    def query(sql: str) -> list[dict[str, object]]:
        with psycopg.connect(cluster.database_url, row_factory=dict_row) as conn:
            return conn.execute(sql, {"tasks": list(APP_TASKS)}).fetchall()

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pending = query(
            "SELECT count(*) AS n FROM procrastinate_jobs"
            " WHERE task_name = ANY(%(tasks)s) AND status IN ('todo', 'doing')"
        )[0]["n"]
        if pending == 0:
            break
        time.sleep(0.25)
    took = time.monotonic() - started
    statuses = {
        str(row["status"]): int(str(row["n"]))
        for row in query(
            "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs"
            " WHERE task_name = ANY(%(tasks)s) GROUP BY status"
        )
    }
    starts = Counter(
        int(str(row["n"]))
        for row in query(
            "SELECT j.id, count(e.id) AS n FROM procrastinate_jobs j LEFT JOIN"
            " procrastinate_events e ON e.job_id = j.id AND e.type = 'started'"
            " WHERE j.task_name = ANY(%(tasks)s) GROUP BY j.id"
        )
    )
    runners = query(
        "SELECT count(DISTINCT worker_id) AS n FROM procrastinate_jobs"
        " WHERE task_name = ANY(%(tasks)s)"
    )[0]["n"]
    deliveries = query(
        "SELECT status::text AS status, attempts, count(*) AS n FROM email_deliveries"
        " GROUP BY status, attempts"
    )
    # Registrations by the cache check (one) and by this check, plus the jobs deferred here.
    expected = acknowledged + 1 + len(deferrer.committed)
    total = sum(statuses.values())
    peers = Counter(item.peer for item in cluster.smtp.received)
    worker_hosts = {node.address for node in cluster.network.nodes if "worker" in node.name}
    passed = (
        acknowledged == REGISTRATIONS
        and len(deferrer.committed) == JOBS_DEFERRED
        and total == expected
        and statuses.get("succeeded") == expected
        and starts == Counter({1: expected})
        and cluster.smtp.count() == expected
        and cluster.smtp.duplicates() == 0
        and set(peers) == worker_hosts
        and all(row["attempts"] == 1 and row["status"] == "sent" for row in deliveries)
    )
    return Check(
        "c) every job processed exactly once by two workers",
        passed,
        [
            f"{acknowledged} registrations (welcome emails) through both nodes, "
            f"{len(deferrer.committed)} notification emails queued, "
            f"{expected} jobs expected; done in {took:.1f} s",
            f"jobs by status: {statuses}; started events per job: "
            + ", ".join(
                f"{count} job(s) started {times}x" for times, count in sorted(starts.items())
            ),
            f"emails received: {cluster.smtp.count()}, duplicates: {cluster.smtp.duplicates()}; "
            "by sending host: " + ", ".join(f"{peer}: {n}" for peer, n in sorted(peers.items())),
            f"distinct worker ids that ran jobs: {runners}; "
            "email_deliveries (status, attempts, n): "
            + ", ".join(f"({r['status']}, {r['attempts']}, {r['n']})" for r in deliveries),
        ],
    )


def start_cluster(workdir: Path, network: Network, stack: list[Callable[[], None]]) -> Cluster:
    network.create()
    stack.append(network.destroy)
    limited_client = network.add_address(2)
    # PostgreSQL and Redis on a host of their own: a run killed outright leaves nothing
    # running outside the namespaces, which the next run removes.
    data = network.add_node("data", 5)
    api_nodes = [network.add_node("api-a", 11), network.add_node("api-b", 12)]
    worker_nodes = [network.add_node("worker-a", 21), network.add_node("worker-b", 22)]

    postgres = PrivatePostgres(
        host=data.address,
        port=5432,  # the namespace is ours: standard ports are free there
        trusted_network=f"{network.subnet}.0/24",
        prefix=data.exec_prefix(),
        root=workdir / "postgres",
    )
    stack.append(postgres.stop)
    postgres.start()
    redis = PrivateRedis(host=data.address, port=6379, prefix=data.exec_prefix())
    stack.append(redis.stop)
    redis.start()
    smtp = SmtpSink(host=network.gateway, rcpt_delay=0.05)
    stack.append(smtp.stop)
    smtp.start()
    database_url = postgres.create_database("chainconsult")

    env = base_env(
        database_url=database_url, redis_url=redis.url, smtp=smtp, data_dir=workdir / "host"
    )
    env.update(
        {
            "RATE_LIMIT_ANONYMOUS": f"{ANONYMOUS_LIMIT}/minute",
            # The host side's own address is the operator's: uncounted, may read /metrics.
            "TRUSTED_IPS": f"{network.gateway}/32",
        }
    )
    setup_log = workdir / "setup.log"
    run_cli(env, "migrate", log=setup_log)
    create_admin(env, setup_log)

    def node_env(node: Node) -> dict[str, str]:
        # Each host has its own data dir (metrics files, nothing else is local).
        return {**env, "CHAINCONSULT_DATA_DIR": str(workdir / node.name)}

    api = []
    for node in api_nodes:
        server = ApiServer(
            node_env(node),
            workers=1,
            log=workdir / f"{node.name}.log",
            host=node.address,
            port=8000,
            prefix=node.exec_prefix(),
        )
        stack.append(server.stop)
        api.append(server.start())
    workers = []
    for node in worker_nodes:
        worker = SupervisedWorker(
            node_env(node),
            name=node.name,
            concurrency=10,
            log=workdir / f"{node.name}.log",
            prefix=node.exec_prefix(),
        )
        stack.append(worker.stop)
        workers.append(worker.start())
    return Cluster(network, api, workers, postgres, redis, smtp, database_url, limited_client)


def create_admin(env: dict[str, str], log: Path) -> None:
    import subprocess

    with log.open("ab") as out:
        subprocess.run(
            [sys.executable, "-m", "chainconsult", "create-admin", ADMIN_EMAIL, "--password-stdin"],
            input=f"{PASSWORD}\n".encode(),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
        )


def _single_run_lock() -> IO[str]:
    """Namespace names are fixed: one run at a time on a machine."""
    handle = (Path(tempfile.gettempdir()) / "ccmh.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit("multihost: another run is in progress on this machine")
    return handle


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # Unwind through the finally below, so namespaces and services are removed.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("multihost: network namespaces need root (run `make multihost` as root)")
    for tool in ("ip", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"multihost: {tool} is not installed")
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGALRM, _on_signal)
    signal.alarm(TIME_LIMIT_S)
    lock = _single_run_lock()
    # Temporary dirs of a run that was killed outright (its namespaces are removed below).
    for stale in Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    workdir.chmod(0o711)  # PostgreSQL runs as its own account and needs to reach its dir
    cleanup: list[Callable[[], None]] = []
    checks: list[Check] = []
    error: str | None = None
    started = time.monotonic()
    try:
        print("multihost: starting 2 API nodes and 2 workers in namespaces ...", flush=True)
        cluster = start_cluster(workdir, Network(), cleanup)
        print(
            "multihost: api-a "
            f"{cluster.api[0].base_url}, api-b {cluster.api[1].base_url}, workers "
            f"{', '.join(n.address for n in cluster.network.nodes if 'worker' in n.name)}; "
            f"PostgreSQL and Redis on {cluster.postgres.host} "
            f"({time.monotonic() - started:.0f} s)",
            flush=True,
        )
        for run in (check_rate_limits, check_cache_invalidation, check_jobs_exactly_once):
            check = run(cluster)
            checks.append(check)
            print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}", flush=True)
            for line in check.details:
                print(f"      {line}", flush=True)
    except (Exception, KeyboardInterrupt) as exc:
        error = f"{type(exc).__name__}: {exc}"
        logs = sorted(workdir.glob("*.log"))
        for log in logs:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            if tail:
                print(f"--- {log.name}\n" + "\n".join(tail), file=sys.stderr)
    finally:
        signal.alarm(0)
        for step in reversed(cleanup):
            try:
                step()
            except Exception as exc:  # keep cleaning up whatever else is left
                print(f"multihost: cleanup step failed: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        lock.close()
    passed = error is None and len(checks) == 3 and all(check.passed for check in checks)
    verdict = "PASS" if passed else "FAIL"
    print(
        f"multihost: {verdict} ({sum(c.passed for c in checks)} of 3 checks passed"
        f"{'; ' + error if error else ''}) in {time.monotonic() - started:.0f} s; "
        "namespaces and services removed"
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
