"""The secrets store: credentials encrypted at rest, scoped, handed only to processes.

A secret is a NAME (an environment-variable-like word: ANTHROPIC_API_KEY) and a value
per scope: `global`, `role:R`, `agent:A` or `task:N`. For a stage of task N run by
agent A of role R, a name resolves to its most specific scope: task, agent, role,
then global. Values are encrypted with AES-256-GCM (the `cryptography` package) under
a key the database never sees:

* AGENTOS_SECRET_KEY (32 bytes, base64url or hex; `agentos secret keygen` makes one;
  the Helm chart puts it in a Kubernetes Secret), else
* AGENTOS_HOME/secret.key, created with mode 0600 the first time a secret is set
  (the embedded default; one machine).

The name and scope are the cipher's associated data, so a ciphertext copied to another
row does not open. Each row records which key wrote it (a fingerprint), so a process
holding another key says exactly that. Every value this process encrypts or decrypts
is registered with the redactor (kernel/redact.py) before it is returned: from then on
it is `[secret:NAME]` in every step, activity, message and log line this process writes.
Setting and removing a secret records an activity with its name and scope, never its value.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import re
import secrets as _random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentos.kernel import activities, errors, redact
from agentos.kernel.db import Conn, translated
from agentos.kernel.models import NAME_RE, ROLE_RE
from agentos.kernel.settings import Settings
from agentos.sql import query
from pydantic import BaseModel, ConfigDict

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
SCOPE_KINDS = ("global", "role", "agent", "task")
MAX_VALUE = 64 * 1024
VERSION = b"\x01"
NONCE = 12


class SecretUnavailable(errors.BadInput):
    """A secret cannot be had: no key, another key, or no such secret in scope."""


@dataclass(frozen=True, order=True)
class Scope:
    """Where a secret applies: global, or one role, agent or task."""

    kind: str = "global"
    value: str = ""

    def __str__(self) -> str:
        return "global" if self.kind == "global" else f"{self.kind}:{self.value}"


GLOBAL = Scope()


def parse_scope(text: str) -> Scope:
    """`global`, `role:R`, `agent:A` or `task:N`; BadInput naming the problem."""
    text = text.strip()
    if text == "global":
        return GLOBAL
    kind, sep, value = text.partition(":")
    if not sep or kind not in SCOPE_KINDS[1:]:
        raise errors.BadInput(
            f"bad scope {text!r} (one of global, role:ROLE, agent:AGENT, task:ID)"
        )
    if kind == "task":
        if not value.isdigit() or not 1 <= int(value) < 2**63:
            raise errors.BadInput(f"bad scope {text!r}: a task id is a positive number")
        return Scope("task", str(int(value)))
    pattern = ROLE_RE if kind == "role" else NAME_RE
    if not pattern.match(value):
        raise errors.BadInput(f"bad scope {text!r}: {value!r} is not a {kind} name")
    return Scope(kind, value)


def check_name(name: str) -> str:
    """name if it is a valid secret name, else BadInput."""
    if not NAME.match(name):
        raise errors.BadInput(
            f"bad secret name {name!r} (letters, digits and _, not starting with a digit; "
            "at most 128)"
        )
    return name


class SecretInfo(BaseModel):
    """What may be shown of a secret: its name, scope and dates, never its value."""

    model_config = ConfigDict(extra="ignore")

    name: str
    scope: str
    key_id: str
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: dict[str, Any]) -> SecretInfo:
        scope = Scope(row["scope_kind"], row["scope_value"])
        return cls.model_validate({**row, "scope": str(scope)})


# ------------------------------------------------------------------ the key --


@dataclass(frozen=True)
class SecretKey:
    """An AES-256 key and its fingerprint (what rows record, so a mismatch is named)."""

    key: bytes
    source: str  # "AGENTOS_SECRET_KEY" or the key file's path

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"agentos-secret-key:" + self.key).hexdigest()[:16]


def generate_key() -> str:
    """A new key, base64url (what AGENTOS_SECRET_KEY and secret.key hold)."""
    return base64.urlsafe_b64encode(_random.token_bytes(32)).decode()


def _parse_key(text: str, source: str) -> SecretKey:
    text = text.strip()
    raw: bytes | None = None
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raw = bytes.fromhex(text)
    else:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise SecretUnavailable(
            f"{source} is not a secret key (32 bytes as base64url or 64 hex digits; "
            "`agentos secret keygen` makes one)"
        )
    return SecretKey(raw, source)


def load_key(settings: Settings, *, create: bool = False) -> SecretKey:
    """The key: AGENTOS_SECRET_KEY, else the key file (made 0600 when `create`)."""
    if settings.secret_key is not None:
        return _parse_key(settings.secret_key.get_secret_value(), "AGENTOS_SECRET_KEY")
    path = settings.secret_key_file
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first: read theirs
        else:
            with os.fdopen(fd, "w") as f:
                f.write(generate_key() + "\n")
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        raise SecretUnavailable(
            f"no secret key here: set AGENTOS_SECRET_KEY (the key the secrets were set "
            f"with) or put it in {path}"
        ) from None


def _read_key_file(path: Path) -> SecretKey:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise SecretUnavailable(
            f"{path} is readable by others (mode {mode & 0o777:o}); chmod 600 it"
        )
    return _parse_key(path.read_text(encoding="utf-8"), str(path))


def try_load_key(settings: Settings) -> SecretKey | None:
    """The key, or None when this process has none (a bad key is still an error)."""
    try:
        return load_key(settings)
    except SecretUnavailable:
        if settings.secret_key is None and not settings.secret_key_file.exists():
            return None
        raise


def pending_key_file(settings: Settings) -> Path:
    """Where `agentos secret rekey --new-key` puts the new key until its rows are written."""
    return settings.secret_key_file.with_name(settings.secret_key_file.name + ".new")


def load_keys(settings: Settings, *, create: bool = False) -> list[SecretKey]:
    """Every key this process may open secrets with, the one it writes with first: the
    key (load_key), then AGENTOS_SECRET_KEY_PREVIOUS (a rotation rolling out), then the
    key of a rotation that stopped between its commit and its key file's rename."""
    keys = [load_key(settings, create=create)]
    if settings.secret_key_previous is not None:
        keys.append(
            _parse_key(
                settings.secret_key_previous.get_secret_value(), "AGENTOS_SECRET_KEY_PREVIOUS"
            )
        )
    pending = pending_key_file(settings)
    if settings.secret_key is None and pending.exists():
        keys.append(_read_key_file(pending))
    return keys


