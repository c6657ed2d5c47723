from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from starlette.responses import FileResponse as FileBytes
from starlette.responses import RedirectResponse

from chainconsult.accounts.auth import CurrentAccount
from chainconsult.audit.trail import Origin
from chainconsult.config import settings_of
from chainconsult.conversations.files import FileService, received_upload
from chainconsult.conversations.repository import ConversationRepository
from chainconsult.conversations.schemas import (
    ConversationResponse,
    FileResponse,
    MessageRequest,
    MessageResponse,
    OpenConversationRequest,
    ReadRequest,
)
from chainconsult.conversations.service import (
    ConversationService,
    file_response,
    message_response,
)
from chainconsult.errors import NotFound
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page
from chainconsult.infra.resources import resources_of
from chainconsult.infra.storage import ObjectStore
from chainconsult.infra.storage.objects import content_disposition

router = APIRouter(tags=["conversations"])

_AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "Not logged in."}}
_THREAD: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    404: {"description": "No such conversation, or you are not one of its participants."},
}
_INVALID: dict[int | str, dict[str, Any]] = {422: {"description": "The body breaks a rule."}}
_OWN_MESSAGE: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    403: {"description": "The message is someone else's."},
    404: {"description": "No such message in a conversation of yours."},
    409: {"description": "The message is deleted, or (to edit) older than 10 minutes."},
}


def store_of(request: Request) -> ObjectStore:
    return resources_of(request).object_store


async def _service(request: Request, session: DbSession) -> ConversationService:
    return ConversationService(session, settings_of(request).conversations)


Conversations = Annotated[ConversationService, Depends(_service)]


