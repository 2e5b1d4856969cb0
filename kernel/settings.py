"""Settings, read from the environment with the AGENTOS_ prefix."""

from __future__ import annotations

import re
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PERSON = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")  # kernel.models.NAME_RE


def check_database_url(url: str) -> str:
    """url if libpq can parse it, else ValueError naming the problem (never the URL).

    A mistyped scheme (`postgresq://`) would otherwise reach libpq as a key=value string
    and fail only after the pool's connect timeout, as "database unavailable".
    """
    url = url.strip()
    if not url:
        raise ValueError("is set but empty; unset it to use the embedded database")
    m = _SCHEME.match(url)
    if m and m.group(1) not in ("postgresql", "postgres"):
        raise ValueError(
            f"scheme {m.group(1)!r} is not PostgreSQL; the URL starts with postgresql://"
        )
    from psycopg import conninfo

    try:
        conninfo.conninfo_to_dict(url)
    except Exception:
        # libpq's message may quote the string, password included: say only what is wrong.
        raise ValueError(
            "is not a PostgreSQL URL (postgresql://user:password@host:5432/dbname) "
            "or key=value connection string"
        ) from None
    return url


def default_home() -> Path:
    """The platform's user data directory for agentos."""
    return Path(platformdirs.user_data_dir("agentos", appauthor=False))


class Settings(BaseSettings):
    """Everything a deployment sets; each field is AGENTOS_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="AGENTOS_", extra="ignore")

    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL; unset means the embedded server under AGENTOS_HOME.",
    )
    agent_database_url: SecretStr | None = Field(
        default=None,
        description="The URL agent processes connect with (a role without DDL); unset: "
        "AGENTOS_DATABASE_URL, or the embedded server's agentos_agent role.",
    )
    home: Path = Field(default_factory=default_home, description="Local state directory.")
    secret_key: SecretStr | None = Field(
        default=None,
        description="The key secrets are encrypted with (32 bytes, base64url or hex; "
        "`agentos secret keygen`); unset: AGENTOS_HOME/secret.key, made 0600 when first needed.",
    )
    secret_key_previous: SecretStr | None = Field(
        default=None,
        description="The key secrets were encrypted with before a rotation: read with, never "
        "written with, until `agentos secret rekey` has moved every secret to AGENTOS_SECRET_KEY.",
    )
    poll_interval: float = Field(
        default=1.0, gt=0, le=60, description="Seconds between polls when no NOTIFY arrives."
    )
    lease_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="How long a claim lasts without renewal."
    )
    leader_ttl_seconds: float = Field(
        default=10.0, gt=0, le=600, description="How long leadership lasts without renewal."
    )
    pool_min_size: int = Field(default=1, ge=0, le=100)
    pool_max_size: int = Field(default=8, ge=1, le=200)
    user: str | None = Field(
        default=None,
        description="Who a person at this machine is when they talk to the team (messages "
        "are from, and answered to, this name); unset: the login name.",
    )
    log_level: str = Field(default="INFO")
    log_format: str = Field(default="text", pattern="^(text|json)$")

    @field_validator("database_url", "agent_database_url")
    @classmethod
    def _url_parses(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return None
        return SecretStr(check_database_url(v.get_secret_value()))

    @field_validator("user")
    @classmethod
    def _user_is_a_name(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not _PERSON.match(v):
            raise ValueError(
                "is not a name: lower-case letters, digits, '.', '_' or '-', starting with a "
                "letter or digit, at most 63 characters (e.g. alice)"
            )
        return v

    @property
    def person(self) -> str:
        """Who a person at this machine is: AGENTOS_USER, else the login name (made a name)."""
        if self.user:
            return self.user
        import getpass

        try:
            login = getpass.getuser()
        except Exception:  # no login name at all (a container with an unknown uid)
            login = ""
        name = re.sub(r"[^a-z0-9_.-]+", "-", login.lower()).strip("-._")[:63]
        return name if name and _PERSON.match(name) else "person"

    @property
    def uses_embedded(self) -> bool:
        """True when no database URL is configured and the embedded server is used."""
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        """The embedded server's data directory."""
        return self.home / "pgdata"

    @property
    def secret_key_file(self) -> Path:
        """The key file used when AGENTOS_SECRET_KEY is unset."""
        return self.home / "secret.key"

    @property
    def run_dir(self) -> Path:
        """Pid files and logs of processes started by `agentos start`."""
        return self.home / "run"
