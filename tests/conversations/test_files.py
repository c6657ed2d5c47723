"""Files in a conversation, the same tests against a directory (file://) and against an
S3-compatible server started in the test (moto's server mode): upload, download by the
participants only, nothing stored for an over-size upload, and S3 downloads by short-lived
presigned URL."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlsplit

import httpx
import pytest
from httpx import AsyncClient

from chainconsult.app import create_app
from chainconsult.conversations.files import clean_name
from chainconsult.conversations.jobs import sweep_deleted_files
from chainconsult.infra.db.engine import build_engine, build_sessionmaker
from tests.conftest import make_settings
from tests.conversations.story import proposed_thread
from tests.helpers import serving
from tests.infra.backup.s3 import s3_server
from tests.market import client_account, query

# A real 1x1 PNG: its type must come from these bytes, not from the name it is sent under.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)
LIMIT = 64 * 1024
PRESIGNED_SECONDS = 30


@dataclass
class Store:
    kind: str
    env: dict[str, Any]
    objects: Any  # () -> list of stored keys

    def keys(self) -> list[str]:
        found: list[str] = self.objects()
        return found


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "file":
        root = tmp_path / "files"

        def on_disk() -> list[str]:
            return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())

        yield Store("file", {"STORAGE_URL": f"file://{root}"}, on_disk)
        return
    with s3_server() as server:
        s3: Any = server.client()
        bucket = f"files-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)

        def in_bucket() -> list[str]:
            listed = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
            return sorted(item["Key"] for item in listed)

        yield Store(
            "s3",
            {
                "STORAGE_URL": f"s3://{bucket}/uploads",
                "S3_ENDPOINT_URL": server.endpoint_url,
                "S3_REGION": "us-east-1",
            },
            in_bucket,
        )


@pytest.fixture
async def files_client(
    database_url: str, tmp_path: Path, store: Store
) -> AsyncIterator[AsyncClient]:
    settings = make_settings(
        database_url,
        tmp_path,
        REDIS_URL=None,
        MAX_UPLOAD_BYTES=str(LIMIT),
        STORAGE_PRESIGNED_URL_SECONDS=str(PRESIGNED_SECONDS),
        **store.env,
    )
    async with serving(create_app(settings)) as http:
        yield http


async def fetch(client: AsyncClient, file_id: str, headers: dict[str, str]) -> httpx.Response:
    """Download as a browser would: follow a redirect to the object store."""
    answer = await client.get(f"/api/v2/files/{file_id}", headers=headers)
    if answer.status_code != 302:
        return answer
    location = answer.headers["location"]
    async with httpx.AsyncClient() as outside:
        return await outside.get(location)


async def test_upload_and_download_by_participants_only(
    files_client: AsyncClient, database_url: str, store: Store
) -> None:
    client = files_client
    thread = await proposed_thread(client, database_url)
    uploaded = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("../../report<final>.txt", PNG, "text/plain")},
        headers=thread.expert_headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    assert file["content_type"] == "image/png"
    assert file["name"] == "report_final_.txt"
    assert file["size"] == len(PNG)
    assert file["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert len(store.keys()) == 1
    # It arrives as a message carrying the file.
    listed = await client.get(
        f"/api/v2/conversations/{thread.id}/messages", headers=thread.client_headers
    )
    [message] = listed.json()["data"]
    assert message["file"]["id"] == file["id"]

    for headers in (thread.client_headers, thread.expert_headers):
        got = await fetch(client, file["id"], headers)
        assert got.status_code == 200
        assert got.content == PNG
        assert got.headers["content-disposition"].startswith("attachment;")
    direct = await client.get(f"/api/v2/files/{file['id']}", headers=thread.client_headers)
    assert direct.status_code == (302 if store.kind == "s3" else 200)

    _, stranger = await client_account(client, name="Nosy Neighbour")
    assert (await client.get(f"/api/v2/files/{file['id']}", headers=stranger)).status_code == 404
    by_stranger = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("x.txt", b"hello", "text/plain")},
        headers=stranger,
    )
    assert by_stranger.status_code == 404
    client.cookies.clear()
    assert (await client.get(f"/api/v2/files/{file['id']}")).status_code == 401
    assert len(store.keys()) == 1


async def test_an_oversize_upload_is_refused_and_nothing_is_stored(
    files_client: AsyncClient, database_url: str, store: Store
) -> None:
    client = files_client
    thread = await proposed_thread(client, database_url)
    too_big = os.urandom(LIMIT + 1)
    refused = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("big.bin", too_big, "application/octet-stream")},
        headers=thread.expert_headers,
    )
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("application/problem+json")

    # Streamed without a Content-Length: the count stops it all the same.
    boundary = "cc-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        for _ in range(40):
            yield os.urandom(LIMIT // 8)
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        content=body(),
        headers={
            **thread.expert_headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert streamed.status_code == 413
    exactly = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("limit.bin", too_big[:LIMIT], "application/octet-stream")},
        headers=thread.expert_headers,
    )
    assert exactly.status_code == 201, exactly.text
    assert exactly.json()["content_type"] == "application/octet-stream"
    assert len(store.keys()) == 1
    assert query(database_url, "SELECT count(*) FROM conversation_files") == [(1,)]
    assert query(database_url, "SELECT count(*) FROM conversation_messages") == [(1,)]


async def test_a_file_whose_row_is_not_committed_is_removed_from_the_store(
    files_client: AsyncClient, database_url: str, store: Store
) -> None:
    client = files_client
    thread = await proposed_thread(client, database_url)
    # A deferred constraint trigger fails the COMMIT itself, after the object is stored.
    query(
        database_url,
        "CREATE FUNCTION refuse_file() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$",
    )
    query(
        database_url,
        "CREATE CONSTRAINT TRIGGER refuse_file AFTER INSERT ON conversation_files"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_file()",
    )
    try:
        failed = await client.post(
            f"/api/v2/conversations/{thread.id}/files",
            files={"file": ("notes.txt", b"audit notes", "text/plain")},
            headers=thread.expert_headers,
        )
    finally:
        query(database_url, "DROP TRIGGER refuse_file ON conversation_files")
        query(database_url, "DROP FUNCTION refuse_file()")
    assert failed.status_code >= 500
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert store.keys() == []
    assert query(database_url, "SELECT count(*) FROM conversation_files") == [(0,)]


async def test_a_deleted_messages_file_is_removed_by_the_sweep(
    files_client: AsyncClient, database_url: str, store: Store, tmp_path: Path
) -> None:
    client = files_client
    thread = await proposed_thread(client, database_url)
    uploaded = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("notes.txt", b"audit notes", "text/plain")},
        headers=thread.client_headers,
    )
    file_id = uploaded.json()["id"]
    [(message_id,)] = query(database_url, "SELECT message_id FROM conversation_files")
    deleted = await client.delete(f"/api/v2/messages/{message_id}", headers=thread.client_headers)
    assert deleted.status_code == 204
    assert (await fetch(client, file_id, thread.expert_headers)).status_code == 404
    [(task,)] = query(
        database_url,
        "SELECT task_name FROM procrastinate_jobs WHERE task_name LIKE 'conversations.remove%%'",
    )
    assert task == "conversations.remove_deleted_files"
    settings = make_settings(database_url, tmp_path, REDIS_URL=None, **store.env)
    engine = build_engine(settings.database)
    try:
        removed = await sweep_deleted_files(settings, build_sessionmaker(engine))
    finally:
        await engine.dispose()
    assert removed == 1
    assert store.keys() == []
    assert query(database_url, "SELECT count(*) FROM conversation_files") == [(0,)]


@pytest.mark.parametrize("store", ["s3"], indirect=True)
async def test_s3_downloads_are_presigned_for_a_short_time(
    files_client: AsyncClient, database_url: str
) -> None:
    client = files_client
    thread = await proposed_thread(client, database_url)
    uploaded = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("a.png", PNG, "image/png")},
        headers=thread.expert_headers,
    )
    answer = await client.get(
        f"/api/v2/files/{uploaded.json()['id']}", headers=thread.client_headers
    )
    assert answer.status_code == 302
    signed = parse_qs(urlsplit(answer.headers["location"]).query)
    assert signed["X-Amz-Expires"] == [str(PRESIGNED_SECONDS)]
    issued = dt.datetime.strptime(signed["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - issued).total_seconds()) < 5
    # Each download gets a fresh link, never a stored one.
    time.sleep(1.1)
    later = await client.get(
        f"/api/v2/files/{uploaded.json()['id']}", headers=thread.client_headers
    )
    assert later.headers["location"] != answer.headers["location"]


def sigv4_query_signature_valid(url: str, *, secret: str) -> bool:
    """Whether ``url``'s SigV4 query signature (X-Amz-Signature) is right for its other
    parameters, its lifetime (X-Amz-Date, X-Amz-Expires) among them: recomputed here from the
    specification, as an S3 server does before it looks at the clock."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(params)["X-Amz-Signature"]
    canonical_query = "&".join(
        f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}"
        for key, value in sorted(params)
        if key != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        ["GET", parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD"]
    )
    scope = dict(params)["X-Amz-Credential"].split("/", 1)[1]
    day, region, service, _ = scope.split("/")
    to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            dict(params)["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(given, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest())


@pytest.mark.parametrize("store", ["s3"], indirect=True)
async def test_a_presigned_links_lifetime_is_fixed_by_its_signature(
    files_client: AsyncClient, database_url: str
) -> None:
    """moto does not check query-string signatures at all, so it cannot show a link being
    refused after its lifetime; what the API controls is checked instead: the lifetime is
    STORAGE_PRESIGNED_URL_SECONDS from now, and it is signed, so a client that stretches it
    (or moves its start) holds a link no S3 server accepts. Refusing a link whose lifetime
    is over is the S3 server's part (docs/conversations.md)."""
    client = files_client
    thread = await proposed_thread(client, database_url)
    uploaded = await client.post(
        f"/api/v2/conversations/{thread.id}/files",
        files={"file": ("a.png", PNG, "image/png")},
        headers=thread.expert_headers,
    )
    answer = await client.get(
        f"/api/v2/files/{uploaded.json()['id']}", headers=thread.client_headers
    )
    url = answer.headers["location"]
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert sigv4_query_signature_valid(url, secret=secret)
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == [str(PRESIGNED_SECONDS)]
    stretched = url.replace(f"X-Amz-Expires={PRESIGNED_SECONDS}", "X-Amz-Expires=604800")
    assert stretched != url
    assert not sigv4_query_signature_valid(stretched, secret=secret)
    issued = parse_qs(urlsplit(url).query)["X-Amz-Date"][0]
    moved = url.replace(f"X-Amz-Date={issued}", "X-Amz-Date=20990101T000000Z")
    assert not sigv4_query_signature_valid(moved, secret=secret)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        (".hidden", "hidden"),
        ("a\u202etxt.exe", "atxt.exe"),
        ("", "file"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_file_names_are_cleaned(raw: str, clean: str) -> None:
    assert clean_name(raw) == clean
