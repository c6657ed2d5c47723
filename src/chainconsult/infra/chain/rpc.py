"""A small adapter over web3.py's async client: only what the platform asks of a chain."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3Exception
from web3.types import LogReceipt, TxParams

T = TypeVar("T")


class ChainUnavailable(Exception):
    """The JSON-RPC endpoint did not answer, or answered with an error."""


def hex_string(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text


class ChainClient:
    def __init__(self, url: str, *, timeout_seconds: float = 10.0) -> None:
        self.w3 = AsyncWeb3(AsyncHTTPProvider(url, request_kwargs={"timeout": timeout_seconds}))

    async def close(self) -> None:
        await self.w3.provider.disconnect()

    async def chain_id(self) -> int:
        return await self._call(self.w3.eth.chain_id)

    async def head(self) -> int:
        return await self._call(self.w3.eth.block_number)

    async def block_hash(self, number: int) -> str | None:
        """The hash of block ``number`` on the chain as the node sees it now; None when the
        node has no such block (a reorganisation shortened the chain)."""
        try:
            block = await self._call(self.w3.eth.get_block(number))
        except ChainUnavailable as exc:
            if isinstance(exc.__cause__, BlockNotFound):
                return None
            raise
        return hex_string(block["hash"])

    async def logs(self, address: str, first: int, last: int) -> Sequence[LogReceipt]:
        return await self._call(
            self.w3.eth.get_logs(
                {"address": to_checksum_address(address), "fromBlock": first, "toBlock": last}
            )
        )

    async def call(
        self,
        address: str,
        abi: Sequence[Mapping[str, Any]],
        function: str,
        *args: Any,
        block: int,
    ) -> Any:
        """A view function's result at ``block``."""
        contract = self.w3.eth.contract(address=to_checksum_address(address), abi=abi)
        return await self._call(contract.functions[function](*args).call(block_identifier=block))

    async def pending_nonce(self, address: str) -> int:
        return await self._call(
            self.w3.eth.get_transaction_count(to_checksum_address(address), "pending")
        )

    async def send_raw(self, raw: bytes) -> str:
        return hex_string(await self._call(self.w3.eth.send_raw_transaction(raw)))

    async def estimate_gas(self, tx: TxParams) -> int:
        return await self._call(self.w3.eth.estimate_gas(tx))

    async def gas_price(self) -> int:
        return await self._call(self.w3.eth.gas_price)

    async def transaction_known(self, tx_hash: str) -> bool:
        """Whether the node knows the transaction (pending or mined)."""
        try:
            await self._call(self.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        except ChainUnavailable as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return False
            raise
        return True

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (Web3Exception, OSError, TimeoutError, ValueError) as exc:
            raise ChainUnavailable(f"{type(exc).__name__}: {exc}") from exc