def _aad(name: str, scope: Scope) -> bytes:
    return f"agentos-secret\x00{name}\x00{scope.kind}\x00{scope.value}".encode()


def encrypt(key: SecretKey, name: str, scope: Scope, value: str) -> bytes:
    """The stored form of a value: version, nonce, AES-GCM ciphertext and tag."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = _random.token_bytes(NONCE)
    return VERSION + nonce + AESGCM(key.key).encrypt(nonce, value.encode(), _aad(name, scope))


def decrypt(key: SecretKey, name: str, scope: Scope, blob: bytes, key_id: str) -> str:
    """The value of a stored secret; SecretUnavailable when it does not open."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if key_id != key.key_id:
        raise SecretUnavailable(
            f"secret {name} ({scope}) was set with another key (key id {key_id}; this "
            f"process has {key.key_id} from {key.source}): set AGENTOS_SECRET_KEY to that key"
        )
    blob = bytes(blob)
    if blob[:1] != VERSION or len(blob) < 1 + NONCE + 16:
        raise SecretUnavailable(f"secret {name} ({scope}) is not in a format this version reads")
    try:
        plain = AESGCM(key.key).decrypt(blob[1 : 1 + NONCE], blob[1 + NONCE :], _aad(name, scope))
    except InvalidTag:
        raise SecretUnavailable(
            f"secret {name} ({scope}) does not decrypt (altered, or moved from another row); "
            "set it again"
        ) from None
    value = plain.decode()
    redact.register(name, value)
    return value


def decrypt_any(
    keys: Sequence[SecretKey], name: str, scope: Scope, blob: bytes, key_id: str
) -> str:
    """decrypt() with whichever of keys wrote the row (load_keys)."""
    for key in keys:
        if key.key_id == key_id:
            return decrypt(key, name, scope, blob, key_id)
    held = ", ".join(f"{k.key_id} from {k.source}" for k in keys)
    raise SecretUnavailable(
        f"secret {name} ({scope}) was set with another key (key id {key_id}; this process "
        f"has {held}): set AGENTOS_SECRET_KEY to that key, or AGENTOS_SECRET_KEY_PREVIOUS "
        "while a rotation rolls out"
    )


