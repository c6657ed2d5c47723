"""Request and response bodies of two-factor login, Sign-In with Ethereum and wallets."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chainconsult.infra.request_models import RequestModel


class MfaRequiredResponse(BaseModel):
    mfa_required: Literal[True] = True
    mfa_token: str = Field(description="Send it with a code to POST /auth/login/mfa.")
    expires_in: int = Field(description="Seconds the token stays usable (five code attempts).")


class MfaLoginRequest(RequestModel):
    mfa_token: str = Field(min_length=1, max_length=128)
    code: str | None = Field(None, min_length=6, max_length=6, description="A TOTP code.")
    recovery_code: str | None = Field(
        None, min_length=10, max_length=32, description="One of the ten recovery codes."
    )

    @model_validator(mode="after")
    def _one_factor(self) -> MfaLoginRequest:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("send either code or recovery_code")
        return self


class TotpSetupResponse(BaseModel):
    secret: str = Field(description="Base32 secret for the authenticator; shown only now.")
    otpauth_uri: str = Field(description="The same as an otpauth:// URI (for a QR code).")


class TotpConfirmRequest(RequestModel):
    code: str = Field(min_length=6, max_length=6, description="The authenticator's code.")


class RecoveryCodesResponse(BaseModel):
    recovery_codes: list[str] = Field(description="Ten single-use codes; shown only now.")


class TotpDisableRequest(RequestModel):
    password: str = Field(min_length=1, max_length=256)
    code: str = Field(
        min_length=6, max_length=32, description="A current code, or an unused recovery code."
    )


class SiweNonceResponse(BaseModel):
    nonce: str = Field(description="Put it in the message's `Nonce:` line; usable once.")
    expires_at: dt.datetime


class SiweRequest(RequestModel):
    message: str = Field(min_length=1, max_length=4096, description="The EIP-4361 message.")
    signature: str = Field(
        min_length=130, max_length=132, description="personal_sign signature: 65 bytes in hex."
    )


class WalletResponse(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    address: str = Field(description="EIP-55 checksummed.")
    chain_id: int
    verified_at: dt.datetime
