"""Sign-In with Ethereum routes: the nonce, the wallet login, and an account's wallets. The
message rules are in accounts/siwe.py, the wallet rules in accounts/wallets.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.accounts.auth import CurrentAccount
from chainconsult.accounts.endpoints import start_session
from chainconsult.accounts.identity_schemas import (
    MfaRequiredResponse,
    SiweNonceResponse,
    SiweRequest,
    WalletResponse,
)
from chainconsult.accounts.mfa_steps import count_auth_event, second_step_for
from chainconsult.accounts.schemas import TokenResponse
from chainconsult.accounts.service import AccountService
from chainconsult.accounts.siwe import (
    NO_RULES,
    InvalidSignature,
    SiweMessage,
    SiweRules,
    SiweVerifier,
    UnknownWallet,
)
from chainconsult.accounts.wallets import WalletService, wallets_tag
from chainconsult.audit.trail import AuditTrail, Origin
from chainconsult.config import settings_of
from chainconsult.infra.cache import invalidate_after_commit
from chainconsult.infra.db.session import DbSession
from chainconsult.infra.monitoring.metrics import auth_failures_total
from chainconsult.infra.openapi_problems import problem_responses

router = APIRouter(prefix="/auth/siwe", tags=["auth"])
wallets_router = APIRouter(prefix="/me/wallets", tags=["auth"])

_REFUSED = (
    "`invalid-signature`: the message is malformed, for another site (domain or URI), for a "
    "chain not in SIWE_CHAIN_IDS, expired or not yet valid, signed by another key, or its "
    "nonce is unknown, used or expired; `reason` says which."
)
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]


async def verified_message(
    request: Request, session: AsyncSession, body: SiweRequest
) -> SiweMessage:
    settings = settings_of(request)
    rules = SiweRules(
        public_url=str(settings.email.public_url),
        chain_ids=frozenset(settings.identity.siwe_chain_ids),
    )
    try:
        return await SiweVerifier(session, rules).verify(body.message, body.signature)
    except InvalidSignature:
        auth_failures_total.inc()
        raise


@router.get("/nonce", response_model=SiweNonceResponse)
async def siwe_nonce(session: DbSession) -> SiweNonceResponse:
    """A nonce for one Sign-In with Ethereum message, good once within ten minutes."""
    nonce = await SiweVerifier(session, NO_RULES).new_nonce()
    return SiweNonceResponse(nonce=nonce.nonce, expires_at=nonce.expires_at)


@router.post(
    "/login",
    response_model=TokenResponse | MfaRequiredResponse,
    responses=problem_responses(
        {401: _REFUSED + " `unknown-wallet`: no account has linked this wallet."}
    ),
)
async def siwe_login(
    body: SiweRequest, request: Request, response: Response, session: DbSession
) -> TokenResponse | MfaRequiredResponse:
    """Log in with a wallet linked to an account: an EIP-4361 message (with a nonce from
    `GET /auth/siwe/nonce`) and its personal_sign signature. Answers like `POST /auth/login`,
    including `mfa_required` for an account with two-factor login."""
    message = await verified_message(request, session, body)
    account_id = await WalletService(session).account_of(message.address)
    found = await AccountService(session).repository.by_id(account_id) if account_id else None
    if found is None or not found.is_active:
        auth_failures_total.inc()
        raise UnknownWallet("No account has linked this wallet; log in and link it first.")
    count_auth_event(session, "siwe_login")
    pending = await second_step_for(request, session, found.id)
    if pending is not None:
        return pending
    return await start_session(request, response, session, found)


@wallets_router.get(
    "",
    response_model=list[WalletResponse],
    responses=problem_responses({401: "`unauthorized`: not logged in."}),
)
async def my_wallets(principal: CurrentAccount, session: DbSession) -> list[WalletResponse]:
    """The wallets linked to this account, each proved by a signed message."""
    wallets = await WalletService(session).of_account(principal.account_id)
    return [WalletResponse.model_validate(wallet) for wallet in wallets]


@wallets_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WalletResponse,
    responses=problem_responses(
        {
            401: "`unauthorized`: not logged in. " + _REFUSED,
            409: "`conflict` (`reason: wallet-linked`): another account has linked it.",
        }
    ),
)
async def link_wallet(
    body: SiweRequest,
    principal: CurrentAccount,
    request: Request,
    session: DbSession,
    origin: Origin,
) -> WalletResponse:
    """Link the wallet that signed an EIP-4361 message (nonce from `GET /auth/siwe/nonce`).
    It can then log in, and, as an expert's payout wallet, counts as verified."""
    message = await verified_message(request, session, body)
    wallet = await WalletService(session).link(account_id=principal.account_id, message=message)
    await AuditTrail(session).record(
        actor_id=principal.account_id,
        action="auth.wallet_linked",
        resource_type="wallet",
        resource_id=wallet.id,
        origin=origin,
        details={"chain_id": message.chain_id},
    )
    count_auth_event(session, "wallet_linked")
    # An expert's profile shows whether the payout wallet is verified.
    invalidate_after_commit(session, [wallets_tag(principal.account_id)])
    return WalletResponse.model_validate(wallet)


@wallets_router.delete(
    "/{address}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(
        {
            401: "`unauthorized`: not logged in.",
            404: "`not-found`: no such wallet on this account.",
        }
    ),
)
async def unlink_wallet(
    address: Address, principal: CurrentAccount, session: DbSession, origin: Origin
) -> None:
    """Unlink a wallet: it no longer logs in nor verifies a payout wallet."""
    await WalletService(session).unlink(account_id=principal.account_id, address=address)
    await AuditTrail(session).record(
        actor_id=principal.account_id,
        action="auth.wallet_unlinked",
        resource_type="account",
        resource_id=principal.account_id,
        origin=origin,
    )
    count_auth_event(session, "wallet_unlinked")
    invalidate_after_commit(session, [wallets_tag(principal.account_id)])
