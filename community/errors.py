"""Domain errors carry a catalog key, so every channel can say why, politely, in Chinese."""

from __future__ import annotations


class DomainError(Exception):
    """A rule said no. ``key`` names the catalog text shown to the person."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class InvalidTransition(DomainError):
    pass
