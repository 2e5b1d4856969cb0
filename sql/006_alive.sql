-- 006: one definition of a live session.
--
-- "Alive" was a 90 s heartbeat in the agent_status view and mission control, but three
-- lease periods in the reaper and the health check, so with AGENTOS_LEASE_SECONDS=10
-- the views showed alive an agent the reaper had declared dead a minute before. A
-- session now records the lease it renews by, and session_alive() is the one rule:
-- running, and heard from within three of its lease periods (a holder renews every
-- third of one, so that is nine missed renewals). The reaper, agent_status, mission
-- control's reads and the health check (kernel/runtime.py, in Python, the same rule)
-- all use it.

ALTER TABLE agentos.agent_sessions
    ADD COLUMN lease_seconds real NOT NULL DEFAULT 30
        CHECK (lease_seconds > 0 AND lease_seconds <= 3600);

CREATE FUNCTION agentos.session_alive(
    p_status text, p_heartbeat timestamptz, p_lease_seconds real, p_now timestamptz DEFAULT NULL
) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_status = 'running'
                    AND p_heartbeat > coalesce(p_now, now()) - make_interval(secs => 3 * p_lease_seconds),
                    false)
$$;

CREATE OR REPLACE VIEW agentos.agent_status AS
SELECT a.name, a.role, a.status,
       agentos.session_alive(s.status, s.heartbeat_at, s.lease_seconds) AS alive,
       a.current_task_id, t.title AS current_task,
       greatest(a.last_heartbeat, s.heartbeat_at) AS last_heartbeat,
       s.host, s.pid, a.session_id, a.model
FROM agentos.agents a
LEFT JOIN agentos.agent_sessions s ON s.id = a.session_id
LEFT JOIN agentos.tasks t ON t.id = a.current_task_id
ORDER BY a.role, a.name;

DO $$
BEGIN
    -- 005's default privileges cover the function for the agents' role; grant it
    -- explicitly too where 005 could not run its grants (a warning was raised then).
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentos_agent') THEN
        GRANT EXECUTE ON FUNCTION agentos.session_alive(text, timestamptz, real, timestamptz)
            TO agentos_agent;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END;
$$;
