"""pytest fixtures (host side); imported by host_tests/conftest.py.

`agent_hub`: the mock hub (mockhub_env) plus a CA that is NOT the hub's, exported as WRONG_CA_DER, for
the agent's end-to-end tests (a gateway whose certificate does not chain to the provisioned CA).
"""

import pytest

__all__ = ["agent_hub"]


@pytest.fixture
def agent_hub(mockhub_env, tmp_path, monkeypatch):
    from tools.mockhub.certs import TLSMaterial

    other = TLSMaterial(tmp_path / "other-ca")
    monkeypatch.setenv("WRONG_CA_DER", str(other.ca_der_path))
    return mockhub_env
