from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from chainconsult.infra.text import SingleLine
from chainconsult.models.accounts import Plan, Role

DisplayName = Annotated[str, SingleLine(max_length=100)]


class RegisterRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=320)
    password: str = Field(min_length=12, max_length=256, description="At least 12 characters.")
    display_name: DisplayName
    role: Literal["client", "expert"] = Field(
        "client",
        description="`expert` registers an expert candidate, who becomes an expert once an "
        "admin approves their application.",
    )


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=256)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Seconds until the token and the session cookie expire.")


class AccountResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    plan: Plan
    created_at: dt.datetime


class PlanChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan: Plan
