"""A proposal, the platform's most frequent write, costs three statements inside its
transaction: the project locked together with the expert's standing (profile and active
proposal), the proposal, and the owner's notification together with its email job. Each
statement costs far more CPU in the ORM and the driver than its SQL does in PostgreSQL, so a
new one here should be a decision."""

from __future__ import annotations

from chainconsult.app import create_app
from chainconsult.config import Settings
from tests.helpers import serving, statements_sent
from tests.market import admin, approved_expert, client_account, project_body, proposal_body


async def test_a_proposal_is_three_statements_and_no_savepoint(
    settings: Settings, database_url: str
) -> None:
    app = create_app(settings)
    async with serving(app) as http:
        admins = await admin(http, database_url)
        _, expert_headers = await approved_expert(http, admins, name="Ada")
        _, owner_headers = await client_account(http, "Owner")
        project = await http.post("/api/v2/projects", json=project_body(), headers=owner_headers)
        assert project.status_code == 201, project.text
        # The caller's lookup is cached from here on: only the write itself is counted.
        assert (await http.get("/api/v2/auth/me", headers=expert_headers)).status_code == 200

        with statements_sent(app.state.engine) as sent:
            proposed = await http.post(
                f"/api/v2/projects/{project.json()['id']}/proposals",
                json=proposal_body(),
                headers=expert_headers,
            )

    statements = [" ".join(statement.split()) for statement, _ in sent]
    assert proposed.status_code == 201, proposed.text
    kinds = [statement.split()[0] for statement in statements]
    assert kinds == ["SELECT", "INSERT", "WITH"], statements
    assert statements[0].endswith("FOR UPDATE OF projects")
    assert statements[0].count("EXISTS") == 2
    assert statements[1].startswith("INSERT INTO proposals")
    assert statements[2].startswith("WITH inserted AS (INSERT INTO notifications")
    assert "procrastinate_defer_jobs_v1" in statements[2]