def check_value(value: str) -> str:
    """A value fit to store: one trailing newline dropped; BadInput otherwise."""
    if value.endswith("\r\n"):
        value = value[:-2]
    elif value.endswith("\n"):
        value = value[:-1]
    if not value:
        raise errors.BadInput("a secret needs a value (on standard input)")
    if "\x00" in value:
        raise errors.BadInput("a secret value may not contain a NUL byte")
    if len(value) < redact.MIN_LENGTH:
        raise errors.BadInput(
            f"a secret value needs at least {redact.MIN_LENGTH} characters (a shorter one "
            "could not be told apart from ordinary text when it is redacted)"
        )
    if len(value.encode()) > MAX_VALUE:
        raise errors.BadInput(f"a secret value is at most {MAX_VALUE} bytes")
    return value


# ------------------------------------------------------------- the store --


@translated
async def set_secret(
    conn: Conn,
    settings: Settings,
    name: str,
    value: str,
    *,
    scopes: Sequence[Scope] = (GLOBAL,),
    actor: str | None = "cli",
) -> list[tuple[SecretInfo, bool]]:
    """Store value for each scope (replacing what was there); [(info, replaced)]."""
    check_name(name)
    value = check_value(value)
    key = load_key(settings, create=True)
    redact.register(name, value)
    out: list[tuple[SecretInfo, bool]] = []
    async with conn.transaction():
        for scope in dict.fromkeys(scopes or (GLOBAL,)):
            row = await (
                await conn.execute(
                    query("upsert_secret"),
                    {
                        "name": name,
                        "kind": scope.kind,
                        "value": scope.value,
                        "ciphertext": encrypt(key, name, scope, value),
                        "key_id": key.key_id,
                        "actor": actor,
                    },
                )
            ).fetchone()
            assert row is not None
            replaced = bool(row["replaced"])
            await activities.record(
                conn,
                "secret.set",
                message=f"secret {name} ({scope}) {'replaced' if replaced else 'set'}",
                data={"name": name, "scope": str(scope), "replaced": replaced},
                actor=actor,
            )
            out.append((SecretInfo.of(row), replaced))
    return out


@translated
async def list_secrets(conn: Conn) -> list[SecretInfo]:
    """Every secret's name, scope and dates (never a value)."""
    rows = await (await conn.execute(query("list_secrets"))).fetchall()
    return [SecretInfo.of(r) for r in rows]


@translated
async def remove_secret(
    conn: Conn, name: str, *, scope: Scope | None = None, actor: str | None = "cli"
) -> list[Scope]:
    """Remove a secret from one scope, or from all; NotFound when nothing matched."""
    check_name(name)
    async with conn.transaction():
        rows = await (
            await conn.execute(
                query("delete_secret"),
                {
                    "name": name,
                    "kind": scope.kind if scope else None,
                    "value": scope.value if scope else None,
                },
            )
        ).fetchall()
        if not rows:
            where = f" in scope {scope}" if scope else ""
            raise errors.NotFound(f"no secret {name}{where} (see `agentos secret list`)")
        removed = [Scope(r["scope_kind"], r["scope_value"]) for r in rows]
        for s in removed:
            await activities.record(
                conn,
                "secret.removed",
                message=f"secret {name} ({s}) removed",
                data={"name": name, "scope": str(s)},
                actor=actor,
            )
    return removed


def _scope_hint(name: str, role: str) -> str:
    return f"`agentos secret set {name} --scope role:{role}` sets one"


@translated
async def resolve(
    conn: Conn,
    settings: Settings,
    names: Iterable[str],
    *,
    role: str,
    agent: str | None = None,
    task_id: int | None = None,
    required: bool = True,
) -> dict[str, str]:
    """The values of `names` for a role, agent and task, most specific scope first.

    Every value is registered with the redactor before it is returned. A name with no
    value in any scope that applies is SecretUnavailable when `required`, else left out.
    """
    wanted = sorted({check_name(n) for n in names})
    if not wanted:
        return {}
    rows = await (
        await conn.execute(
            query("secrets_for_scope"),
            {
                "names": wanted,
                "role": role,
                "agents": [agent] if agent else [],
                "task": str(task_id) if task_id is not None else None,
            },
        )
    ).fetchall()
    missing = [n for n in wanted if n not in {r["name"] for r in rows}]
    if missing and required:
        where = f"role {role}" + (f", agent {agent}" if agent else "")
        where += f", task {task_id}" if task_id is not None else ""
        raise SecretUnavailable(
            f"unknown secret {missing[0]} for {where} ({_scope_hint(missing[0], role)})"
        )
    if not rows:
        return {}
    keys = load_keys(settings)
    return {
        r["name"]: decrypt_any(
            keys, r["name"], Scope(r["scope_kind"], r["scope_value"]), r["ciphertext"], r["key_id"]
        )
        for r in rows
    }


