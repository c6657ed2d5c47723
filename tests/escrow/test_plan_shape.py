"""The milestone plan's shapes (docs/escrow.md): PUT takes DESIGN.md's bare array; GET and PUT
answer the API's list envelope, with the currency and the total."""

from __future__ import annotations

from tests.escrow.conftest import Platform
from tests.escrow.scenario import PLAN, planned_deal


async def test_put_takes_the_bare_array_and_both_answer_the_list_envelope(
    platform: Platform, database_url: str
) -> None:
    http = platform.http
    deal = await planned_deal(platform, database_url, wallet=platform.chain.expert)
    url = f"/api/v2/projects/{deal.project_id}/milestones"

    shown = await http.get(url, headers=deal.expert)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert set(body) == {"data", "next_cursor", "currency", "total"}
    assert (body["next_cursor"], body["currency"], body["total"]) == (None, "USD", "9000.00")
    assert [(m["title"], m["amount"], m["status"]) for m in body["data"]] == [
        (title, amount, "draft") for title, amount in PLAN
    ]

    # The envelope is not a plan: the platform's ids and statuses are not the owner's to set.
    refused = await http.put(url, json=body, headers=deal.client)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")

    # What an editor does with it: the plan's own fields, as a bare array.
    plan = [{k: m[k] for k in ("title", "amount", "due_date")} for m in body["data"]]
    plan[0]["title"] = "Design review and threat model"
    replaced = await http.put(url, json=plan, headers=deal.client)
    assert replaced.status_code == 200, replaced.text
    assert set(replaced.json()) == set(body)
    assert replaced.json()["data"][0]["title"] == "Design review and threat model"
    assert replaced.json()["next_cursor"] is None
