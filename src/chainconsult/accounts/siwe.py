"""Sign-In with Ethereum (EIP-4361): nonces, and the check of a signed message.

The message is parsed here by a strict reading of the EIP's ABNF rather than with the `siwe`
package: siwe 4.4 pulls in web3 (with aiohttp and websockets) and caps eth-account below
0.14, for an EOA check that eth-account does alone (docs/identity.md, "Why no siwe package").

A message is accepted only if it is well formed, is for this site (domain and URI are
PUBLIC_URL's), names a chain of SIWE_CHAIN_IDS, is within its validity times, is signed
(EIP-191 personal_sign) by the address it names, and carries a nonce this server handed out,
unexpired and unused: the nonce is spent by the check, whatever follows."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from chainconsult.errors import Unauthorized
from chainconsult.infra.db.transaction import one_statement
from chainconsult.models.base import utcnow
from chainconsult.models.identity import SiweNonce

NONCE_TTL_SECONDS = 600
CLOCK_SKEW_SECONDS = 60
"""How far in the future an Issued At may be (the signer's clock runs ahead)."""

_PREAMBLE = re.compile(
    r"(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^\s/?#]+)"
    r" wants you to sign in with your Ethereum account:"
)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_NONCE = re.compile(r"[a-zA-Z0-9]{8,}")
_CHAIN_ID = re.compile(r"[1-9][0-9]{0,18}")
_SIGNATURE = re.compile(r"(?:0x)?[0-9a-fA-F]{130}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})", re.IGNORECASE
)
_OPTIONAL = ("Expiration Time", "Not Before", "Request ID")


class InvalidSignature(Unauthorized):
    slug = "invalid-signature"
    title = "Invalid signed message"


class UnknownWallet(Unauthorized):
    slug = "unknown-wallet"
    title = "Unknown wallet"


@dataclass(frozen=True, slots=True)
class SiweMessage:
    scheme: str | None
    domain: str
    address: str
    statement: str | None
    uri: str
    version: str
    chain_id: int
    nonce: str
    issued_at: dt.datetime
    expiration_time: dt.datetime | None
    not_before: dt.datetime | None
    request_id: str | None
    resources: tuple[str, ...]


def _refuse(detail: str, reason: str) -> InvalidSignature:
    return InvalidSignature(detail, reason=reason)


def _malformed(what: str) -> InvalidSignature:
    return _refuse(f"The message is not an EIP-4361 message: {what}.", "malformed")


def _time(value: str, field: str) -> dt.datetime:
    if not _RFC3339.fullmatch(value):
        raise _malformed(f"{field} is not an RFC 3339 date-time")
    try:
        return dt.datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        raise _malformed(f"{field} is not an RFC 3339 date-time") from None


def _field(lines: list[str], index: int, name: str) -> str:
    prefix = f"{name}: "
    if index >= len(lines) or not lines[index].startswith(prefix):
        raise _malformed(f"expected the '{name}:' line")
    return lines[index][len(prefix) :]


def parse_message(text: str) -> SiweMessage:
    """The fields of an EIP-4361 message, read line by line in the EIP's order; anything
    else (a missing or extra line, a carriage return, an unchecksummed address) is refused."""
    if "\r" in text:
        raise _malformed("lines end with LF only")
    lines = text.split("\n")
    preamble = _PREAMBLE.fullmatch(lines[0])
    if preamble is None or len(lines) < 9:
        raise _malformed("the first line must be '<domain> wants you to sign in ...'")
    address = lines[1]
    from eth_utils.address import is_checksum_address

    if not _ADDRESS.fullmatch(address) or not is_checksum_address(address):
        raise _malformed("the second line must be an EIP-55 checksummed address")
    if lines[2] != "":
        raise _malformed("a blank line must follow the address")
    statement = None
    index = 4
    if lines[3] != "":
        statement, index = lines[3], 5
        if lines[4] != "":
            raise _malformed("a blank line must follow the statement")
    uri = _field(lines, index, "URI")
    version = _field(lines, index + 1, "Version")
    chain_id = _field(lines, index + 2, "Chain ID")
    nonce = _field(lines, index + 3, "Nonce")
    issued_at = _time(_field(lines, index + 4, "Issued At"), "Issued At")
    if version != "1":
        raise _malformed("Version must be 1")
    if not _CHAIN_ID.fullmatch(chain_id):
        raise _malformed("Chain ID must be a positive integer")
    if not _NONCE.fullmatch(nonce):
        raise _malformed("Nonce must be at least 8 letters and digits")
    try:
        absolute = bool(urlsplit(uri).scheme)
    except ValueError:  # e.g. "http://[bad": an unclosed IPv6 host
        absolute = False
    if not absolute:
        raise _malformed("URI must be an absolute URI")
    optional: dict[str, str] = {}
    index += 5
    for name in _OPTIONAL:
        if index < len(lines) and lines[index].startswith(f"{name}: "):
            optional[name] = _field(lines, index, name)
            index += 1
    resources: list[str] = []
    if index < len(lines) and lines[index] == "Resources:":
        index += 1
        while index < len(lines) and lines[index].startswith("- "):
            resources.append(lines[index][2:])
            index += 1
    if index != len(lines):
        raise _malformed(f"unexpected line {index + 1}")
    expiration = optional.get("Expiration Time")
    not_before = optional.get("Not Before")
    return SiweMessage(
        scheme=preamble.group("scheme"),
        domain=preamble.group("domain"),
        address=address,
        statement=statement,
        uri=uri,
        version=version,
        chain_id=int(chain_id),
        nonce=nonce,
        issued_at=issued_at,
        expiration_time=_time(expiration, "Expiration Time") if expiration else None,
        not_before=_time(not_before, "Not Before") if not_before else None,
        request_id=optional.get("Request ID"),
        resources=tuple(resources),
    )


def signer_of(text: str, signature: str) -> str:
    """The address whose key made ``signature`` over ``text`` (EIP-191 personal_sign)."""
    if not _SIGNATURE.fullmatch(signature):
        raise _refuse("The signature must be 65 bytes in hex.", "signature")
    from eth_account import Account
    from eth_account.messages import encode_defunct

    try:
        recovered: str = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:
        raise _refuse("The signature does not verify.", "signature") from None
    return recovered


@dataclass(frozen=True, slots=True)
class SiweRules:
    """What a message must say to be for this site: PUBLIC_URL and SIWE_CHAIN_IDS."""

    public_url: str
    chain_ids: frozenset[int]

    def check(self, message: SiweMessage, now: dt.datetime) -> None:
        site = urlsplit(self.public_url)
        if message.domain.lower() != site.netloc.lower():
            raise _refuse(f"The message is for {message.domain}, not this site.", "domain")
        if message.scheme is not None and message.scheme.lower() != site.scheme:
            raise _refuse("The message names another scheme than this site's.", "domain")
        uri = urlsplit(message.uri)
        if (uri.scheme, uri.netloc.lower()) != (site.scheme, site.netloc.lower()):
            raise _refuse("The message's URI is not on this site.", "uri")
        if message.chain_id not in self.chain_ids:
            raise _refuse(f"Chain {message.chain_id} is not accepted here.", "chain")
        if message.issued_at > now + dt.timedelta(seconds=CLOCK_SKEW_SECONDS):
            raise _refuse("The message is issued in the future.", "not-yet-valid")
        if message.not_before is not None and message.not_before > now:
            raise _refuse("The message is not valid yet (Not Before).", "not-yet-valid")
        if message.expiration_time is not None and message.expiration_time <= now:
            raise _refuse("The message has expired.", "expired")


NO_RULES = SiweRules(public_url="", chain_ids=frozenset())
"""For handing out nonces, which needs no rules."""


class SiweVerifier:
    def __init__(self, session: AsyncSession, rules: SiweRules) -> None:
        self.session = session
        self.rules = rules

    async def new_nonce(self) -> SiweNonce:
        now = utcnow()
        await self.session.execute(delete(SiweNonce).where(SiweNonce.expires_at < now))
        nonce = SiweNonce(
            nonce=secrets.token_hex(16), expires_at=now + dt.timedelta(seconds=NONCE_TTL_SECONDS)
        )
        self.session.add(nonce)
        await self.session.flush()
        return nonce

    async def verify(self, text: str, signature: str) -> SiweMessage:
        """The message, once every rule holds; raises InvalidSignature (with a ``reason``)."""
        message = parse_message(text)
        self.rules.check(message, utcnow())
        if signer_of(text, signature) != message.address:
            raise _refuse("The signature is not the named address's.", "signature")
        # Spent in a statement of its own, committed at once: a refusal later in the request
        # (an unknown wallet) rolls back, and must not give the nonce back.
        spent = await one_statement(
            self.session,
            delete(SiweNonce)
            .where(SiweNonce.nonce == message.nonce, SiweNonce.expires_at > utcnow())
            .returning(SiweNonce.nonce),
            {},
        )
        if spent is None:
            raise _refuse("The nonce is unknown, used or expired; ask for a new one.", "nonce")
        return message