@translated
async def unresolvable(
    conn: Conn, names: Iterable[str], *, role: str, agents: Sequence[str] = ()
) -> list[str]:
    """Names no stage of this role could resolve: no global, role, agent or task value.

    (A task-scoped value may serve some task: it counts; a stage of another task then
    fails with SecretUnavailable naming the secret.)"""
    wanted = sorted({check_name(n) for n in names})
    if not wanted:
        return []
    rows = await (await conn.execute(query("secret_scopes"), {"names": wanted})).fetchall()
    usable = {
        r["name"]
        for r in rows
        if r["scope_kind"] in ("global", "task")
        or (r["scope_kind"] == "role" and r["scope_value"] == role)
        or (r["scope_kind"] == "agent" and (not agents or r["scope_value"] in agents))
    }
    return [n for n in wanted if n not in usable]


@translated
async def prime_redactor(conn: Conn, settings: Settings) -> int:
    """Register every value this process's key opens, so none is ever written in the
    clear by it (even one a person pasted into a task); returns how many opened."""
    if try_load_key(settings) is None:
        return 0
    keys = {k.key_id: k for k in load_keys(settings)}
    rows = await (await conn.execute(query("all_secret_ciphertexts"))).fetchall()
    n = 0
    for r in rows:
        key = keys.get(r["key_id"])
        if key is None:
            continue
        try:
            decrypt(key, r["name"], Scope(r["scope_kind"], r["scope_value"]), r["ciphertext"],
                    r["key_id"])  # fmt: skip
        except SecretUnavailable:
            continue
        n += 1
    return n


@dataclass(frozen=True)
class Rekeyed:
    """What a rotation did: rows re-encrypted, rows already under the key, the key's id."""

    rewritten: int
    unchanged: int
    key_id: str


@translated
async def rekey(
    conn: Conn, settings: Settings, *, new_key: SecretKey | None = None, actor: str | None = "cli"
) -> Rekeyed:
    """Re-encrypt every secret under new_key (default: the key this process writes with),
    opening each with whichever key this process holds for it (load_keys), in one
    transaction: a row no key here opens is SecretUnavailable and nothing changes."""
    keys = load_keys(settings)
    target = new_key or keys[0]
    held = {k.key_id: k for k in [*keys, target]}
    rewritten = unchanged = 0
    async with conn.transaction():
        rows = await (await conn.execute(query("lock_secret_ciphertexts"))).fetchall()
        for r in rows:
            if r["key_id"] == target.key_id:
                unchanged += 1
                continue
            scope = Scope(r["scope_kind"], r["scope_value"])
            value = decrypt_any(list(held.values()), r["name"], scope, r["ciphertext"], r["key_id"])
            await conn.execute(
                query("update_secret_ciphertext"),
                {
                    "id": r["id"],
                    "ciphertext": encrypt(target, r["name"], scope, value),
                    "key_id": target.key_id,
                },
            )
            rewritten += 1
        await activities.record(
            conn,
            "secret.rekeyed",
            message=f"{rewritten} secret(s) re-encrypted under key {target.key_id}"
            + (f" ({unchanged} already were)" if unchanged else ""),
            data={"rewritten": rewritten, "unchanged": unchanged, "key_id": target.key_id},
            actor=actor,
        )
    return Rekeyed(rewritten, unchanged, target.key_id)


def write_pending_key(settings: Settings) -> tuple[SecretKey, bool]:
    """The new key of a local rotation, in secret.key.new (0600), and whether it was made
    now: else it is the one a rotation that stopped half-way left there (rows may be
    under it already, so it is used again, never replaced)."""
    path = pending_key_file(settings)
    if path.exists():
        return _read_key_file(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(generate_key() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return _read_key_file(path), True


def install_pending_key(settings: Settings) -> None:
    """Make secret.key.new the key file (after its rows committed)."""
    os.replace(pending_key_file(settings), settings.secret_key_file)


def key_file_mode(path: Path) -> int | None:
    """The key file's permission bits, or None when there is none (for doctor and tests)."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return None
