"""A development chain for the escrow tests: ganache from contracts/node_modules on a free
loopback port, the contracts compiled from source by solc-js, and deploy helpers."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from tests.smtp import free_port

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
GANACHE = CONTRACTS / "node_modules" / "ganache" / "dist" / "node" / "cli.js"
CHAIN_ID = 1337
# ganache --wallet.deterministic: the keys every ganache prints for its default mnemonic.
KEYS = (
    "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d",
    "0x6cbed15c793ce57650b9877cf6fa156fbef513c4e6134f022a85b1ffdd59b2a1",
    "0x6370fd033278c143179d81c5526140625662b8daa446c22ee2d73db3707e620c",
    "0x646f1ce2fdad0e6deeeb5c7e8e5543bdde65e86029e2fd9fc169899c440a7913",
    "0xadd53f9a7e588d003326d1cbf9e4a43c061aadd9bc938c843a79e7b4fd2ad743",
    "0x395df67f0c2d2d9fe1ad08d1bc8b6627011959b79c53d7dd6a3536a33ab8a4fd",
    "0xe485d098507f54e7733a205420dfddbe58db035fa577fc294ebd14db90767a52",
    "0xa453611d9419d0e56f499079478fd72c37b251a94bfde4d19872c44cf65386e3",
)


@dataclass(frozen=True)
class Artifact:
    abi: list[dict[str, Any]]
    bytecode: str


@cache
def compiled() -> dict[str, Artifact]:
    """Every contract of contracts/*.sol, compiled by the pinned solc-js (once a session)."""
    node = shutil.which("node")
    if node is None or not GANACHE.exists():
        raise RuntimeError("node or contracts/node_modules missing: run make contract-tools")
    out = subprocess.run(
        [node, str(CONTRACTS / "compile.js")], capture_output=True, check=True, timeout=300
    )
    output = json.loads(out.stdout)
    return {
        name: Artifact(abi=item["abi"], bytecode="0x" + item["evm"]["bytecode"]["object"])
        for source, contracts in output["contracts"].items()
        if not source.startswith("@")
        for name, item in contracts.items()
    }


@contextmanager
def ganache() -> Iterator[str]:
    """A private ganache on a free loopback port; yields its JSON-RPC URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        "node",
        str(GANACHE),
        "--server.host=127.0.0.1",
        f"--server.port={port}",
        f"--chain.chainId={CHAIN_ID}",
        "--wallet.deterministic",
        "--wallet.totalAccounts=8",
        "--logging.quiet",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"ganache exited: {process.stderr.read()!r}")  # type: ignore[union-attr]
            try:
                httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()


def accounts() -> list[LocalAccount]:
    return [Account.from_key(key) for key in KEYS]


def rpc(w3: Web3, method: str, *params: Any) -> Any:
    response = w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    if "error" in response:
        raise RuntimeError(f"{method}: {response['error']}")
    return response["result"]


def send(w3: Web3, signer: LocalAccount, tx: dict[str, Any]) -> Any:
    """Sign ``tx`` locally (as a wallet would), send it, wait for it; the receipt."""
    return send_raw(w3, sign(w3, signer, tx))


def send_raw(w3: Web3, raw: bytes) -> Any:
    tx_hash = w3.eth.send_raw_transaction(raw)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)


def sign(w3: Web3, signer: LocalAccount, tx: dict[str, Any]) -> bytes:
    """``tx`` signed by ``signer`` with the chain's next nonce, gas and gas price filled in."""
    tx = dict(tx)
    tx.setdefault("from", signer.address)
    tx.setdefault("chainId", CHAIN_ID)
    tx.setdefault("nonce", w3.eth.get_transaction_count(signer.address, "pending"))
    tx.setdefault("value", 0)
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
    if "maxFeePerGas" not in tx:
        tx.setdefault("gasPrice", w3.eth.gas_price)
    return bytes(signer.sign_transaction(tx).raw_transaction)


def transact(w3: Web3, signer: LocalAccount, call: Any) -> Any:
    """Send a contract call ``call`` (``contract.functions.f(...)``) from ``signer``."""
    return send(w3, signer, call.build_transaction({"from": signer.address, "value": 0}))


def deploy(w3: Web3, signer: LocalAccount, name: str, *args: Any) -> Contract:
    artifact = compiled()[name]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = transact(w3, signer, factory.constructor(*args))
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def chain_available() -> bool:
    return GANACHE.exists() and shutil.which("node") is not None
