"""Where backups are kept: a directory (``file:///srv/backups``) or an S3 bucket prefix
(``s3://bucket/prefix``, any S3-compatible server through S3_ENDPOINT_URL). Keys are paths
relative to the store's root, with ``/`` separators."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from chainconsult.infra.backup.errors import BackupError
from chainconsult.infra.backup.progress import Progress, Tick, silent
from chainconsult.infra.settings.platform import PlatformSettings
from chainconsult.infra.storage.directory import KeyOutsideRoot, path_inside, written_aside
from chainconsult.infra.storage.s3 import S3Prefix, s3_client

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    size: int
    modified: dt.datetime


class BackupStore(ABC):
    url: str
    """The store's URL as the operator wrote it (it holds no secret)."""

    @abstractmethod
    def put_file(self, key: str, source: Path, progress: Progress = silent) -> None: ...

    @abstractmethod
    def get_file(self, key: str, target: Path, progress: Progress = silent) -> None: ...

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes | None:
        """The object's content, None when there is no such object."""

    @abstractmethod
    def objects(self, prefix: str) -> list[StoredObject]:
        """Every object whose key starts with ``prefix``, in key order."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None: ...

    def local_path(self, key: str) -> Path | None:
        """The object's path on this machine, when the store is a directory."""
        return None


class FileStore(BackupStore):
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def _path(self, key: str) -> Path:
        try:
            return path_inside(self.root, key)
        except KeyOutsideRoot as exc:
            raise BackupError(f"{key!r} is outside the backup store") from exc

    def put_file(self, key: str, source: Path, progress: Progress = silent) -> None:
        with written_aside(self._path(key)) as partial:
            _copy(source, partial, "upload", progress)

    def get_file(self, key: str, target: Path, progress: Progress = silent) -> None:
        source = self._path(key)
        if not source.is_file():
            raise BackupError(f"{self.url}: no object {key}")
        _copy(source, target, "download", progress)

    def put_bytes(self, key: str, data: bytes) -> None:
        with written_aside(self._path(key)) as partial:
            partial.write_bytes(data)

    def get_bytes(self, key: str) -> bytes | None:
        path = self._path(key)
        return path.read_bytes() if path.is_file() else None

    def objects(self, prefix: str) -> list[StoredObject]:
        if not self.root.is_dir():
            return []
        found = []
        for dirpath, _, filenames in os.walk(self.root):
            for name in filenames:
                if name.endswith(".partial"):
                    continue
                path = Path(dirpath) / name
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    stat = path.stat()
                    modified = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
                    found.append(StoredObject(key, stat.st_size, modified))
        return sorted(found, key=lambda stored: stored.key)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            # Drop the directories the deletion emptied, up to the root.
            parent = path.parent
            while parent != self.root.resolve() and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
                parent = parent.parent

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


class S3Store(S3Prefix, BackupStore):
    def put_file(self, key: str, source: Path, progress: Progress = silent) -> None:
        total = source.stat().st_size
        sent = _Counter("upload", total, progress)
        # boto3 splits large files into a multipart upload and retries failed parts.
        with _s3_errors(self.url):
            self.client.upload_file(str(source), self.bucket, self._key(key), Callback=sent)

    def get_file(self, key: str, target: Path, progress: Progress = silent) -> None:
        with _s3_errors(self.url, key):
            size = self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
            received = _Counter("download", int(size), progress)
            self.client.download_file(self.bucket, self._key(key), str(target), Callback=received)

    def put_bytes(self, key: str, data: bytes) -> None:
        with _s3_errors(self.url):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def get_bytes(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        with _s3_errors(self.url, key):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                    return None
                raise
            body: bytes = answer["Body"].read()
            return body

    def objects(self, prefix: str) -> list[StoredObject]:
        found = []
        with _s3_errors(self.url):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(prefix)
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = str(item["Key"])[len(self.prefix) :]
                    found.append(StoredObject(key, int(item["Size"]), item["LastModified"]))
        return sorted(found, key=lambda stored: stored.key)

    def delete(self, keys: list[str]) -> None:
        with _s3_errors(self.url):
            for start in range(0, len(keys), 1000):  # the API's limit per request
                batch = [{"Key": self._key(key)} for key in keys[start : start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})


def store_url(settings: PlatformSettings) -> str:
    """BACKUP_URL, or the default under the data dir."""
    if settings.backup.url is not None:
        return settings.backup.url
    return f"file://{(settings.app.data_dir / 'backups').resolve()}"


def open_store(url: str, settings: PlatformSettings) -> BackupStore:
    scheme, _, rest = url.partition("://")
    if scheme == "file":
        # file:///srv/backups is absolute; file://var/backups is relative to the working dir.
        return FileStore(Path(unquote(rest)), url)
    if scheme == "s3":
        parts = urlsplit(url)
        if not parts.netloc:
            raise BackupError(f"{url}: an s3:// URL needs a bucket (s3://bucket/prefix)")
        prefix = parts.path.strip("/")
        return S3Store(
            parts.netloc, f"{prefix}/" if prefix else "", url, s3_client(settings.storage)
        )
    raise BackupError(f"{url}: a backup URL starts with file:// or s3://")


class _Counter:
    """boto3's transfer callback (bytes since the last call, from its worker threads) as
    progress ticks."""

    def __init__(self, step: str, total: int, progress: Progress) -> None:
        self.step = step
        self.total = total
        self.done = 0
        self.progress = progress

    def __call__(self, count: int) -> None:
        self.done += count
        self.progress(Tick(self.step, min(self.done, self.total), self.total))


@contextlib.contextmanager
def _s3_errors(url: str, key: str | None = None) -> Iterator[None]:
    """S3 failures as BackupError naming the store, the object and the server's message."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as error:
        where = f" ({key})" if key else ""
        raise BackupError(f"{url}{where}: {error}") from None
    except BotoCoreError as error:
        raise BackupError(f"{url}: {error}") from None


def _copy(source: Path, target: Path, step: str, progress: Progress) -> None:
    total = source.stat().st_size
    done = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        while chunk := reader.read(_CHUNK):
            writer.write(chunk)
            done += len(chunk)
            progress(Tick(step, done, total))
        writer.flush()
        os.fsync(writer.fileno())
    if total == 0:
        progress(Tick(step, 0, 0))
