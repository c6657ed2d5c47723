from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from email_validator import validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from chainconsult.infra.request_models import FromText, RequestModel
from chainconsult.infra.text import SingleLine
from chainconsult.models.accounts import Plan, Role


def normalize_email(address: str) -> str:
    """The one form in which an address is stored and compared (register, login, throttle
    keys, create-admin): surrounding blanks dropped, an IDNA (punycode) domain in Unicode and
    lower case, the whole address in Unicode normal form C. The local part keeps its letter
    case for display; comparisons ignore case. A malformed address raises ValueError."""
    return validate_email(address.strip(), check_deliverability=False).normalized


Email = Annotated[
    str,
    Field(min_length=1, max_length=320, json_schema_extra={"format": "email"}),
    AfterValidator(normalize_email),
]
"""An email address in a request body, normalised by ``normalize_email`` (a malformed one is a
422 pointing at the field)."""

DisplayName = Annotated[str, SingleLine(max_length=100)]


class RegisterRequest(RequestModel):
    email: Email
    password: str = Field(min_length=12, max_length=256, description="At least 12 characters.")
    display_name: DisplayName
    role: Literal["client", "expert"] = Field(
        "client",
        description="`expert` registers an expert candidate, who becomes an expert once an "
        "admin approves their application.",
    )


class LoginRequest(RequestModel):
    email: Email
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
    mfa_enabled: bool = Field(False, description="Whether logins need a TOTP code.")
    email_verified: bool = Field(
        description="Whether a link mailed to this address has been opened (see "
        "REQUIRE_VERIFIED_EMAIL)."
    )


class PlanChangeRequest(RequestModel):
    plan: FromText[Plan]
