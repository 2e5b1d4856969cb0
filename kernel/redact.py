"""The redactor: no registered secret value is ever written or sent in the clear.

Every value a process holds because it is a secret (one it decrypted from the secrets
store, one it was given to store, a credential in its own environment) is registered
here, and every path that writes text somebody or some model will read goes through
`redact()`: steps, activities, messages, task reasons and results, memory, LLM call
errors (kernel/), what is sent to a model (agents/llm.py) and every log line (the
`RedactingFilter` that `agentos.cli.common.setup_logging` puts on the log handler).
A registered value becomes `[secret:NAME]`.

A process can only leak what it holds, and it registers each value the moment it gets
it; so "every registered value" is every secret that could reach its output. Values
shorter than MIN_LENGTH are not registered (they would blank out ordinary words);
the store refuses to keep one. NOTIFY payloads are built by triggers from ids and
kinds only (sql/001), never from text, so they cannot carry a value.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
import urllib.parse
from collections.abc import Mapping
from typing import Any, TypeVar

MIN_LENGTH = 6
SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "DATABASE_URL")

T = TypeVar("T")

_lock = threading.Lock()
_names: dict[str, str] = {}  # a value (or an encoded form of it) -> its name
_pattern: re.Pattern[str] | None = None


def marker(name: str) -> str:
    """What a value of secret `name` is replaced with."""
    return f"[secret:{name}]"


def register(name: str, value: str) -> None:
    """Redact `value` (and its URL- and JSON-escaped forms) as `[secret:name]` from now on."""
    global _pattern
    if len(value) < MIN_LENGTH:
        return
    forms = {value, urllib.parse.quote(value, safe=""), json.dumps(value)[1:-1]}
    with _lock:
        changed = False
        for form in forms:
            if len(form) >= MIN_LENGTH and _names.get(form) != name:
                _names.setdefault(form, name)
                changed = True
        if changed:
            # longest first, so a value containing another is replaced whole
            ordered = sorted(_names, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name says it holds a credential."""
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def register_environment(environ: Mapping[str, str]) -> int:
    """Register the credentials of a process environment (names with KEY, TOKEN, ...)."""
    n = 0
    for key, value in environ.items():
        if is_secret_name(key) and len(value) >= MIN_LENGTH:
            register(key, value)
            n += 1
    return n


def registered() -> int:
    """How many values (and encoded forms) are registered."""
    return len(_names)


def redact_text(text: str) -> str:
    """text with every registered value replaced by its marker."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(lambda m: marker(_names[m.group(0)]), text)


def redact(value: T) -> T:
    """value (a string, or dicts and lists of them) with every registered value replaced."""
    if _pattern is None:
        return value
    return _walk(value)  # type: ignore[no-any-return]


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {_walk(k) if isinstance(k, str) else k: _walk(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_walk(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A log handler filter: the formatted message and traceback, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact_text(
                "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            )
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True
