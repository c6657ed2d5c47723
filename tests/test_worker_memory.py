"""What an API worker does not load until it needs it: the EVM checksum library (eth_utils)
and the alerts' HTTP client (its SSL context holds the CA bundle). Together about 10 MB of
every worker's memory, against the 200 MB per worker that the held-connection benchmark
allows (docs/decisions/0017-lazy-worker-imports.md)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from asgi_lifespan import LifespanManager

from chainconsult.app import create_app
from chainconsult.config import Settings
from chainconsult.infra.monitoring.alerts import AlertRecord, Escalation, Severity
from chainconsult.infra.resources import resources_of
from tests.infra.monitoring.receiver import http_receiver


def test_eth_utils_is_imported_by_the_first_mixed_case_evm_address() -> None:
    # A fresh interpreter: this one may have imported it for another test already.
    script = textwrap.dedent(
        """
        import sys
        from chainconsult.app import create_app
        from chainconsult.experts.vocabulary import Chain
        from chainconsult.experts.wallets import wallet_problem

        create_app()
        print("eth_utils" in sys.modules)
        lower = "0x" + "52908400098527886e0f7030069857d2e4169ee7"
        print(wallet_problem(Chain.ethereum, lower), "eth_utils" in sys.modules)
        good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        typo = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
        print(wallet_problem(Chain.ethereum, good), "eth_utils" in sys.modules)
        print(wallet_problem(Chain.ethereum, typo) is not None)
        """
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split("\n")

    assert output[:4] == ["False", "None False", "None True", "True"]


async def test_the_alert_http_client_is_made_by_the_first_delivery(settings: Settings) -> None:
    app = create_app(settings)
    async with LifespanManager(app):
        escalation: Escalation = resources_of(app).monitoring.escalation
        assert escalation._http is None

    with http_receiver() as receiver:
        escalation = Escalation(
            webhook_urls=[f"{receiver.base_url}/slack"],
            pagerduty_url=f"{receiver.base_url}/pagerduty",
            pagerduty_routing_key=None,
        )
        assert escalation._http is None
        alert = AlertRecord(
            fingerprint="e" * 64, rule="high_error_rate", severity=Severity.high, summary="x"
        )
        alert.notified_channels = escalation.channels_for(alert.severity)
        await escalation.dispatch(alert, "trigger")
        await escalation.aclose()

        assert escalation._http is not None
        assert len(receiver.at("/slack")) == 1
