"""Device keys and classes: a keyed hash of the user agent and the network, made on the server."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from annotation.devices import device_class, device_key, network_of
from annotation.models import Participant

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Mobile Safari/537.36"
)
ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
IPAD = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148"
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0 Safari/537.36"
)
MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 Safari"
LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


@pytest.mark.parametrize(
    "agent, expected",
    [
        (IPHONE, "phone"),
        (ANDROID_PHONE, "phone"),
        (ANDROID_TABLET, "tablet"),
        (IPAD, "tablet"),
        (WINDOWS, "desktop"),
        (MAC, "desktop"),
        (LINUX, "desktop"),
        ("curl/8.5.0", "other"),
        ("", "other"),
    ],
)
def test_device_class_from_the_user_agent(agent, expected):
    assert device_class(agent) == expected


def test_network_is_the_slash_24_or_slash_48():
    assert network_of("203.0.113.77") == "203.0.113.0/24"
    assert network_of("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert network_of("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert network_of("not an address") == ""


def test_device_key_is_keyed_and_follows_the_network():
    key = device_key(WINDOWS, "203.0.113.7", secret="s1")
    assert len(key) == 64
    # Same browser, another address of the same /24: the same device key.
    assert device_key(WINDOWS, "203.0.113.250", secret="s1") == key
    assert device_key(WINDOWS, "203.0.114.7", secret="s1") != key
    assert device_key(MAC, "203.0.113.7", secret="s1") != key
    # Without the secret the key cannot be recomputed from the user agent and network.
    assert device_key(WINDOWS, "203.0.113.7", secret="s2") != key
    assert WINDOWS not in key and "203.0.113" not in key


@pytest.mark.django_db
def test_joining_stores_the_device_key_and_class(make_study):
    study = make_study(target_participants=3)
    client = Client(HTTP_USER_AGENT=IPHONE, REMOTE_ADDR="198.51.100.23")
    response = client.get(f"/s/{study.slug}/?PROLIFIC_PID=dev-1&STUDY_ID=s&SESSION_ID=x")
    assert response.status_code == 302
    participant = Participant.objects.get(study=study)
    assert participant.device_class == "phone"
    assert participant.device_key == device_key(IPHONE, "198.51.100.1")


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_COUNT=1)
def test_behind_a_proxy_the_forwarded_address_makes_the_key(make_study):
    study = make_study(target_participants=3)
    client = Client(
        HTTP_USER_AGENT=WINDOWS,
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="192.0.2.44",
    )
    client.get(f"/s/{study.slug}/?PROLIFIC_PID=dev-2&STUDY_ID=s&SESSION_ID=x")
    participant = Participant.objects.get(study=study)
    assert participant.device_key == device_key(WINDOWS, "192.0.2.200")
    assert participant.device_key != device_key(WINDOWS, "10.0.0.1")
    assert participant.device_class == "desktop"
