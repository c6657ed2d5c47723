"""`chainconsult devchain`: a local development chain for escrow, without internet.

Starts ganache (installed by `make contract-tools` into contracts/node_modules), compiles the
contracts from source with the pinned solc-js, deploys the Escrow contract and a mintable test
stablecoin, funds a demo client wallet, and prints the settings that point the platform at it.
The tests use the same pieces (tests/escrow/devchain.py). A source checkout only: the
contracts are not part of the installed package."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import typer

if TYPE_CHECKING:
    # Imported where used: web3 and eth_account cost ~1 s of CPU at the start of every
    # `chainconsult` command, and only this one needs them.
    from eth_account.signers.local import LocalAccount
    from web3 import Web3
    from web3.contract import Contract

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
GANACHE = CONTRACTS / "node_modules" / "ganache" / "dist" / "node" / "cli.js"
CHAIN_ID = 1337
# ganache --wallet.deterministic: the well-known keys of its default mnemonic (public, for
# development chains only): deployer, arbiter, fee recipient, client, expert, stranger, ...
DEV_KEYS = (
    "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d",
    "0x6cbed15c793ce57650b9877cf6fa156fbef513c4e6134f022a85b1ffdd59b2a1",
    "0x6370fd033278c143179d81c5526140625662b8daa446c22ee2d73db3707e620c",
    "0x646f1ce2fdad0e6deeeb5c7e8e5543bdde65e86029e2fd9fc169899c440a7913",
    "0xadd53f9a7e588d003326d1cbf9e4a43c061aadd9bc938c843a79e7b4fd2ad743",
    "0x395df67f0c2d2d9fe1ad08d1bc8b6627011959b79c53d7dd6a3536a33ab8a4fd",
    "0xe485d098507f54e7733a205420dfddbe58db035fa577fc294ebd14db90767a52",
    "0xa453611d9419d0e56f499079478fd72c37b251a94bfde4d19872c44cf65386e3",
)


class DevchainUnavailable(Exception):
    """node or contracts/node_modules is missing (run make contract-tools)."""


@dataclass(frozen=True)
class Artifact:
    abi: list[dict[str, Any]]
    bytecode: str


def available() -> bool:
    return GANACHE.exists() and shutil.which("node") is not None


def dev_accounts() -> list[LocalAccount]:
    from eth_account import Account

    return [Account.from_key(key) for key in DEV_KEYS]


@cache
def compiled() -> dict[str, Artifact]:
    """Every contract of contracts/*.sol, compiled by the pinned solc-js (once a process)."""
    node = shutil.which("node")
    if node is None or not GANACHE.exists():
        raise DevchainUnavailable("node or contracts/node_modules missing: make contract-tools")
    out = subprocess.run(  # noqa: S603 - our own script, by absolute path
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
def ganache(port: int, *, quiet: bool = True) -> Iterator[str]:
    """A ganache on loopback ``port``; yields its JSON-RPC URL and stops it on exit."""
    node = shutil.which("node")
    if node is None or not GANACHE.exists():
        raise DevchainUnavailable("node or contracts/node_modules missing: make contract-tools")
    url = f"http://127.0.0.1:{port}"
    args = [
        node,
        str(GANACHE),
        "--server.host=127.0.0.1",
        f"--server.port={port}",
        f"--chain.chainId={CHAIN_ID}",
        "--wallet.deterministic",
        f"--wallet.totalAccounts={len(DEV_KEYS)}",
        *(["--logging.quiet"] if quiet else []),
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise DevchainUnavailable("ganache exited at start (is the port free?)")
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
        if process.stderr is not None:
            process.stderr.close()


def sign(w3: Web3, signer: LocalAccount, tx: dict[str, Any]) -> bytes:
    """``tx`` signed by ``signer`` with the chain's next nonce, gas and gas price filled in."""
    tx = {"from": signer.address, "chainId": CHAIN_ID, "value": 0, **tx}
    tx.setdefault("nonce", w3.eth.get_transaction_count(signer.address, "pending"))
    if "gas" not in tx:
        tx["gas"] = w3.eth.estimate_gas(tx)  # type: ignore[arg-type]
    if "maxFeePerGas" not in tx:
        tx.setdefault("gasPrice", w3.eth.gas_price)
    return bytes(signer.sign_transaction(tx).raw_transaction)


def send_raw(w3: Web3, raw: bytes) -> Any:
    return w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(raw), timeout=30)


def transact(w3: Web3, signer: LocalAccount, call: Any) -> Any:
    """Send a contract call (``contract.functions.f(...)``) from ``signer``; the receipt."""
    tx = call.build_transaction({"from": signer.address, "value": 0})
    return send_raw(w3, sign(w3, signer, tx))


def deploy(w3: Web3, signer: LocalAccount, name: str, *args: Any) -> Contract:
    artifact = compiled()[name]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = transact(w3, signer, factory.constructor(*args))
    contract: Contract = w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)
    return contract


def devchain(
    port: Annotated[int, typer.Option(help="Loopback port of the chain's JSON-RPC.")] = 8545,
    fee_bps: Annotated[
        int, typer.Option(min=0, max=10_000, help="Platform fee of the deployed escrow, bps.")
    ] = 0,
    data_dir: Annotated[Path, typer.Option(help="Where the arbiter's key file is written.")] = Path(
        "var"
    ),
) -> None:
    """Run a development chain with the escrow deployed.

    It deploys the Escrow contract and a test stablecoin, funds a demo client wallet and
    prints the settings that point the platform at the chain. Ctrl-C stops it; its state is
    not kept."""
    from web3 import Web3

    try:
        with ganache(port) as url:
            w3 = Web3(Web3.HTTPProvider(url))
            deployer, arbiter, fee, client, expert, *_ = dev_accounts()
            token = deploy(w3, deployer, "TestStablecoin", "Test USD Coin", "USDC", 6)
            escrow = deploy(w3, deployer, "Escrow", arbiter.address, fee.address, fee_bps, 0)
            transact(w3, deployer, token.functions.mint(client.address, 1_000_000 * 10**6))
            data_dir.mkdir(parents=True, exist_ok=True)
            key_file = data_dir / "devchain-arbiter.key"
            key_file.write_text(DEV_KEYS[1])
            key_file.chmod(0o600)
            settings = {
                "ESCROW_RPC_URL": url,
                "ESCROW_CHAIN_ID": CHAIN_ID,
                "ESCROW_CONTRACT": escrow.address,
                "ESCROW_TOKENS": f"USDC:{token.address}:6",
                "ESCROW_CONFIRMATIONS": 1,
                "ESCROW_ARBITER_KEY_FILE": key_file.resolve(),
                "PLATFORM_FEE_BPS": fee_bps,
                "PLATFORM_FEE_ADDRESS": fee.address,
            }
            typer.echo("# Development chain ready; point the platform at it with:")
            for name, value in settings.items():
                typer.echo(f"export {name}={value}")
            typer.echo(f"# Demo client wallet (1,000,000 USDC): {client.address} key {DEV_KEYS[3]}")
            typer.echo(f"# Demo expert payout wallet: {expert.address}")
            stop = {signal.SIGINT, signal.SIGTERM}
            signal.pthread_sigmask(signal.SIG_BLOCK, stop)
            signal.sigwait(stop)
    except DevchainUnavailable as exc:
        typer.echo(f"devchain: {exc}", err=True)
        raise typer.Exit(1) from None
