"""The article sites we trust: they may frame /embed, read the API and post contact requests.

One list, ``EMBED_ALLOWED_ORIGINS``. The older ``CONTACT_ALLOWED_ORIGINS`` (which only let
sites post contact requests) is still read and adds to it: a site trusted to post a
patient's request is the site that embeds the finder, so two lists could only drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .config import ConfigError

ORIGIN_SETTINGS = ("EMBED_ALLOWED_ORIGINS", "CONTACT_ALLOWED_ORIGINS")

# What a browser sends in Origin: scheme://host[:port], lower case, no path, no default port.
_ORIGIN = re.compile(
    r"^(?P<scheme>https?)://"
    r"(?P<host>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*"
    r"|\[[0-9a-f:.]+\])"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?$"
)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def origin_problem(origin: str) -> str | None:
    """Say what is wrong with an origin as written in the config, or None when it is fine."""
    match = _ORIGIN.match(origin)
    if match is None:
        if origin.lower() != origin and _ORIGIN.match(origin.lower()):
            return f"write it in lower case, as browsers send it: {origin.lower()}"
        return "an origin is scheme://host[:port] with http or https and no path, e.g. https://artikler.example.no"
    port = match.group("port")
    if port is not None and (int(port) > 65535 or port == _DEFAULT_PORTS[match.group("scheme")]):
        return "leave out the default port, or give a port from 1 to 65535"
    return None


def check_allowed_origins(config: Mapping[str, Any]) -> None:
    """Refuse to start when an allowed origin could never match what a browser sends."""
    for setting in ORIGIN_SETTINGS:
        value = config.get(setting) or []
        if isinstance(value, str):
            raise ConfigError(f"{setting} must be a list of origins, not one string.")
        for origin in value:
            problem = origin_problem(str(origin))
            if problem:
                raise ConfigError(f"{setting} has {origin!r}: {problem}.")


def allowed_origins(config: Mapping[str, Any]) -> list[str]:
    """The article sites' origins, from both settings, without repeats, in the order given."""
    origins: list[str] = []
    for setting in ORIGIN_SETTINGS:
        for origin in config.get(setting) or []:
            if origin not in origins:
                origins.append(origin)
    return origins


def is_allowed_origin(config: Mapping[str, Any], origin: str | None) -> bool:
    """Whether a request's Origin header names one of the article sites."""
    return bool(origin) and origin in allowed_origins(config)
