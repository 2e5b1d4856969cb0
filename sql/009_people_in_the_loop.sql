-- 009: people in the loop. A merge can wait for a person, and agents are data.
--
-- * A visible waiting state: 'approval'. A reviewer that approves work the merge gate
--   holds (the review role's `merge: human`, its auto-merge tiers, or the task's own
--   `approval`) moves the task review -> approval with the review's comment and the
--   branch's diffstat in metadata.approval. A person then approves (the kernel merges
--   and finishes it: approval -> done) or rejects it with feedback (approval -> inbox or
--   assigned, back to its worker). No job exists for a task in approval: nobody but a
--   person can move it.
-- * tasks.approval: 'human' or 'auto' per task (NULL: the review role decides); a
--   subtask takes its parent's when it has none, so a goal created with
--   `--approval human` holds the merges of everything planned for it.
-- * awaiting_people: what waits for a person (merges to approve, tasks blocked on their
--   budget), for psql, `agentos task list` and mission control's header.
-- * Agents as data: `agentos agent create` makes a defined agent (role, optional model
--   and instructions over the role's, description, skills); the role's processes host
--   it without a --name, one live session at a time (adopt_agents below).
--
-- ALTER TYPE ... ADD VALUE must commit before the new value can be used, so this file
-- runs as two transactions (kernel/migrate.py: the `agentos:commit` line below).

ALTER TYPE agentos.task_status ADD VALUE IF NOT EXISTS 'approval' AFTER 'review';

-- agentos:commit

-- ------------------------------------------------------------- the gate ----

-- approval is a live state like the others: a person can also cancel it, and a kernel
-- path may block or fail it.
INSERT INTO agentos.task_transitions (from_status, to_status) VALUES
    ('review', 'approval'),
    ('approval', 'done'), ('approval', 'inbox'), ('approval', 'assigned'),
    ('approval', 'blocked'), ('approval', 'failed'), ('approval', 'cancelled');

ALTER TABLE agentos.tasks
    ADD COLUMN approval text CHECK (approval IN ('auto', 'human'));

CREATE FUNCTION agentos.tasks_inherit_approval() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.approval IS NULL AND NEW.parent_id IS NOT NULL THEN
        SELECT p.approval INTO NEW.approval FROM agentos.tasks p WHERE p.id = NEW.parent_id;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER tasks_inherit_approval
BEFORE INSERT ON agentos.tasks
FOR EACH ROW EXECUTE FUNCTION agentos.tasks_inherit_approval();

-- What waits for a person, oldest first: approved merges the gate holds, and tasks
-- blocked because their budget ran out (`agentos task approve N --budget USD`).
CREATE VIEW agentos.awaiting_people AS
SELECT t.id, t.title, 'merge'::text AS waits_for,
       t.metadata->'approval'->>'reason' AS reason,
       t.metadata->'approval'->>'reviewer' AS reviewer,
       t.metadata->'approval'->>'comment' AS comment,
       (t.metadata->'approval'->>'files')::integer AS files,
       (t.metadata->'approval'->>'added')::integer AS added,
       (t.metadata->'approval'->>'deleted')::integer AS deleted,
       t.updated_at AS since
FROM agentos.tasks t WHERE t.status = 'approval'
UNION ALL
SELECT t.id, t.title, 'budget', t.error, NULL, NULL, NULL, NULL, NULL, t.updated_at
FROM agentos.tasks t
WHERE t.status = 'blocked' AND t.error LIKE 'budget exhausted: task:%'
ORDER BY since, id;

-- ------------------------------------------------------- agents as data ----

ALTER TABLE agentos.agents
    ADD COLUMN defined boolean NOT NULL DEFAULT false,
    ADD COLUMN description text NOT NULL DEFAULT ''
        CHECK (length(description) <= 2000 AND description !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'),
    -- NULL: the role's model (and fallbacks)
    ADD COLUMN model_override text
        CHECK (model_override ~ '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$'),
    -- added to the role's system prompt
    ADD COLUMN instructions text NOT NULL DEFAULT ''
        CHECK (length(instructions) <= 20000
               AND instructions !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'),
    -- skills of the library named in the agent's prompt
    ADD COLUMN skills text[] NOT NULL DEFAULT '{}',
    ADD COLUMN created_by text;

CREATE INDEX agents_defined_idx ON agentos.agents (role, id) WHERE defined;

-- A session takes the defined agents of its role that no live session hosts, up to
-- p_limit; returns their names. Agent rows are locked in id order (as claims lock
-- them), and each one's host is judged with a fresh snapshot after its lock is held:
-- of two processes starting at once, the second sees the first's session and skips.
CREATE FUNCTION agentos.adopt_agents(p_session uuid, p_role text, p_limit integer DEFAULT 64)
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    v_name text;
    v_host uuid;
    n      integer := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM agentos.agent_sessions
                   WHERE id = p_session AND status = 'running') THEN
        RETURN;
    END IF;
    FOR v_name, v_host IN
        SELECT a.name, a.session_id FROM agentos.agents a
        WHERE a.defined AND a.role = p_role AND a.session_id IS DISTINCT FROM p_session
        ORDER BY a.id
        FOR NO KEY UPDATE SKIP LOCKED
    LOOP
        EXIT WHEN n >= p_limit;
        CONTINUE WHEN v_host IS NOT NULL AND EXISTS (
            SELECT 1 FROM agentos.agent_sessions s
            WHERE s.id = v_host AND agentos.session_alive(s.status, s.heartbeat_at, s.lease_seconds));
        UPDATE agentos.agents
        SET session_id = p_session, status = 'idle', current_task_id = NULL,
            last_heartbeat = now(), updated_at = now()
        WHERE name = v_name;
        UPDATE agentos.agent_sessions SET agents = array_append(agents, v_name)
        WHERE id = p_session AND NOT (v_name = ANY(agents));
        n := n + 1;
        RETURN NEXT v_name;
    END LOOP;
END;
$$;

-- The session stops hosting an agent (removed, moved to another role, or taken over):
-- it goes offline unless another session hosts it now.
CREATE FUNCTION agentos.release_agent(p_session uuid, p_name text) RETURNS void
LANGUAGE sql AS $$
    UPDATE agentos.agents SET session_id = NULL, status = 'offline', current_task_id = NULL,
           updated_at = now()
    WHERE name = p_name AND session_id = p_session;
    UPDATE agentos.agent_sessions SET agents = array_remove(agents, p_name)
    WHERE id = p_session;
$$;

-- An agent removed by a person: the log says so (its steps, calls and messages stay).
CREATE FUNCTION agentos.agents_after_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agentos.record_activity('agent.removed', NULL, 'agent ' || OLD.name || ' removed',
        jsonb_build_object('agent', OLD.name, 'role', OLD.role));
    PERFORM agentos.notify_once('agentos_agent',
        jsonb_build_object('name', OLD.name, 'status', 'removed'));
    RETURN NULL;
END;
$$;

CREATE TRIGGER agents_after_delete
AFTER DELETE ON agentos.agents
FOR EACH ROW EXECUTE FUNCTION agentos.agents_after_delete();

DO $$
BEGIN
    -- 005's default privileges cover what this file creates for the agents' role;
    -- grant explicitly too where 005 could not run its grants.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentos_agent') THEN
        GRANT SELECT ON agentos.awaiting_people TO agentos_agent;
        GRANT EXECUTE ON FUNCTION agentos.adopt_agents(uuid, text, integer) TO agentos_agent;
        GRANT EXECUTE ON FUNCTION agentos.release_agent(uuid, text) TO agentos_agent;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END;
$$;
