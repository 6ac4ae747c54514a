"""The service vocabulary: what clinicians offer, with a stable key and a name in each language.

The vocabulary is data (``data/services.json``), read once per process and checked when
read, so a bad edit fails loudly when the app starts, not on a page. The directory stores
keys (``exercise-therapy``); pages show the name in their language, and the importer, the
staff form and the complaint catalogue take any spelling a clinic writes: the key, the
Norwegian or English name, or an alias, in any case.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("nb", "en")
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "services.json"
KEY_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Lists of services are split on these (import cells, the staff form): no name may hold one.
LIST_SEPARATORS = ";,"


class VocabularyError(ValueError):
    """The service vocabulary file is not in the expected shape."""


def fold(text: str) -> str:
    """A spelling as it is compared: case, hyphens and runs of spaces folded."""
    return " ".join(text.casefold().replace("-", " ").replace("_", " ").split())


@dataclass(frozen=True)
class Service:
    """One service: its key, its name in each language, and other ways clinics write it."""

    key: str
    names: dict[str, str]
    aliases: tuple[str, ...]

    def name(self, language: str) -> str:
        return self.names.get(language) or self.names["en"]

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.key, *self.names.values(), *self.aliases)


@dataclass(frozen=True)
class ServiceVocabulary:
    """Every service by key, in file order, and which key each spelling means."""

    services: dict[str, Service]
    keys_by_spelling: dict[str, str]

    def __contains__(self, key: object) -> bool:
        return key in self.services

    def key_for(self, text: str) -> str | None:
        """The key a spelling means (key, either name or an alias, any case), or None."""
        return self.keys_by_spelling.get(fold(text))

    def resolve(self, texts: Iterable[str]) -> tuple[list[str], list[str]]:
        """The keys of these spellings, in order without repeats, and the ones not known."""
        keys: list[str] = []
        unknown: list[str] = []
        for text in texts:
            key = self.key_for(text)
            if key is None:
                if text not in unknown:
                    unknown.append(text)
            elif key not in keys:
                keys.append(key)
        return keys, unknown

    def name(self, key: str, language: str) -> str:
        """A key's name in a language; a key the vocabulary lacks is shown as it is."""
        service = self.services.get(key)
        return service.name(language) if service is not None else key

    def names(self, keys: Iterable[str], language: str) -> list[str]:
        return [self.name(key, language) for key in keys]

    def sorted_names(self, language: str) -> list[str]:
        """Every service's name in a language, alphabetically, for a list to choose from."""
        return sorted((service.name(language) for service in self.services.values()), key=fold)


def _texts(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(value.get(language), str) and value[language].strip() for language in LANGUAGES
    ):
        raise VocabularyError(f"{where}: needs a name for each of {', '.join(LANGUAGES)}")
    return {language: " ".join(value[language].split()) for language in LANGUAGES}


def parse_services(document: Any) -> ServiceVocabulary:
    """Check a services document and return its vocabulary; raise naming the bad place."""
    entries = document.get("services") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise VocabularyError("the service vocabulary is empty")
    services: dict[str, Service] = {}
    keys_by_spelling: dict[str, str] = {}
    for index, entry in enumerate(entries):
        where = f"services[{index}]"
        if not isinstance(entry, dict):
            raise VocabularyError(f"{where}: must be an object")
        key = entry.get("key")
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise VocabularyError(f"{where}: key must be lower-case words joined by hyphens")
        if key in services:
            raise VocabularyError(f"{where}: key {key!r} appears twice")
        aliases = entry.get("aliases") or []
        if not isinstance(aliases, list) or not all(
            isinstance(alias, str) and alias.strip() for alias in aliases
        ):
            raise VocabularyError(f"{where}: aliases must be non-empty texts")
        service = Service(
            key=key,
            names=_texts(entry.get("name"), f"{where}.name"),
            aliases=tuple(" ".join(alias.split()) for alias in aliases),
        )
        for spelling in service.spellings:
            if any(separator in spelling for separator in LIST_SEPARATORS):
                raise VocabularyError(f"{where}: {spelling!r} holds ; or , (lists split there)")
            if len(spelling) > 80:
                raise VocabularyError(f"{where}: {spelling!r} is longer than 80 characters")
            other = keys_by_spelling.setdefault(fold(spelling), key)
            if other != key:
                raise VocabularyError(
                    f"{where}: {spelling!r} already means {other!r}; a spelling means one service"
                )
        services[key] = service
    return ServiceVocabulary(services=services, keys_by_spelling=keys_by_spelling)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise VocabularyError(f"{path.name}: {error}") from None


@cache
def load_services(path: Path = DEFAULT_PATH) -> ServiceVocabulary:
    """The service vocabulary at ``path``, read once per process."""
    return parse_services(read_json(path))


def current_vocabulary() -> ServiceVocabulary:
    """The app's vocabulary (``services.json`` in its DATA_DIR), or the shipped one outside
    an app (a script)."""
    from flask import current_app, has_app_context

    if has_app_context():
        return load_services(current_app.config["DATA_DIR"] / "services.json")
    return load_services(DEFAULT_PATH)
