"""Webhooks shared by the API (checking a URL at submit) and `nst webhooks` (guard and signing).

Deliveries follow Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`,
`webhook-timestamp`, `webhook-signature` headers, signed with the `standardwebhooks` library.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

EVENTS = ("start", "progress", "completed")  # what `webhook_events` may list
DEFAULT_EVENTS = ("completed",)
MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(ValueError):
    """A destination the service will not call (bad scheme, or an address the guard refuses)."""


def check_url(url: str, allowed: frozenset[str]) -> str:
    """The URL's host if `url` is an http(s) URL whose literal host is not refused, else raise.

    A host name is resolved only at delivery (`resolve_destination`): DNS may change meanwhile.
    """
    if len(url) > MAX_URL_LENGTH:
        raise WebhookRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a bad port
    except ValueError as e:
        raise WebhookRefused(f"not a valid URL: {e}") from e
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookRefused("the webhook must be an http:// or https:// URL with a host")
    if host in allowed:
        return host
    if host == "localhost" or host.endswith(".localhost"):
        raise WebhookRefused(f"{host} is a loopback name")
    literal = _literal_ip(host)
    if literal is not None:
        refuse_address(literal)
    return host


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def refuse_address(ip: IPAddress) -> None:
    """Raise if `ip` is not a public unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global):
        raise WebhookRefused(f"{ip} is not a public address")


def resolve_destination(url: str, allowed: frozenset[str]) -> str:
    """The address to connect to for `url`, resolved now; raise if any address is refused.

    Every address the name has is checked (not only the first), so a name cannot mix a public
    address with an internal one; the caller connects to the returned one (no second lookup).
    """
    host = check_url(url, allowed)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise ConnectionError(f"cannot resolve {host}: {e}") from e
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if host not in allowed:
        for ip in addresses:
            refuse_address(ip)
    return str(addresses[0])


def parse_events(raw: str | None) -> tuple[str, ...]:
    """`webhook_events` (comma-separated) as a tuple; raise on an unknown event."""
    if raw is None or not raw.strip():
        return DEFAULT_EVENTS
    events = tuple(dict.fromkeys(e.strip() for e in raw.split(",") if e.strip()))
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise WebhookRefused(f"webhook_events are from {', '.join(EVENTS)}; got {unknown[:3]}")
    return events


def signed_headers(secrets: list[str], msg_id: str, body: str, when: datetime | None = None
                   ) -> dict[str, str]:
    """The Standard Webhooks headers of one try: one `v1,` signature per secret (rotation)."""
    when = when or datetime.now(UTC)
    signatures = " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(when.timestamp())),
            "webhook-signature": signatures, "content-type": "application/json"}
