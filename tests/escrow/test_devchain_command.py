"""`chainconsult devchain` starts a chain with the contracts deployed and prints the settings
that point the platform at it."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from web3 import Web3

from tests.conftest import missing_service
from tests.escrow import devchain
from tests.smtp import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_devchain_deploys_the_escrow_and_prints_its_settings(tmp_path: Path) -> None:
    if not devchain.chain_available():
        missing_service("the development chain (make contract-tools)")
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chainconsult",
            "devchain",
            "--port",
            str(port),
            "--fee-bps",
            "100",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    settings: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                settings[name] = value
            if line.startswith("# Demo expert"):
                break
        w3 = Web3(Web3.HTTPProvider(settings["ESCROW_RPC_URL"]))
        assert w3.eth.chain_id == int(settings["ESCROW_CHAIN_ID"]) == 1337
        escrow = w3.eth.contract(
            address=settings["ESCROW_CONTRACT"], abi=devchain.compiled()["Escrow"].abi
        )
        arbiter_key = Path(settings["ESCROW_ARBITER_KEY_FILE"]).read_text()
        assert escrow.functions.arbiter().call() == devchain.accounts()[1].address
        assert arbiter_key == devchain.accounts()[1].key.to_0x_hex()
        assert escrow.functions.feeBps().call() == 100
        symbol, token, decimals = settings["ESCROW_TOKENS"].split(":")
        stablecoin = w3.eth.contract(address=token, abi=devchain.compiled()["TestStablecoin"].abi)
        client = devchain.accounts()[3].address
        assert (symbol, decimals) == ("USDC", "6")
        assert stablecoin.functions.balanceOf(client).call() == 1_000_000 * 10**6
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        for stream in (process.stdout, process.stderr):
            assert stream is not None
            stream.close()
