"""The browser's real address behind the TLS reverse proxy (PHONEBANK_TRUSTED_PROXIES).

The throttles key on the client's address; behind a proxy every request comes from the proxy, so without this one
bad actor would lock out everyone. ``X-Forwarded-For`` is read by aiohttp-remotes' ``XForwardedFiltered`` (walks
the header from the right past our own proxies' hops and sets ``request.remote`` to the first address that is not
one of them). That middleware believes the header from any peer, so it only runs for requests whose connecting
peer is itself a configured proxy: anyone else can send the header, and theirs is ignored.
An entry that is not an address gets a 400 from the library (never a shared bucket an attacker could fill for
everyone behind the proxy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_remotes import XForwardedFiltered

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(spec: str) -> tuple[IpNetwork, ...]:
    """``"127.0.0.1, 10.0.0.0/8"`` -> networks; ValueError names a bad entry (the setting is checked at start)."""
    nets = []
    for part in spec.replace(" ", ",").split(","):
        if part:
            try:
                nets.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"trusted proxy {part!r} is not an address or network") from exc
    return tuple(nets)


def _peer_is(request: web.Request, proxies: tuple[IpNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def middlewares(spec: str) -> list[Middleware]:
    """The app's first middleware for ``PHONEBANK_TRUSTED_PROXIES`` (none when it is empty)."""
    proxies = parse_proxies(spec)
    if not proxies:
        return []
    filtered = XForwardedFiltered(proxies)

    @web.middleware
    async def trusted_proxy(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _peer_is(request, proxies):
            return await handler(request)
        return await filtered.middleware(request, handler)

    return [trusted_proxy]


def client_ip(request: web.Request) -> str:
    """The browser's address, for throttles and logs (already resolved by the middleware above)."""
    return request.remote or "?"
