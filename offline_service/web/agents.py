"""A browser's user-agent string in words a person recognises ("Chrome on Windows", "Safari on
iPhone", "curl"), for the profile's list of sessions. Pure: a string in, a short string out; the
raw string is still shown beside it, so a guess that is wrong misleads nobody for long."""

from __future__ import annotations

import re

__all__ = ["UNKNOWN", "describe"]

UNKNOWN = "Unknown browser"

# Programs that are not browsers, by the product token they start with.
_PROGRAMS = (
    ("curl/", "curl"),
    ("wget/", "Wget"),
    ("python-httpx/", "Python httpx"),
    ("python-requests/", "Python requests"),
    ("python-urllib/", "Python urllib"),
    ("go-http-client/", "Go HTTP client"),
    ("okhttp/", "OkHttp"),
    ("postmanruntime/", "Postman"),
    ("insomnia/", "Insomnia"),
)

# Browsers, most specific first: Edge, Opera and Samsung Internet also say "Chrome" and "Safari";
# Chrome also says "Safari"; Chrome and Firefox on iOS name themselves CriOS and FxiOS.
_BROWSERS = (
    (re.compile(r"\bEdg(?:e|A|iOS)?/"), "Edge"),
    (re.compile(r"\b(?:OPR|Opera)/"), "Opera"),
    (re.compile(r"\bSamsungBrowser/"), "Samsung Internet"),
    (re.compile(r"\bVivaldi/"), "Vivaldi"),
    (re.compile(r"\b(?:Firefox|FxiOS)/"), "Firefox"),
    (re.compile(r"\bChromium/"), "Chromium"),
    (re.compile(r"\b(?:HeadlessChrome|Chrome|CriOS)/"), "Chrome"),
    (re.compile(r"\bVersion/[\d.]+.*\bSafari/|\bMobile/\w+ Safari/"), "Safari"),
    (re.compile(r"\bMSIE |\bTrident/"), "Internet Explorer"),
)

# Systems, most specific first: an iPhone says "like Mac OS X", Android says "Linux".
_SYSTEMS = (
    (re.compile(r"\biPhone\b"), "iPhone"),
    (re.compile(r"\biPad\b"), "iPad"),
    (re.compile(r"\bAndroid\b"), "Android"),
    (re.compile(r"\bWindows\b"), "Windows"),
    (re.compile(r"\bCrOS\b"), "ChromeOS"),
    (re.compile(r"\bMac OS X\b|\bMacintosh\b"), "macOS"),
    (re.compile(r"\bLinux\b|\bX11\b"), "Linux"),
)

_LONGEST = 1024  # a header longer than any real browser's is not worth reading further


def describe(user_agent: str) -> str:
    """The browser and system of ``user_agent`` ("Firefox on Linux"), the program ("curl"), or
    "Unknown browser" when it names no browser this knows."""
    agent = user_agent.strip()[:_LONGEST]
    lowered = agent.lower()
    for token, name in _PROGRAMS:
        if lowered.startswith(token):
            return name
    browser = next((name for pattern, name in _BROWSERS if pattern.search(agent)), None)
    if browser is None:
        return UNKNOWN
    system = next((name for pattern, name in _SYSTEMS if pattern.search(agent)), None)
    return f"{browser} on {system}" if system else browser
