"""A milestone is funded only under the terms the platform handed out, the termination time
included: an earlier one would let the client withdraw what shows as funded. The plan's due
dates, from which the termination time comes, are checked when saved and when funded."""

from __future__ import annotations

import datetime as dt

import pytest

from chainconsult.escrow.watcher import reconcile
from chainconsult.infra.chain.rpc import ChainClient
from tests.escrow.conftest import Platform
from tests.escrow.scenario import balance, milestone_rows, mint, planned_deal, sign_and_send
from tests.escrow.test_refusals import problem
from tests.market import query


async def test_a_deposit_with_an_earlier_termination_time_is_no_funding_and_is_reported(
    platform: Platform, database_url: str
) -> None:
    chain = platform.chain
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    approve, deposit, _ = funding.json()["transactions"]
    args = list(platform.escrow.decode_function_input(deposit["data"])[1].values())
    args[5] = 1  # terminationTime: long past
    forged = platform.escrow.functions.deposit(*args)
    mint(platform, chain.client, 9_000_000_000)
    sign_and_send(platform, chain.client, [approve])
    sign_and_send(
        platform,
        chain.client,
        [{"to": platform.escrow.address, "data": forged._encode_transaction_data(), "value": "0"}],
    )
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()

    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "draft",
        "draft",
    ]
    client = ChainClient(chain.url)
    try:
        # The contract holds a deposit the platform does not count: one difference.
        assert await reconcile(platform.sessionmaker, platform.settings.escrow, client) == 1
    finally:
        await client.close()
    # Why it must not count: the client can take it back at once.
    before = balance(platform, chain.client.address)
    withdraw = platform.escrow.functions.withdraw(args[0], args[1])
    sign_and_send(
        platform,
        chain.client,
        [
            {
                "to": platform.escrow.address,
                "data": withdraw._encode_transaction_data(),
                "value": "0",
            }
        ],
    )
    assert balance(platform, chain.client.address) == before + 3_000_000_000


def _years_ahead(years: int) -> dt.date:
    today = dt.datetime.now(dt.UTC).date()
    return today.replace(year=today.year + years, day=min(today.day, 28))


@pytest.mark.parametrize(
    "due_date",
    [
        "2020-01-01",  # past: the termination time handed out would be too
        "1969-12-31",  # before the Unix epoch: no uint64 timestamp
        "9999-12-31",  # the termination time would overflow the calendar
        (_years_ahead(5) + dt.timedelta(days=5)).isoformat(),
    ],
    ids=["past", "before-1970", "year-9999", "over-5-years"],
)
async def test_a_due_date_outside_today_to_five_years_is_refused(
    platform: Platform, database_url: str, due_date: str
) -> None:
    deal = await planned_deal(platform, database_url, wallet=platform.chain.expert)
    plan = await platform.http.put(
        f"/api/v2/projects/{deal.project_id}/milestones",
        json=[{"title": "All of it", "amount": "9000.00", "due_date": due_date}],
        headers=deal.client,
    )
    body = problem(plan, 422, "validation-error")
    assert [e["pointer"] for e in body["errors"]] == ["#/0/due_date"], body
    assert len(milestone_rows(database_url, deal.project_id)) == 2  # the plan is unchanged


async def test_a_due_date_up_to_five_years_ahead_is_planned(
    platform: Platform, database_url: str
) -> None:
    deal = await planned_deal(platform, database_url, wallet=platform.chain.expert)
    due = _years_ahead(5).isoformat()
    plan = await platform.http.put(
        f"/api/v2/projects/{deal.project_id}/milestones",
        json=[{"title": "All of it", "amount": "9000.00", "due_date": due}],
        headers=deal.client,
    )
    assert plan.status_code == 200, plan.text
    assert [m["due_date"] for m in plan.json()["data"]] == [due]


@pytest.mark.parametrize("stored", ["2020-01-01", "1969-12-31", "9999-12-31"])
async def test_a_stored_plan_whose_dates_no_longer_fit_is_not_funded(
    platform: Platform, database_url: str, stored: str
) -> None:
    """A plan saved before its dates passed (or before they were checked) must be re-planned:
    no termination time is handed out from it."""
    deal = await planned_deal(platform, database_url, wallet=platform.chain.expert)
    query(
        database_url,
        "UPDATE milestones SET due_date = %s WHERE project_id = %s",
        stored,
        deal.project_id,
    )
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    problem(funding, 422, "validation-error")
    assert [m["termination_time"] for m in milestone_rows(database_url, deal.project_id)] == [
        None,
        None,
    ]


async def test_no_milestone_is_funded_under_a_termination_time_that_has_passed(
    platform: Platform, database_url: str
) -> None:
    """The contract makes later deposits repeat the project's first termination time; once it
    has passed, a new deposit could be withdrawn at once."""
    chain = platform.chain
    deal = await planned_deal(platform, database_url, wallet=chain.expert)
    funding = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    approve, first_deposit, _second = funding.json()["transactions"]
    mint(platform, chain.client, 9_000_000_000)
    sign_and_send(platform, chain.client, [approve, first_deposit])
    chain.rpc("evm_mine")
    chain.rpc("evm_mine")
    await platform.follow()
    assert [m["status"] for m in milestone_rows(database_url, deal.project_id)] == [
        "funded",
        "draft",
    ]
    # As if the termination time had come: the stored terms are those of the chain.
    query(
        database_url,
        "UPDATE milestones SET termination_time = %s WHERE project_id = %s",
        int(dt.datetime.now(dt.UTC).timestamp()) - 1,
        deal.project_id,
    )
    again = await platform.http.post(
        f"/api/v2/projects/{deal.project_id}/escrow", headers=deal.client
    )
    problem(again, 409, "conflict")
