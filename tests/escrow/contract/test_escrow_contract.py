"""The escrow contract on the development chain: every function, every refusal."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.logs import DISCARD

from tests.escrow import devchain
from tests.escrow.conftest import ARBITER_FEE_BPS, FEE_BPS, Chain

FUNDED, RELEASED, DISPUTED, RESOLVED, REFUNDED = 1, 2, 3, 4, 5
AMOUNT = 1_000_000_000  # 1,000 units of a 6-decimals token
FAR = 2**40  # a termination time nobody reaches in a test


def ids() -> tuple[bytes, bytes]:
    return os.urandom(32), os.urandom(32)


def error(signature: str) -> str:
    return Web3.keccak(text=signature)[:4].hex()


def refused(chain: Chain, signer: LocalAccount, call: Any, signature: str) -> None:
    """The call reverts with the custom error ``signature`` and moves nothing."""
    with pytest.raises((ContractCustomError, ContractLogicError)) as raised:
        devchain.transact(chain.w3, signer, call)
    assert error(signature) in str(raised.value.data or raised.value)


def emitted(contract: Contract, name: str, receipt: Any) -> list[Any]:
    """The ``name`` events of ``contract`` in the receipt (the token's own are skipped)."""
    return list(contract.events[name]().process_receipt(receipt, errors=DISCARD))


def balances(token: Contract, *who: str) -> list[int]:
    return [token.functions.balanceOf(address).call() for address in who]


@pytest.fixture
def fund(
    chain: Chain, stablecoin: Contract, escrow: Contract
) -> Callable[..., tuple[bytes, bytes]]:
    """Mint to the client and deposit one milestone; the (project, milestone) ids."""

    def deposit(
        project: bytes | None = None, amount: int = AMOUNT, termination: int = FAR
    ) -> tuple[bytes, bytes]:
        project_id, milestone_id = ids()
        project_id = project or project_id
        devchain.transact(
            chain.w3, chain.client, stablecoin.functions.mint(chain.client.address, amount)
        )
        devchain.transact(
            chain.w3, chain.client, stablecoin.functions.approve(escrow.address, amount)
        )
        receipt = devchain.transact(
            chain.w3,
            chain.client,
            escrow.functions.deposit(
                project_id,
                milestone_id,
                stablecoin.address,
                chain.expert.address,
                amount,
                termination,
            ),
        )
        (event,) = emitted(escrow, "Deposited", receipt)
        assert event.args.projectId == project_id
        assert event.args.milestoneId == milestone_id
        assert event.args.amount == amount
        return project_id, milestone_id

    return deposit


def test_deposit_locks_the_tokens_and_fixes_the_project_terms(
    chain: Chain, stablecoin: Contract, escrow: Contract, fund: Callable[..., Any]
) -> None:
    before = balances(stablecoin, escrow.address)[0]
    project_id, milestone_id = fund()
    assert balances(stablecoin, escrow.address)[0] == before + AMOUNT
    assert escrow.functions.milestones(project_id, milestone_id).call() == [AMOUNT, FUNDED]
    client, payee, token, termination = escrow.functions.projects(project_id).call()
    assert (client, payee, token, termination) == (
        chain.client.address,
        chain.expert.address,
        stablecoin.address,
        FAR,
    )


def test_a_later_deposit_cannot_change_the_payee_or_come_from_another_sender(
    chain: Chain, stablecoin: Contract, escrow: Contract, fund: Callable[..., Any]
) -> None:
    project_id, milestone_id = fund()
    devchain.transact(
        chain.w3, chain.stranger, stablecoin.functions.mint(chain.stranger.address, 10)
    )
    devchain.transact(chain.w3, chain.stranger, stablecoin.functions.approve(escrow.address, 10))
    devchain.transact(chain.w3, chain.client, stablecoin.functions.approve(escrow.address, 10))
    _, other = ids()
    refused(
        chain,
        chain.client,
        escrow.functions.deposit(
            project_id, other, stablecoin.address, chain.stranger.address, 10, FAR
        ),
        "ProjectTermsDiffer()",
    )
    refused(
        chain,
        chain.stranger,
        escrow.functions.deposit(
            project_id, other, stablecoin.address, chain.expert.address, 10, FAR
        ),
        "ProjectTermsDiffer()",
    )
    # The same milestone cannot be funded twice.
    refused(
        chain,
        chain.client,
        escrow.functions.deposit(
            project_id, milestone_id, stablecoin.address, chain.expert.address, 10, FAR
        ),
        "WrongStatus(uint8)",
    )
    refused(
        chain,
        chain.client,
        escrow.functions.deposit(
            project_id, other, stablecoin.address, chain.expert.address, 0, FAR
        ),
        "InvalidAmount()",
    )


def test_release_pays_the_payee_less_the_platform_fee(
    chain: Chain, stablecoin: Contract, escrow: Contract, fund: Callable[..., Any]
) -> None:
    project_id, milestone_id = fund()
    expert0, fee0 = balances(stablecoin, chain.expert.address, chain.fee_recipient.address)
    receipt = devchain.transact(
        chain.w3, chain.client, escrow.functions.release(project_id, milestone_id)
    )
    fee = AMOUNT * FEE_BPS // 10_000
    expert1, fee1 = balances(stablecoin, chain.expert.address, chain.fee_recipient.address)
    assert (expert1 - expert0, fee1 - fee0) == (AMOUNT - fee, fee)
    (event,) = emitted(escrow, "Released", receipt)
    assert (event.args.projectId, event.args.milestoneId) == (project_id, milestone_id)
    assert (event.args.payeeAmount, event.args.platformFee) == (AMOUNT - fee, fee)
    assert escrow.functions.milestones(project_id, milestone_id).call()[1] == RELEASED


def test_release_is_refused_to_anyone_but_the_depositor_twice_or_unfunded(
    chain: Chain, escrow: Contract, fund: Callable[..., Any]
) -> None:
    project_id, milestone_id = fund()
    for other in (chain.expert, chain.stranger, chain.arbiter):
        refused(chain, other, escrow.functions.release(project_id, milestone_id), "NotClient()")
    devchain.transact(chain.w3, chain.client, escrow.functions.release(project_id, milestone_id))
    refused(
        chain,
        chain.client,
        escrow.functions.release(project_id, milestone_id),
        "WrongStatus(uint8)",
    )
    _, unfunded = ids()
    refused(
        chain, chain.client, escrow.functions.release(project_id, unfunded), "WrongStatus(uint8)"
    )


def test_either_party_disputes_and_a_disputed_milestone_cannot_be_released(
    chain: Chain, escrow: Contract, fund: Callable[..., Any]
) -> None:
    project_id, first = fund()
    _, second = fund(project=project_id)
    receipt = devchain.transact(
        chain.w3, chain.client, escrow.functions.dispute(project_id, first, b"\x01" * 32)
    )
    (event,) = emitted(escrow, "Disputed", receipt)
    assert (event.args.milestoneId, event.args.disputant) == (first, chain.client.address)
    devchain.transact(
        chain.w3, chain.expert, escrow.functions.dispute(project_id, second, b"\0" * 32)
    )
    assert escrow.functions.milestones(project_id, second).call()[1] == DISPUTED
    refused(chain, chain.client, escrow.functions.release(project_id, first), "WrongStatus(uint8)")
    _, third = fund(project=project_id)
    refused(
        chain,
        chain.stranger,
        escrow.functions.dispute(project_id, third, b"\0" * 32),
        "NotParty()",
    )
    refused(
        chain,
        chain.client,
        escrow.functions.dispute(project_id, first, b"\0" * 32),
        "WrongStatus(uint8)",
    )


def test_the_arbiter_splits_a_dispute_after_its_fee(
    chain: Chain, stablecoin: Contract, escrow: Contract, fund: Callable[..., Any]
) -> None:
    project_id, milestone_id = fund()
    devchain.transact(
        chain.w3, chain.expert, escrow.functions.dispute(project_id, milestone_id, b"\0" * 32)
    )
    who = (
        chain.client.address,
        chain.expert.address,
        chain.fee_recipient.address,
        chain.arbiter.address,
    )
    before = balances(stablecoin, *who)
    receipt = devchain.transact(
        chain.w3,
        chain.arbiter,
        escrow.functions.resolve(project_id, milestone_id, 7_000, b"\0" * 32),
    )
    after = balances(stablecoin, *who)
    arbiter_fee = AMOUNT * ARBITER_FEE_BPS // 10_000
    rest = AMOUNT - arbiter_fee
    expert_share = rest * 7_000 // 10_000
    platform_fee = expert_share * FEE_BPS // 10_000
    gained = [a - b for a, b in zip(after, before, strict=True)]
    assert gained == [rest - expert_share, expert_share - platform_fee, platform_fee, arbiter_fee]
    assert sum(gained) == AMOUNT
    (event,) = emitted(escrow, "Resolved", receipt)
    assert (event.args.projectId, event.args.expertShareBps) == (project_id, 7_000)
    assert escrow.functions.milestones(project_id, milestone_id).call()[1] == RESOLVED


def test_resolve_is_refused_to_non_arbiters_undisputed_milestones_and_bad_shares(
    chain: Chain, escrow: Contract, fund: Callable[..., Any]
) -> None:
    project_id, milestone_id = fund()
    resolve = escrow.functions.resolve(project_id, milestone_id, 5_000, b"\0" * 32)
    refused(chain, chain.arbiter, resolve, "WrongStatus(uint8)")
    devchain.transact(
        chain.w3, chain.client, escrow.functions.dispute(project_id, milestone_id, b"\0" * 32)
    )
    for other in (chain.client, chain.expert, chain.deployer):
        refused(chain, other, resolve, "NotArbiter()")
    refused(
        chain,
        chain.arbiter,
        escrow.functions.resolve(project_id, milestone_id, 10_001, b"\0" * 32),
        "InvalidBps()",
    )


def test_the_client_withdraws_only_after_the_termination_time_and_not_disputed(
    chain: Chain, stablecoin: Contract, escrow: Contract, fund: Callable[..., Any]
) -> None:
    now = chain.w3.eth.get_block("latest")["timestamp"]
    project_id, first = fund(termination=now + 3600)
    _, second = fund(project=project_id, termination=now + 3600)
    refused(
        chain,
        chain.client,
        escrow.functions.withdraw(project_id, first),
        "TerminationNotReached(uint64)",
    )
    devchain.transact(
        chain.w3, chain.expert, escrow.functions.dispute(project_id, second, b"\0" * 32)
    )
    chain.rpc("evm_increaseTime", 3601)
    chain.rpc("evm_mine")
    refused(chain, chain.expert, escrow.functions.withdraw(project_id, first), "NotClient()")
    before = balances(stablecoin, chain.client.address)[0]
    receipt = devchain.transact(
        chain.w3, chain.client, escrow.functions.withdraw(project_id, first)
    )
    assert balances(stablecoin, chain.client.address)[0] - before == AMOUNT
    (event,) = emitted(escrow, "Refunded", receipt)
    assert (event.args.milestoneId, event.args.amount) == (first, AMOUNT)
    refused(
        chain, chain.client, escrow.functions.withdraw(project_id, second), "WrongStatus(uint8)"
    )
    assert escrow.functions.milestones(project_id, first).call()[1] == REFUNDED


def test_the_payee_alone_refunds_a_funded_milestone_to_the_client(
    chain: Chain, stablecoin: Contract, escrow: Contract, fund: Callable[..., Any]
) -> None:
    project_id, milestone_id = fund()
    refused(chain, chain.client, escrow.functions.refund(project_id, milestone_id), "NotPayee()")
    before = balances(stablecoin, chain.client.address)[0]
    devchain.transact(chain.w3, chain.expert, escrow.functions.refund(project_id, milestone_id))
    assert balances(stablecoin, chain.client.address)[0] - before == AMOUNT
    refused(
        chain, chain.expert, escrow.functions.refund(project_id, milestone_id), "WrongStatus(uint8)"
    )


def test_the_constructor_refuses_a_missing_arbiter_or_fee_address(chain: Chain) -> None:
    zero = "0x" + "00" * 20
    for args, signature in (
        ((zero, chain.fee_recipient.address, 0, 0), "InvalidAddress()"),
        ((chain.arbiter.address, zero, 100, 0), "InvalidAddress()"),
        ((chain.arbiter.address, chain.fee_recipient.address, 10_001, 0), "InvalidBps()"),
    ):
        artifact = devchain.compiled()["Escrow"]
        factory = chain.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        refused(chain, chain.deployer, factory.constructor(*args), signature)
