"""Files in a conversation: an upload becomes a message carrying the file. The body is
spooled by the multipart parser (memory up to 1 MiB, then a temporary file) while the body
guard counts it, so an upload over MAX_UPLOAD_BYTES is refused (413) before anything is
stored. The type comes from the content, the name is cleaned, and the SHA-256 is recorded.
The object is stored before its row is committed; a transaction that does not commit removes
it again (``on_rollback``)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

import anyio.to_thread
import filetype  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from chainconsult.accounts.service import Principal
from chainconsult.conversations.repository import ConversationRepository
from chainconsult.conversations.service import ConversationService
from chainconsult.errors import (
    ChainconsultError,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
    field_error,
)
from chainconsult.infra.db.session import on_rollback
from chainconsult.infra.storage import ObjectStore
from chainconsult.infra.text import byte_size, one_line
from chainconsult.models.conversations import Conversation, ConversationFile, Message

_SNIFF_BYTES = 8192
_CHUNK = 1 << 20
_MAX_NAME = 200
# Characters no file system or header should meet in a name someone else downloads.
_UNSAFE = frozenset('<>:"/\\|?*')
UPLOAD_OVERHEAD_BYTES = 64 * 1024
"""Room for the multipart framing around the file (boundaries, part headers)."""
UPLOAD_PATHS = re.compile(r"(/api/v2)?/conversations/[^/]+/files")
"""The routes whose body is a multipart upload (as the body guard sees them: v2 paths): the
API's and the conversation page's upload form."""


def clean_name(raw: str | None) -> str:
    """A safe display and download name: the last path part, NFC, one line of visible text
    without the characters file systems refuse, no leading dot, at most 200 characters."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = one_line(unicodedata.normalize("NFC", name))
    name = "".join("_" if char in _UNSAFE else char for char in name).lstrip(". ")
    if len(name) > _MAX_NAME:
        _, dot, suffix = name.rpartition(".")
        keep = suffix if dot and len(suffix) <= 16 else ""
        name = name[: _MAX_NAME - len(keep) - 1] + ("." + keep if keep else "")
    return name or "file"


def sniff(head: bytes) -> str:
    """The media type the bytes say they are; text when they decode as UTF-8, else the
    generic binary type. What the client declared is never trusted."""
    kind = filetype.guess(head)
    if kind is not None:
        return str(kind.mime)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multibyte character cut at the end of the sniffed bytes is still text.
        if exc.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain"


@dataclass(frozen=True, slots=True)
class Digested:
    size: int
    sha256: str
    content_type: str


def digest(source: BinaryIO) -> Digested:
    source.seek(0)
    head = source.read(_SNIFF_BYTES)
    hasher = hashlib.sha256(head)
    size = len(head)
    while chunk := source.read(_CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    source.seek(0)
    return Digested(size=size, sha256=hasher.hexdigest(), content_type=sniff(head))


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than {byte_size(max_bytes)} ({max_bytes} bytes), the largest "
        "accepted; nothing was stored.",
        limit=max_bytes,
    )


async def upload_form(request: Request) -> FormData:
    """An upload's body, parsed: one file part at most and a few text fields (a page form's
    token)."""
    return await request.form(max_files=1, max_fields=4)


def upload_in(form: FormData, max_bytes: int) -> UploadFile:
    """The ``file`` part of a parsed upload, refused when missing or larger than
    ``max_bytes``. A part without a name or a byte is what a browser sends for a form whose
    file was never chosen: no file."""
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
        raise InvalidInput(
            "The upload needs a file, in a part named `file`.",
            errors=[field_error("file", "choose a file to upload")],
        )
    if upload.size is not None and upload.size > max_bytes:
        raise too_large(max_bytes)
    return upload


async def received_upload(request: Request, max_bytes: int) -> UploadFile:
    """The ``file`` part of a multipart body, refused when larger than ``max_bytes``.
    Anything but multipart/form-data is refused (415)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise UnsupportedMediaType(
            "Send the file as multipart/form-data, in a part named `file`.",
            headers={"Accept": "multipart/form-data"},
        )
    form = await upload_form(request)
    try:
        return upload_in(form, max_bytes)
    except ChainconsultError:
        await form.close()
        raise


class FileService:
    def __init__(self, session: AsyncSession, store: ObjectStore) -> None:
        self.session = session
        self.store = store
        self.repository = ConversationRepository(session)

    async def attach(
        self,
        conversation: Conversation,
        principal: Principal,
        upload: UploadFile,
        *,
        conversations: ConversationService,
        max_bytes: int,
    ) -> tuple[Message, ConversationFile]:
        digested = await anyio.to_thread.run_sync(digest, upload.file)
        if digested.size > max_bytes:
            raise too_large(max_bytes)
        name = clean_name(upload.filename)
        file_id = uuid.uuid4()
        key = f"conversations/{conversation.id}/{file_id}"
        await anyio.to_thread.run_sync(
            lambda: self.store.put_fileobj(key, upload.file, content_type=digested.content_type)
        )
        on_rollback(self.session, partial(anyio.to_thread.run_sync, self.store.delete, key))
        message = await self.repository.add_message(conversation, principal.account_id, name)
        file = await self.repository.add_file(
            ConversationFile(
                id=file_id,
                conversation_id=conversation.id,
                message_id=message.id,
                uploader_id=principal.account_id,
                name=name,
                size=digested.size,
                content_type=digested.content_type,
                sha256=digested.sha256,
                storage_key=key,
            )
        )
        await conversations.announce(conversation, message, file)
        return message, file

    async def receive(
        self,
        conversation_id: uuid.UUID,
        principal: Principal,
        upload: UploadFile,
        *,
        conversations: ConversationService,
        max_bytes: int,
    ) -> ConversationFile:
        """An upload into a thread the caller takes part in (else 404), from the API and the
        conversation page alike. The caller closes ``upload``."""
        conversation = await conversations.writable(conversation_id, principal)
        _, file = await self.attach(
            conversation, principal, upload, conversations=conversations, max_bytes=max_bytes
        )
        return file