@router.post(
    "/conversations",
    response_model=ConversationResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        **_AUTH,
        200: {"model": ConversationResponse, "description": "The thread already existed."},
        403: {"description": "You are an expert who neither proposed nor was invited."},
        404: {"description": "No such project (or not one you may see)."},
        409: {"description": "The expert neither proposed on the project nor was invited."},
        **_INVALID,
    },
)
async def open_conversation(
    body: OpenConversationRequest,
    principal: CurrentAccount,
    service: Conversations,
    response: Response,
) -> ConversationResponse:
    """Open (or find) the thread between a project's owner and an expert who proposed on it,
    was invited to it, or was hired for it. The owner names `expert_id`; an expert omits it."""
    conversation, created = await service.open(
        principal=principal, project_id=body.project_id, expert_id=body.expert_id
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return await service.response(conversation, principal)


@router.get("/conversations", response_model=Page[ConversationResponse], responses=_AUTH)
async def list_conversations(
    principal: CurrentAccount,
    service: Conversations,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[ConversationResponse]:
    """Your conversations, most recently active first, each with its unread count."""
    return await service.listing(principal, cursor=cursor, limit=limit)


@router.get(
    "/conversations/{conversation_id}", response_model=ConversationResponse, responses=_THREAD
)
async def get_conversation(
    conversation_id: uuid.UUID, principal: CurrentAccount, service: Conversations, origin: Origin
) -> ConversationResponse:
    """One conversation. Admins may read any (each read is in the audit log)."""
    conversation = await service.readable(conversation_id, principal, origin)
    return await service.response(conversation, principal)


@router.get(
    "/conversations/{conversation_id}/messages",
    response_model=Page[MessageResponse],
    responses=_THREAD,
)
async def list_messages(
    conversation_id: uuid.UUID,
    principal: CurrentAccount,
    service: Conversations,
    origin: Origin,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
) -> Page[MessageResponse]:
    """The messages, newest first. Admins may read any thread (audited)."""
    conversation = await service.readable(conversation_id, principal, origin)
    return await service.messages(conversation, cursor=cursor, limit=limit)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessageResponse,
    status_code=status.HTTP_201_CREATED,
    responses={**_THREAD, **_INVALID},
)
async def post_message(
    conversation_id: uuid.UUID,
    body: MessageRequest,
    principal: CurrentAccount,
    service: Conversations,
) -> MessageResponse:
    """Write to a conversation you take part in (1 to 10,000 characters of visible text,
    tabs and line breaks)."""
    conversation = await service.writable(conversation_id, principal)
    message = await service.post(conversation, principal, body.body)
    return message_response(message, None)


@router.patch(
    "/messages/{message_id}",
    response_model=MessageResponse,
    responses={**_OWN_MESSAGE, **_INVALID},
)
async def edit_message(
    message_id: uuid.UUID,
    body: MessageRequest,
    principal: CurrentAccount,
    service: Conversations,
) -> MessageResponse:
    """Change your message's text, within 10 minutes of posting it."""
    message = await service.edit(message_id, principal, body.body)
    return message_response(message, await service.repository.file_of(message.id))


@router.delete(
    "/messages/{message_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_OWN_MESSAGE
)
async def delete_message(
    message_id: uuid.UUID, principal: CurrentAccount, service: Conversations
) -> Response:
    """Delete your message: it stays in the thread as "message deleted"; its text goes at
    once, its file shortly after."""
    await service.delete(message_id, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/conversations/{conversation_id}/read",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_THREAD, **_INVALID},
)
async def mark_read(
    conversation_id: uuid.UUID,
    body: ReadRequest,
    principal: CurrentAccount,
    service: Conversations,
) -> Response:
    """Everything up to and including `up_to_message_id` counts as read (a marker never
    moves back)."""
    conversation = await service.writable(conversation_id, principal)
    await service.mark_read(conversation, principal, body.up_to_message_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/conversations/{conversation_id}/files",
    response_model=FileResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        **_THREAD,
        413: {"description": "The file is larger than MAX_UPLOAD_BYTES; nothing was stored."},
        415: {"description": "The body is not multipart/form-data."},
        **_INVALID,
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_file(
    conversation_id: uuid.UUID,
    request: Request,
    principal: CurrentAccount,
    service: Conversations,
) -> FileResponse:
    """Upload a file (multipart, part `file`) into a conversation: it arrives as a message
    carrying the file. The type is read from the content; the name is cleaned."""
    limit = settings_of(request).storage.max_upload_bytes
    # The body first: no database connection is held while it arrives.
    upload = await received_upload(request, limit)
    try:
        file = await FileService(service.session, store_of(request)).receive(
            conversation_id, principal, upload, conversations=service, max_bytes=limit
        )
    finally:
        await upload.close()
    return file_response(file)


@router.get(
    "/files/{file_id}",
    response_class=Response,
    responses={
        200: {"description": "The file's bytes.", "content": {"application/octet-stream": {}}},
        302: {"description": "To a short-lived download URL of the object store."},
        **_AUTH,
        404: {"description": "No such file, or not in a conversation of yours."},
    },
)
async def download_file(
    file_id: uuid.UUID,
    request: Request,
    principal: CurrentAccount,
    service: Conversations,
    origin: Origin,
) -> Response:
    """A file of a conversation you take part in (admins: any, audited)."""
    found = await ConversationRepository(service.session).get_file(file_id)
    if found is None:
        raise NotFound("No such file.")
    file, message = found
    await service.readable(message.conversation_id, principal, origin)
    if message.deleted_at is not None:
        raise NotFound("No such file.")
    store = store_of(request)
    url = store.download_url(
        file.storage_key,
        name=file.name,
        content_type=file.content_type,
        expires_seconds=settings_of(request).storage.presigned_url_seconds,
    )
    if url is not None:
        return RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    path = store.local_path(file.storage_key)
    if path is None or not path.is_file():
        raise NotFound("The file is no longer stored.")
    return FileBytes(
        path,
        media_type=file.content_type,
        headers={
            "Content-Disposition": content_disposition(file.name),
            # Never rendered as a page of this site, whatever it holds.
            "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, no-store",
        },
    )
