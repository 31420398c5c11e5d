"""A participant's device, as the server sees it: a keyed hash for the duplicate check, and a class.

The device key is HMAC-SHA256 (secret: settings.DEVICE_KEY_SECRET) of the browser's user agent
and its network: the /24 of an IPv4 address, the /48 of an IPv6 one. The network rather than
the address, because a home or phone address changes between visits; the key rather than the
values, because neither the address nor the user agent is kept. Nothing runs in the browser:
no JavaScript fingerprinting.

The device class is a plain reading of the user agent (the first rule that matches wins):
"tablet" for iPad, Android without "Mobile", Kindle/Silk, PlayBook and "Tablet";
"phone" for "Mobi" (Android phones, iPhone, most mobile browsers), iPhone/iPod, Windows
Phone and BlackBerry; "desktop" for Windows, Macintosh, X11/Linux and CrOS; else "other"
(bots, empty agents, consoles, TVs). iPadOS 13+ Safari says "Macintosh" and counts as desktop.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

from django.conf import settings

DEVICE_CLASSES: tuple[str, ...] = ("phone", "tablet", "desktop", "other")

_TABLET = re.compile(r"iPad|Kindle|Silk/|PlayBook|Tablet", re.I)
_ANDROID = re.compile(r"Android", re.I)
_PHONE = re.compile(r"Mobi|iPhone|iPod|Windows Phone|BlackBerry|BB10", re.I)
_DESKTOP = re.compile(r"Windows NT|Macintosh|X11|Linux|CrOS", re.I)


def device_class(user_agent: str) -> str:
    """phone, tablet, desktop or other, from the user agent (see the module's rules)."""
    ua = user_agent or ""
    if _TABLET.search(ua) or (_ANDROID.search(ua) and "Mobile" not in ua):
        return "tablet"
    if _PHONE.search(ua):
        return "phone"
    if _DESKTOP.search(ua):
        return "desktop"
    return "other"


def network_of(address: str) -> str:
    """The /24 (IPv4) or /48 (IPv6) network of an address; "" for anything unreadable."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def device_key(user_agent: str, address: str, *, secret: str | None = None) -> str:
    """The keyed hash of the user agent and the address's network (64 hex digits)."""
    key = (secret if secret is not None else settings.DEVICE_KEY_SECRET).encode()
    message = f"{network_of(address)}\n{user_agent or ''}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()
