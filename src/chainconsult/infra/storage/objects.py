"""Where uploaded files live. Keys are relative paths with ``/`` separators, chosen by the
caller (never from a user's file name). Calls block (boto3, file copies): run them on a
thread (``anyio.to_thread.run_sync``)."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit

from chainconsult.infra.settings.platform import PlatformSettings
from chainconsult.infra.storage.directory import path_inside, written_aside
from chainconsult.infra.storage.s3 import S3Prefix, s3_client

_CHUNK = 1 << 20


class ObjectStore(ABC):
    url: str

    @abstractmethod
    def put_fileobj(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        """Store what ``source`` holds from its current position to its end."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def local_path(self, key: str) -> Path | None:
        """The object's path on this machine, when the store is a directory."""
        return None

    def download_url(
        self, key: str, *, name: str, content_type: str, expires_seconds: int
    ) -> str | None:
        """A URL the client can fetch the object from directly, when the store has one."""
        return None


class FileObjects(ObjectStore):
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url

    def _path(self, key: str) -> Path:
        return path_inside(self.root, key)

    def put_fileobj(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        with written_aside(self._path(key)) as partial, partial.open("wb") as writer:
            shutil.copyfileobj(source, writer, _CHUNK)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def local_path(self, key: str) -> Path | None:
        return self._path(key)


class S3Objects(S3Prefix, ObjectStore):
    def put_fileobj(self, key: str, source: BinaryIO, *, content_type: str) -> None:
        # boto3 splits large files into a multipart upload and retries failed parts.
        self.client.upload_fileobj(
            source, self.bucket, self._key(key), ExtraArgs={"ContentType": content_type}
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
                return False
            raise
        return True

    def download_url(
        self, key: str, *, name: str, content_type: str, expires_seconds: int
    ) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                # Always a download, never rendered by the browser on the bucket's origin.
                "ResponseContentDisposition": content_disposition(name),
                "ResponseContentType": content_type,
            },
            ExpiresIn=expires_seconds,
        )
        return url


def content_disposition(name: str) -> str:
    """``attachment`` with the name for every browser: an ASCII fallback and RFC 5987's
    UTF-8 form."""
    fallback = name.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def files_url(settings: PlatformSettings) -> str:
    """STORAGE_URL, or the default under the data dir."""
    if settings.storage.url is not None:
        return settings.storage.url
    return f"file://{(settings.app.data_dir / 'files').resolve()}"


def open_object_store(settings: PlatformSettings) -> ObjectStore:
    url = files_url(settings)
    scheme, _, rest = url.partition("://")
    if scheme == "s3":
        parts = urlsplit(url)
        prefix = parts.path.strip("/")
        return S3Objects(
            parts.netloc, f"{prefix}/" if prefix else "", url, s3_client(settings.storage)
        )
    # file:///srv/files is absolute; file://var/files is relative to the working dir.
    return FileObjects(Path(unquote(rest)), url)
