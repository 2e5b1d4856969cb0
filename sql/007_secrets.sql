-- 007: secrets, encrypted at rest, scoped to a role, an agent, a task or everyone.
--
-- A secret is a name (an environment-variable-like word, ANTHROPIC_API_KEY), a scope
-- and a ciphertext: AES-256-GCM in kernel/secrets.py with a key the database never
-- sees (AGENTOS_SECRET_KEY, or AGENTOS_HOME/secret.key made 0600), the name and scope
-- bound in as associated data so a ciphertext cannot be moved to another row. So
-- `pg_dump` shows names, scopes, dates and bytes, never a value.
--
-- Who may do what: people write secrets (the CLI connects as the admin role); agents
-- (agentos_agent, 005) only read them, because agent processes are the ones that hand
-- a secret to an MCP server or an executor, and the ciphertext is useless without the
-- key. Agents cannot plant, change or remove one. Schedule preconditions
-- (agentos_precondition, 004) cannot read the table at all. Setting and removing a
-- secret records an activity with its name and scope (never its value).
-- docs/decisions/045-secrets-and-mcp.md.

CREATE TABLE agentos.secrets (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'),
    scope_kind  text NOT NULL DEFAULT 'global'
                CHECK (scope_kind IN ('global', 'role', 'agent', 'task')),
    scope_value text NOT NULL DEFAULT '',
    -- version byte, 12-byte nonce, ciphertext with its 16-byte tag
    ciphertext  bytea NOT NULL CHECK (length(ciphertext) >= 29),
    -- which key wrote it (a fingerprint of the key, not the key), so a process holding
    -- another key says so instead of failing to decrypt
    key_id      text NOT NULL CHECK (key_id ~ '^[0-9a-f]{16}$'),
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT secrets_scope_value CHECK (
        CASE scope_kind
            WHEN 'global' THEN scope_value = ''
            WHEN 'task' THEN scope_value ~ '^[1-9][0-9]{0,18}$'
            ELSE scope_value ~ '^[a-z0-9][a-z0-9._-]{0,62}$'
        END),
    CONSTRAINT secrets_name_scope UNIQUE (name, scope_kind, scope_value)
);

COMMENT ON TABLE agentos.secrets IS
    'Encrypted credentials (AES-256-GCM, key outside the database); never a plaintext value.';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentos_agent') THEN
        -- 005's default privileges gave the agents DML on the new table: reads only.
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON agentos.secrets FROM agentos_agent;
        GRANT SELECT ON agentos.secrets TO agentos_agent;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentos_precondition') THEN
        REVOKE ALL ON agentos.secrets FROM agentos_precondition;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'agentos: privileges on agentos.secrets could not be narrowed (%); see '
        'docs/security.md', SQLERRM;
END;
$$;
