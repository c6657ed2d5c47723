"""argon2id password hashing, run on a worker thread so a login never stalls the event loop."""

from __future__ import annotations

from functools import cache

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2-cffi's defaults follow RFC 9106's second recommended option (64 MiB, t=3, p=4).
_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    # Verified against when the account does not exist, so an unknown email costs the same
    # time as a wrong password and the answer does not reveal which one it was.
    return _hasher.hash("not a real password; timing equaliser")


class PasswordHashing:
    """Hash and verify off the event loop; ``verify`` also answers whether to re-hash."""

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(_hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                matched = _hasher.verify(stored_hash or _dummy_hash(), password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False
            return matched and stored_hash is not None

        return await anyio.to_thread.run_sync(check)

    def needs_rehash(self, stored_hash: str) -> bool:
        return _hasher.check_needs_rehash(stored_hash)


passwords = PasswordHashing()
