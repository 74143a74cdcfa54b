"""Errors the engine reports as `error` events with a code and, where possible, a fix."""

from __future__ import annotations


class EngineError(Exception):
    def __init__(self, message: str, code: str = "EAGLET_ENGINE_ERROR", hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


class ConfigError(EngineError):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, code="EAGLET_CONFIG_INVALID", hint=hint)
