"""An API worker loads the TOTP and Ethereum signature libraries only when a code or a
signed message first arrives (about 7 MB each worker would otherwise carry)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest


@pytest.mark.slow
def test_create_app_loads_no_totp_aead_or_eth_account_library() -> None:
    # A fresh interpreter: this one may have imported them for another test already.
    script = textwrap.dedent(
        """
        import sys
        from chainconsult.app import create_app

        create_app()
        lazy = ("pyotp", "cryptography.hazmat.primitives.ciphers.aead", "eth_account")
        print(sorted(name for name in lazy if name in sys.modules))
        from chainconsult.accounts.mfa import matching_step

        matching_step("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "123456", 1_000_000.0)
        print("pyotp" in sys.modules)
        """
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert output == ["[]", "True"]
