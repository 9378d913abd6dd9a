"""Settings that would open a door: malformed API keys and open mode (issue 11 #4)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings, is_loopback


@pytest.mark.parametrize("keys", [",", " , ", "k1:alice,", ",k1:alice", "k1", "k1:", ":alice",
                                  " :alice", "k1:alice,k1:bob", "k1:alice, ,k2:bob"])
def test_malformed_api_keys_stop_the_process(keys: str) -> None:
    with pytest.raises(ValidationError, match="NST_API_KEYS item"):
        Settings(api_keys=keys)


def test_well_formed_keys_parse_with_rotation() -> None:
    settings = Settings(api_keys=" k1:alice , k2:alice,k3:bob ")
    assert settings.tenant_by_key() == {"k1": "alice", "k2": "alice", "k3": "bob"}
    settings.check_api_auth("0.0.0.0")  # keys: any interface


def test_no_keys_is_refused_unless_open_mode_is_chosen() -> None:
    with pytest.raises(ValueError, match="NST_OPEN_MODE"):
        Settings(api_keys="").check_api_auth("127.0.0.1")
    Settings(open_mode=True).check_api_auth("127.0.0.1")


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "example.org", "::"])
def test_open_mode_is_loopback_only(host: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        Settings(open_mode=True).check_api_auth(host)


def test_open_mode_and_keys_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="exclusive"):
        Settings(open_mode=True, api_keys="k1:alice")


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.0.0.2", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.1", "", "localhost.evil"]))
