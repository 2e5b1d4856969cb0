-- 005: the role agent processes connect as.
--
-- Agents (`agentos agent run`) need to read and write AgentOS's rows and call its
-- functions; they never need DDL, superuser powers (COPY ... PROGRAM, pg_read_file,
-- ALTER SYSTEM) or other schemas. agentos_agent has exactly the schema's DML and
-- EXECUTE, now and for what later migrations create (default privileges of the role
-- that migrates). The role is made NOLOGIN here; whoever deploys gives it a password
-- (the embedded server does that itself, with a password only AGENTOS_HOME holds).
-- Per-role database roles with row-level security are the next step:
-- docs/decisions/043-database-roles.md.

DO $$
BEGIN
    BEGIN
        BEGIN
            CREATE ROLE agentos_agent NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- made by another database's migration (roles are cluster-wide)
        END;
        GRANT USAGE ON SCHEMA agentos TO agentos_agent;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA agentos TO agentos_agent;
        GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA agentos TO agentos_agent;
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA agentos TO agentos_agent;
        ALTER DEFAULT PRIVILEGES IN SCHEMA agentos
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO agentos_agent;
        ALTER DEFAULT PRIVILEGES IN SCHEMA agentos
            GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO agentos_agent;
        ALTER DEFAULT PRIVILEGES IN SCHEMA agentos GRANT EXECUTE ON FUNCTIONS TO agentos_agent;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'agentos: role agentos_agent could not be made or granted (%): agents '
            'connect with AGENTOS_AGENT_DATABASE_URL or AGENTOS_DATABASE_URL as given; see '
            'docs/decisions/043-database-roles.md', SQLERRM;
    END;
END;
$$;
