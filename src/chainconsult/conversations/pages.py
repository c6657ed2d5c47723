"""Your conversations and one thread, with plain forms to write and to attach a file: the
same services as the API (who may read and write, the text rules, the upload rules of
files.py). Opening a thread marks it read. A small script (static/conversations.js) follows
the event stream for new messages and unread counts; every page works without it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from chainconsult.accounts.visit import MemberPosted, MemberVisit, PageVisit, check_form_token
from chainconsult.audit.trail import request_origin
from chainconsult.config import settings_of
from chainconsult.conversations.files import FileService, upload_form, upload_in
from chainconsult.conversations.schemas import MessageRequest, OpenConversationRequest
from chainconsult.conversations.service import ConversationService
from chainconsult.errors import ChainconsultError, InvalidInput
from chainconsult.infra.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from chainconsult.infra.resources import resources_of
from chainconsult.web.forms import FormState
from chainconsult.web.routing import page_router

router = page_router()


def _service(visit: PageVisit) -> ConversationService:
    return ConversationService(visit.session, settings_of(visit.request).conversations)


@router.get("/conversations")
async def conversations_page(
    visit: MemberVisit, cursor: Annotated[str | None, Query(max_length=512)] = None
) -> Response:
    page = await _service(visit).listing(visit.member, cursor=cursor, limit=DEFAULT_PAGE_SIZE)
    return await visit.render("conversations/list.html", page=page)


@router.post("/conversations")
async def open_thread(posted: MemberPosted) -> Response:
    """From a project page: the owner names the expert, an expert talks to the owner."""
    visit = posted.visit
    form = FormState.posted(posted.form)
    document = {key: value for key, value in form.values.items() if value}
    try:
        body = OpenConversationRequest.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput("The form names no project or expert.") from exc
    conversation, _ = await _service(visit).open(
        principal=visit.member, project_id=body.project_id, expert_id=body.expert_id
    )
    return RedirectResponse(f"/conversations/{conversation.id}", status_code=303)


async def render_thread(
    visit: PageVisit,
    conversation_id: uuid.UUID,
    *,
    form: FormState | None = None,
    upload_form: FormState | None = None,
    status_code: int = 200,
) -> Response:
    """The thread; ``form`` or ``upload_form`` with what a refused message or file said."""
    service = _service(visit)
    conversation = await service.readable(
        conversation_id, visit.member, request_origin(visit.request)
    )
    page = await service.messages(conversation, cursor=None, limit=MAX_PAGE_SIZE)
    participant = visit.member.account_id in (conversation.client_id, conversation.expert_id)
    if participant and page.data and status_code == 200:
        await service.mark_read(conversation, visit.member, page.data[0].id)
    return await visit.render(
        "conversations/thread.html",
        conversation=conversation,
        messages=list(reversed(page.data)),
        older=page.next_cursor is not None,
        participant=participant,
        me=visit.member.account_id,
        form=form or FormState(),
        upload_form=upload_form or FormState(),
        max_upload_bytes=settings_of(visit.request).storage.max_upload_bytes,
        status_code=status_code,
    )


@router.get("/conversations/{conversation_id:uuid}")
async def thread_page(conversation_id: uuid.UUID, visit: MemberVisit) -> Response:
    return await render_thread(visit, conversation_id)


@router.post("/conversations/{conversation_id:uuid}")
async def post_from_page(conversation_id: uuid.UUID, posted: MemberPosted) -> Response:
    visit = posted.visit
    form = FormState.posted(posted.form)
    service = _service(visit)
    try:
        body = MessageRequest.model_validate(form.document(["body"]))
        conversation = await service.writable(conversation_id, visit.member)
        await service.post(conversation, visit.member, body.body)
    except ValidationError as exc:
        return await render_thread(visit, conversation_id, form=form.refuse(exc), status_code=422)
    except ChainconsultError as exc:
        await visit.undo()
        if exc.status_code in (401, 404):
            raise
        form.refuse_problem(exc.detail, exc.extensions.get("errors", ()))
        return await render_thread(visit, conversation_id, form=form, status_code=exc.status_code)
    return RedirectResponse(f"/conversations/{conversation_id}#latest", status_code=303)


@router.post("/conversations/{conversation_id:uuid}/files")
async def upload_from_page(
    conversation_id: uuid.UUID, request: Request, visit: MemberVisit
) -> Response:
    """The page's upload form (multipart): the API's upload, refusals shown on the thread. A
    body far over the limit never gets here: the body guard answers 413 (a page) first. Any
    form body is read, so a post without its token is a 403 whatever it holds."""
    limit = settings_of(request).storage.max_upload_bytes
    form = await upload_form(request)
    try:
        check_form_token(visit, form)
        try:
            await FileService(visit.session, resources_of(request).object_store).receive(
                conversation_id,
                visit.member,
                upload_in(form, limit),
                conversations=_service(visit),
                max_bytes=limit,
            )
        except ChainconsultError as exc:
            await visit.undo()
            if exc.status_code in (401, 404):
                raise
            refused = FormState().refuse_problem(exc.detail, exc.extensions.get("errors", ()))
            return await render_thread(
                visit, conversation_id, upload_form=refused, status_code=exc.status_code
            )
    finally:
        await form.close()
    return RedirectResponse(f"/conversations/{conversation_id}#latest", status_code=303)
