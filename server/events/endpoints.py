"""Which endpoints a subscription may name: https only and no loopback or private addresses, unless allowed."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class EndpointPolicy:
    """`allow_private`: SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS; `allow_http`: SUBSCRIPTION_ALLOW_HTTP (development)."""

    allow_private: bool = False
    allow_http: bool = False

    def refusal(self, url: str, *, resolve: bool = True) -> str | None:
        """Why a URL may not be an endpoint (None: it may). A host name is resolved and every address it
        has is checked, at creation and again before each delivery."""
        parts = urlsplit(url)
        allowed = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in allowed:
            return f"the endpoint must be an {' or '.join(allowed)} URL, not {url!r}"
        host = parts.hostname
        if not host:
            return f"the endpoint {url!r} names no host"
        if self.allow_private:
            return None
        try:
            addresses = [ipaddress.ip_address(host)]
        except ValueError:
            if not resolve:
                return None
            try:
                found = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
            except OSError:
                return f"the endpoint's host {host!r} does not resolve"
            addresses = [ipaddress.ip_address(info[4][0]) for info in found]
        for address in addresses:
            if not address.is_global:
                return (f"the endpoint's host {host!r} is a loopback, private or reserved address ({address}); "
                        "SUBSCRIPTION_ALLOW_PRIVATE_ENDPOINTS=true allows those")
        return None
