"""The webhook guard, signing and backoff (no traffic leaves loopback; refusals connect nowhere)."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.settings import Settings
from service.webhooks import WebhookRefused, resolve_destination, signed_headers
from webhooks.delivery import Outcome, backoff, post

OLD, NEW = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/", "http://169.254.169.254/",
    "http://[::ffff:127.0.0.1]/", "http://localhost/", "http://[::ffff:a9fe:a9fe]/",
    "http://224.0.0.1/", "http://0.0.0.0/", "http://100.64.0.1/", "http://[fe80::1]/",
    "file:///etc/passwd", "gopher://example.com/",
])
def test_guard_refuses_before_resolving_or_connecting(url: str) -> None:
    with pytest.raises(WebhookRefused):
        resolve_destination(url, frozenset())


def loopback_name() -> str:
    """A host name other than localhost that resolves to loopback here (/etc/hosts, hostname)."""
    hosts = Path("/etc/hosts").read_text().split("\n") if Path("/etc/hosts").exists() else []
    names = [n for line in hosts if line.split()[:1] and line.split()[0].startswith("127.")
             for n in line.split("#")[0].split()[1:]] + [socket.gethostname()]
    for name in names:
        if name.lower() == "localhost" or name.lower().endswith(".localhost"):
            continue
        try:
            if all(ipaddress.ip_address(i[4][0]).is_loopback for i in socket.getaddrinfo(name, 80)):
                return name
        except OSError:
            continue
    pytest.skip("no host name other than localhost resolves to loopback on this machine")


def test_a_name_resolving_to_loopback_is_refused_and_never_connected() -> None:
    with socket.socket() as listener:  # a receiver on loopback that must see no connection
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        for host in ("localhost", loopback_name()):
            with pytest.raises(WebhookRefused):
                resolve_destination(f"http://{host}:{port}/", frozenset())
            outcome = post(f"http://{host}:{port}/", "{}", {}, Settings(webhook_timeout_seconds=1))
            assert outcome.error and outcome.error.startswith("refused") and not outcome.retryable
        with pytest.raises(TimeoutError):
            listener.accept()


def test_allow_listed_host_is_resolved() -> None:
    assert resolve_destination("http://127.0.0.1:9/", frozenset({"127.0.0.1"})) == "127.0.0.1"
    assert resolve_destination("http://localhost:9/", frozenset({"localhost"})) in (
        "127.0.0.1", "::1")


def test_rotated_secrets_both_sign_and_either_verifies() -> None:
    headers = signed_headers([OLD, NEW], "msg_1", '{"a": 1}')
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (OLD, NEW):
        assert Webhook(secret).verify('{"a": 1}', headers) == {"a": 1}
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 32).verify('{"a": 1}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify('{"a": 2}', headers)


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    settings = Settings(webhook_retry_base_seconds=10, webhook_retry_max_delay_seconds=100)
    delays = [backoff(n, settings) for n in range(1, 8)]
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 40 <= delays[3] <= 80
    assert all(50 <= d <= 100 for d in delays[4:])
    default = Settings()
    assert default.webhook_retry_window_seconds >= 3600  # the issue: retries over at least an hour


@pytest.mark.parametrize(("outcome", "retry"), [
    (Outcome(status=503), True), (Outcome(status=500), True), (Outcome(status=408), True),
    (Outcome(status=429), True), (Outcome(error="ConnectTimeout"), True),
    (Outcome(status=400), False), (Outcome(status=404), False), (Outcome(status=410), False),
    (Outcome(status=301), False), (Outcome(error="refused: 10.0.0.1"), False),
])
def test_what_is_retried(outcome: Outcome, retry: bool) -> None:
    assert outcome.retryable is retry and not outcome.delivered
