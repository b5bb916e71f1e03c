"""The private-network guard: no request reaches a loopback, private, link-local, CGNAT, multicast or other
non-public address unless `fetch.allow_private_networks` is set (a feed URL must not become a way to read the
admin page of the router, or a cloud metadata service, from the machine the crawler runs on).

The check sits where the connection is made, not beside it. Scrapy's HTTP handler connects through Twisted's
HostnameEndpoint, which, at connect time, asks the reactor's name resolver for addresses (IP literals go
through it too) and connects only to the addresses it is handed. GuardedResolver wraps that resolver and hands
on only public addresses. So the address checked is the address connected to: there is one resolution, and a
name that answers a public address to one lookup and 127.0.0.1 to the next (DNS rebinding) gains nothing, and
each redirect hop is a new connection, checked again. A refused address gets no byte, not even a TCP SYN.

Twisted can only report "no results for hostname lookup" when every address was withheld, so the resolver
remembers why, and PrivateNetworkGuard (a downloader middleware) turns that error into the reason. The
middleware also refuses IP-literal hosts up front, with the same message and without a DNS round trip.
"""

from __future__ import annotations

import ipaddress
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from scrapy.exceptions import CannotResolveHostError, NotConfigured
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolutionReceiver
from zope.interface import implementer

from crawler.fetch.errors import Refused

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)

HINT = "(set fetch.allow_private_networks to allow)"
# Our own Scrapy setting, from FetchSettings.allow_private_networks.
SETTING = "CRAWLER_ALLOW_PRIVATE_NETWORKS"

_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598 shared address space: the ISP's side of a NAT
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: an IPv4 address in the last 32 bits

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_kind(address: str) -> str | None:
    """What kind of non-public address `address` is ("loopback", "private", "CGNAT", ...), None if public.

    Raises ValueError when `address` is not an IP address.
    """
    return _kind(ipaddress.ip_address(address.split("%", 1)[0]))  # an IPv6 zone ("fe80::1%eth0") is dropped


def _kind(ip: Address) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address):
        # An IPv4 address carried inside an IPv6 one reaches that IPv4 host: judge the IPv4 address.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and (kind := _kind(embedded)) is not None:
            return kind
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "CGNAT"
    if any(ip in net for net in _RFC1918) or ip in _UNIQUE_LOCAL:
        return "private"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:  # fec0::/10, the old IPv6 private range
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:  # documentation, benchmarking, "this network", IETF protocol ranges...
        return "non-public"
    return None


def refusal(host: str, address: str) -> str | None:
    """The error for connecting to `address` (which `host` resolved to), or None when it is allowed."""
    try:
        kind = address_kind(address)
    except ValueError:
        kind = "unrecognised"
    if kind is None:
        return None
    what = f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} address"
    if _same_host(host, address):
        return f"refused: {address} is {what} {HINT}"
    return f"refused: {host} resolves to {address}, {what} {HINT}"


def _same_host(host: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")) == ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False


def _host_key(host: str) -> str:
    """One spelling per host name: Twisted resolves the Unicode form, request URLs carry the punycode one."""
    try:
        return host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return host.lower()


@implementer(IHostnameResolver)
class GuardedResolver:
    """Wraps the reactor's name resolver and hands connections only the addresses the guard allows."""

    MEMORY = 1000  # host names whose refusal is remembered for the error message

    def __init__(self, inner: IHostnameResolver):
        # Any: zope interfaces declare methods without `self`, which mypy reads as one argument too many.
        self.inner: Any = inner
        self.enabled = True
        self._refusals: OrderedDict[str, str] = OrderedDict()

    def resolveHostName(
        self,
        resolutionReceiver: Any,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Any = None,
        transportSemantics: str = "TCP",
    ) -> Any:  # IHostResolution
        receiver = _Filter(self, resolutionReceiver, hostName) if self.enabled else resolutionReceiver
        return self.inner.resolveHostName(receiver, hostName, portNumber, addressTypes, transportSemantics)

    def refusal_for(self, host: str) -> str | None:
        """Why the last resolution of `host` gave no address, if the guard withheld them all."""
        return self._refusals.get(_host_key(host))

    def _completed(self, host: str, reason: str | None) -> None:
        key = _host_key(host)
        self._refusals.pop(key, None)
        if reason is not None:
            self._refusals[key] = reason
            while len(self._refusals) > self.MEMORY:
                self._refusals.popitem(last=False)


@implementer(IResolutionReceiver)
class _Filter:
    """Passes on the public addresses of one resolution and remembers the first refused one."""

    def __init__(self, guard: GuardedResolver, receiver: Any, host: str):
        self.guard = guard
        self.receiver: Any = receiver  # an IResolutionReceiver
        self.host = host
        self.passed = 0
        self.refused: str | None = None

    def resolutionBegan(self, resolutionInProgress: IHostResolution) -> None:
        self.receiver.resolutionBegan(resolutionInProgress)

    def addressResolved(self, address: Any) -> None:
        reason = refusal(self.host, str(getattr(address, "host", "")))
        if reason is None:
            self.passed += 1
            self.receiver.addressResolved(address)
        else:
            log.debug("%s", reason)
            self.refused = self.refused or reason

    def resolutionComplete(self) -> None:
        self.guard._completed(self.host, self.refused if self.passed == 0 else None)
        self.receiver.resolutionComplete()


def install_guard(enabled: bool) -> GuardedResolver | None:
    """Put the guard in front of the reactor's name resolver (once per process), or switch it off."""
    from twisted.internet import reactor

    pluggable: Any = reactor  # IReactorPluggableNameResolver, which every Twisted reactor provides
    current = pluggable.nameResolver
    if isinstance(current, GuardedResolver):
        current.enabled = enabled
        return current
    if not enabled:
        return None
    guard = GuardedResolver(current)
    pluggable.installNameResolver(guard)
    return guard


class PrivateNetworkGuard:
    """Downloader middleware: installs the guarded resolver, refuses IP-literal hosts up front, and names the
    reason when the resolver withheld every address of a host.

    It sits after RetryMiddleware (550) so that its process_exception runs first: a refusal is final, never
    retried, and the robots.txt middleware sees it as an ignored request, not as an error worth a traceback.
    """

    def __init__(self, resolver: GuardedResolver):
        self.resolver = resolver

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateNetworkGuard:
        allowed = crawler.settings.getbool(SETTING)
        resolver = install_guard(enabled=not allowed)
        if allowed or resolver is None:
            raise NotConfigured  # fetch.allow_private_networks (no message: Scrapy would log it as a warning)
        return cls(resolver)

    def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return  # a name: judged by the resolver on the addresses it returns
        if (reason := refusal(host, host)) is not None:
            raise Refused(reason)

    def process_exception(self, request: Request, exception: Exception) -> None:
        if isinstance(exception, CannotResolveHostError | DNSLookupError):
            host = urlparse_cached(request).hostname or ""
            if (reason := self.resolver.refusal_for(host)) is not None:
                raise Refused(reason) from exception
