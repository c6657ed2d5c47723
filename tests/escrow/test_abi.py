"""The ABI the platform ships (escrow/escrow_abi.json) is the compiled contract's."""

from __future__ import annotations

from chainconsult.escrow.contract import escrow_abi
from tests.escrow import devchain


def test_the_shipped_abi_is_the_compiled_contracts() -> None:
    if not devchain.chain_available():
        from tests.conftest import missing_service

        missing_service("the contract compiler (make contract-tools)")
    compiled = devchain.compiled()["Escrow"].abi
    key = lambda item: (item["type"], item.get("name", ""))  # noqa: E731
    assert sorted(escrow_abi(), key=key) == sorted(compiled, key=key)
