"""Kernel errors: each carries a one-line message fit to show a person."""

from __future__ import annotations


class KernelError(Exception):
    """Base of every error the kernel raises on purpose; str() is one line."""

    exit_code = 1


class BadInput(KernelError):
    """The caller asked for something malformed or impossible; nothing changed."""

    exit_code = 2


class NotFound(KernelError):
    """The named row does not exist."""

    exit_code = 3


class InvalidTransition(BadInput):
    """The task state machine does not allow this change."""


class StaleLease(KernelError):
    """The caller's lease (attempt token) is no longer current: the work was taken over."""

    exit_code = 4


class DatabaseUnavailable(KernelError):
    """The database cannot be reached."""

    exit_code = 5
