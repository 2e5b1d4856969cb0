-- Named queries of the secrets store (kernel/secrets.py), in the format of queries.sql.
-- Values never appear here: only ciphertexts, which kernel/secrets.py makes and opens.

-- name: upsert_secret
-- Store a secret's ciphertext for one scope, replacing the one there.
INSERT INTO agentos.secrets (name, scope_kind, scope_value, ciphertext, key_id, created_by)
VALUES (%(name)s, %(kind)s, %(value)s, %(ciphertext)s, %(key_id)s, %(actor)s)
ON CONFLICT (name, scope_kind, scope_value) DO UPDATE
SET ciphertext = excluded.ciphertext, key_id = excluded.key_id, updated_at = now()
RETURNING name, scope_kind, scope_value, key_id, created_by, created_at, updated_at,
          (xmax <> 0) AS replaced;

-- name: list_secrets
-- Every secret's name, scope and dates (never the ciphertext), by name then scope.
SELECT name, scope_kind, scope_value, key_id, created_by, created_at, updated_at
FROM agentos.secrets
ORDER BY name, array_position(ARRAY['global', 'role', 'agent', 'task'], scope_kind), scope_value;

-- name: delete_secret
-- Remove a secret from one scope, or from every scope when kind is NULL.
DELETE FROM agentos.secrets
WHERE name = %(name)s
  AND (%(kind)s::text IS NULL OR (scope_kind = %(kind)s::text AND scope_value = %(value)s::text))
RETURNING name, scope_kind, scope_value;

-- name: secrets_for_scope
-- The most specific row of each named secret that applies to a role, agent and task.
SELECT DISTINCT ON (name) name, scope_kind, scope_value, ciphertext, key_id
FROM agentos.secrets
WHERE name = ANY(%(names)s::text[])
  AND (scope_kind = 'global'
       OR (scope_kind = 'role' AND scope_value = %(role)s::text)
       OR (scope_kind = 'agent' AND scope_value = ANY(%(agents)s::text[]))
       OR (scope_kind = 'task' AND scope_value = %(task)s::text))
ORDER BY name, array_position(ARRAY['task', 'agent', 'role', 'global'], scope_kind);

-- name: secret_scopes
-- Which scopes hold each named secret (to check a role's references before it runs).
SELECT name, scope_kind, scope_value FROM agentos.secrets WHERE name = ANY(%(names)s::text[]);

-- name: all_secret_ciphertexts
-- Every ciphertext, for the redactor of a process that holds the key.
SELECT name, scope_kind, scope_value, ciphertext, key_id FROM agentos.secrets;

-- name: lock_secret_ciphertexts
-- Every ciphertext, locked for re-encryption under a new key (agentos secret rekey).
SELECT id, name, scope_kind, scope_value, ciphertext, key_id FROM agentos.secrets
ORDER BY id FOR UPDATE;

-- name: update_secret_ciphertext
-- A secret's value re-encrypted under another key (the same name, scope and value).
UPDATE agentos.secrets SET ciphertext = %(ciphertext)s, key_id = %(key_id)s, updated_at = now()
WHERE id = %(id)s;
