from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from pydantic import BaseModel, Field

from chainconsult.infra.request_models import FromText, RequestModel
from chainconsult.infra.text import MultiLine

MessageBody = Annotated[str, MultiLine(min_length=1, max_length=10_000)]

DELETED_BODY = "message deleted"
"""What a deleted message says in place of its text (which is gone from the database)."""


class OpenConversationRequest(RequestModel):
    project_id: FromText[uuid.UUID]
    expert_id: FromText[uuid.UUID] | None = Field(
        None,
        description="The expert to talk with; omit it when you are the expert.",
    )


class ConversationResponse(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    expert_id: uuid.UUID
    client_id: uuid.UUID = Field(description="The project's owner.")
    last_message_at: dt.datetime | None
    unread: int = Field(description="Messages from the other participant you have not read.")


class MessageRequest(RequestModel):
    body: MessageBody


class FileResponse(BaseModel):
    id: uuid.UUID
    name: str = Field(description="The uploaded name, sanitised.")
    size: int = Field(description="Bytes.")
    content_type: str = Field(description="Sniffed from the content, not from the name.")
    sha256: str = Field(description="Hex SHA-256 of the content.")


class MessageResponse(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    author_id: uuid.UUID | None = Field(description="Null once the author erased their account.")
    body: str = Field(description=f'"{DELETED_BODY}" once deleted.')
    created_at: dt.datetime
    edited_at: dt.datetime | None
    deleted: bool
    file: FileResponse | None = Field(None, description="The attached file, if any.")


class ReadRequest(RequestModel):
    up_to_message_id: FromText[uuid.UUID] = Field(
        description="Everything up to and including this message counts as read."
    )
