from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from chainconsult.accounts.schemas import Email
from chainconsult.infra.request_models import RequestModel

NewPassword = Annotated[
    str, Field(min_length=12, max_length=256, description="At least 12 characters.")
]
Token = Annotated[
    str, Field(min_length=1, max_length=200, description="The `token` of the mailed link.")
]


class ResetRequest(RequestModel):
    email: Email


class ResetRequested(BaseModel):
    status: Literal["sent"] = "sent"


class ResetConfirmRequest(RequestModel):
    token: Token
    new_password: NewPassword


class PasswordChangeRequest(RequestModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: NewPassword


class VerifyEmailRequest(RequestModel):
    token: Token


class VerifyResendResponse(BaseModel):
    status: Literal["sent", "already_verified"]


class SessionResponse(BaseModel):
    id: uuid.UUID
    created_at: dt.datetime
    last_seen_at: dt.datetime | None = Field(
        description="When the session was last used, to within a minute."
    )
    ip: str | None
    user_agent: str | None
    current: bool = Field(description="Whether this is the session of the request.")
