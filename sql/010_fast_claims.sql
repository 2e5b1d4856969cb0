-- 010: claims in one round trip, completions in batches, agents registered in one
-- statement (issue 12).
--
-- * claim_work: pgqueuer's dequeue and agentos.claim_jobs merged into one statement on
--   pgqueuer's table. A claim picked its jobs in one round trip (pgqueuer's dequeue,
--   which also wrote a "picked" log row per job) and leased their tasks in a second;
--   a task job was only ever picked to be deleted a moment later. Now one call locks
--   the due jobs for the free agents (SKIP LOCKED), leases their tasks and retires the
--   jobs, and marks only activations (heartbeats, messages) picked for their ack.
-- * A task row another transaction holds is skipped, not waited for: its job stays
--   queued (the lock on it ends with the claim), so the hint is not lost and the next
--   claim takes it. Nothing in a claim waits but the agent rows, locked in id order
--   before any task row (003), so a claim cannot deadlock with a person's edit.
-- * finish_tasks: holders end many stages in one statement (a group commit of the
--   slots that finished meanwhile); a stale token answers `false` for its task alone.
--   Its agents are set idle by the caller in a second, asynchronous commit, so the
--   claim of their next work does not wait behind the endings' WAL flush.
-- * tasks_free_agent finds the holder's agent by name (the lease names it) instead of
--   scanning every agent row for its current task: with 1,000 agents that scan was
--   most of a completion.

-- ---------------------------------------------------------------- claims ----

-- Work addressed to one agent is rare; this finds it without probing every agent of a
-- wide host (the role's work has pgqueuer's own (entrypoint, priority, id) index).
CREATE INDEX pgqueuer_agent_work_idx ON agentos.pgqueuer (priority DESC, id)
    WHERE status = 'queued' AND entrypoint LIKE 'agent:%';

-- Claim work for the free agents of a session: jobs addressed to one of them (at most
-- one each), then jobs for the role on the agents left, highest priority first; also
-- picked jobs whose holder went quiet for p_stale (a process that died holding an
-- activation). Task jobs lease their task (agentos.claim_task's rules) and are retired
-- into pgqueuer's log; activation jobs are marked picked by the session and returned
-- for the holder to ack. One row per job taken: the agent, the job, and the leased
-- task (NULL for an activation, or for a task that turned out not to be ready, whose
-- job is retired all the same: jobs are hints, the task row is the truth).
CREATE FUNCTION agentos.claim_work(
    p_role text, p_agents text[], p_session uuid, p_lease interval, p_stale interval,
    p_now timestamptz DEFAULT NULL
) RETURNS TABLE (claim_agent text, claim_job bigint, claim_entrypoint text,
                 claim_kind text, claim_payload jsonb, task agentos.tasks)
LANGUAGE plpgsql
-- planned once per connection, not per call: a custom plan estimated the selectivity of
-- each of a 1,000-agent host's names on every claim
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_now     timestamptz := coalesce(p_now, now());
    v_n       integer := coalesce(array_length(p_agents, 1), 0);
    v_role_ep text := 'role:' || p_role;
    v_agent_eps text[];
    v_ids     bigint[] := '{}';
    v_eps     text[] := '{}';
    v_loads   bytea[] := '{}';
    v_who     text[] := '{}';
    v_retire  bigint[] := '{}';
    v_picked  bigint[] := '{}';
    v_free    text[];
    v_payload jsonb;
    v_text    text;
    v_task    bigint;
    r         record;
    t         agentos.tasks;
    i         integer;
BEGIN
    -- As claim_jobs: a claim lost in a server crash is redone, never lost (the job and
    -- the lease vanish together), so it need not wait for its WAL flush.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF v_n = 0 OR NOT EXISTS (SELECT 1 FROM agentos.agent_sessions
                              WHERE id = p_session AND status = 'running') THEN
        RETURN;  -- a dead session claims nothing (003)
    END IF;
    v_agent_eps := ARRAY(SELECT 'agent:' || a FROM unnest(p_agents) AS a);
    -- 1. work addressed to one of the free agents: its best job, one per agent (found
    --    through the index of agent-addressed jobs, then matched against the free
    --    agents: a host of 1,000 agents does not probe 1,000 entrypoints)
    FOR r IN
        SELECT j.id, j.entrypoint, j.payload FROM agentos.pgqueuer j
        WHERE j.status = 'queued' AND j.entrypoint LIKE 'agent:%'
          AND j.entrypoint = ANY(v_agent_eps) AND j.execute_after < now()
        ORDER BY j.priority DESC, j.id
        LIMIT v_n
        FOR UPDATE SKIP LOCKED
    LOOP
        IF NOT (substr(r.entrypoint, 7) = ANY(v_who)) THEN
            v_ids := v_ids || r.id; v_eps := v_eps || r.entrypoint;
            v_loads := v_loads || r.payload; v_who := v_who || substr(r.entrypoint, 7);
        END IF;
    END LOOP;
    -- 2. the role's work on the agents left, in the order the host listed them
    v_free := ARRAY(SELECT a FROM unnest(p_agents) WITH ORDINALITY AS u(a, k)
                    WHERE NOT (a = ANY(v_who)) ORDER BY k);
    IF coalesce(array_length(v_free, 1), 0) > 0 THEN
        i := 0;
        FOR r IN
            SELECT j.id, j.entrypoint, j.payload FROM agentos.pgqueuer j
            WHERE j.entrypoint = v_role_ep AND j.status = 'queued' AND j.execute_after < now()
            ORDER BY j.priority DESC, j.id
            LIMIT array_length(v_free, 1)
            FOR UPDATE SKIP LOCKED
        LOOP
            i := i + 1;
            v_ids := v_ids || r.id; v_eps := v_eps || r.entrypoint;
            v_loads := v_loads || r.payload; v_who := v_who || v_free[i];
        END LOOP;
        v_free := v_free[i + 1:];
    END IF;
    -- 3. picked jobs whose holder went quiet (pgqueuer's heartbeat timeout), for the
    --    agents still free; one addressed to a busy agent waits for the next claim
    IF coalesce(array_length(v_free, 1), 0) > 0 THEN
        FOR r IN
            SELECT j.id, j.entrypoint, j.payload FROM agentos.pgqueuer j
            WHERE j.status = 'picked' AND j.heartbeat < now() - p_stale
              AND (j.entrypoint = v_role_ep OR j.entrypoint = ANY(v_agent_eps))
            ORDER BY j.priority DESC, j.id
            LIMIT array_length(v_free, 1)
            FOR UPDATE SKIP LOCKED
        LOOP
            IF r.entrypoint = v_role_ep THEN
                CONTINUE WHEN coalesce(array_length(v_free, 1), 0) = 0;
                v_who := v_who || v_free[1];
                v_free := v_free[2:];
            ELSIF substr(r.entrypoint, 7) = ANY(v_free) THEN
                v_who := v_who || substr(r.entrypoint, 7);
                v_free := array_remove(v_free, substr(r.entrypoint, 7));
            ELSE
                CONTINUE;
            END IF;
            v_ids := v_ids || r.id; v_eps := v_eps || r.entrypoint;
            v_loads := v_loads || r.payload;
        END LOOP;
    END IF;
    IF coalesce(array_length(v_ids, 1), 0) = 0 THEN
        RETURN;
    END IF;
    -- The agent rows first, in id order (003), as claim_jobs does.
    PERFORM 1 FROM agentos.agents WHERE name = ANY(v_who) ORDER BY id FOR NO KEY UPDATE;
    FOR i IN 1 .. array_length(v_ids, 1) LOOP
        claim_agent := v_who[i];
        claim_job := v_ids[i];
        claim_entrypoint := v_eps[i];
        task := NULL;
        v_text := encode(coalesce(v_loads[i], '\x7b7d'::bytea), 'escape');
        IF v_text ~ '^\{"kind": "task", "task_id": [0-9]{1,18}\}$' THEN
            -- a task job as enqueue_task_work writes it: no decoding that could fail
            v_payload := v_text::jsonb;
        ELSE
            BEGIN  -- anything else (an activation, a job someone enqueued by hand)
                v_payload := convert_from(coalesce(v_loads[i], '\x7b7d'::bytea), 'UTF8')::jsonb;
            EXCEPTION WHEN OTHERS THEN
                v_payload := NULL;  -- not JSON: an activation of unknown kind, acked as such
            END;
        END IF;
        IF jsonb_typeof(v_payload) IS DISTINCT FROM 'object' THEN
            v_payload := '{}';
        END IF;
        claim_payload := v_payload;
        IF v_payload ->> 'kind' = 'task' AND jsonb_typeof(v_payload -> 'task_id') = 'number' THEN
            v_task := (v_payload ->> 'task_id')::bigint;
            -- a row someone else is writing is left for the next claim, job and all
            PERFORM 1 FROM agentos.tasks WHERE id = v_task FOR UPDATE SKIP LOCKED;
            IF NOT FOUND AND EXISTS (SELECT 1 FROM agentos.tasks WHERE id = v_task) THEN
                CONTINUE;
            END IF;
            v_retire := v_retire || v_ids[i];
            SELECT * INTO t FROM agentos.claim_task(v_task, v_who[i], p_role, p_session,
                                                    p_lease, p_now);
            IF t.id IS NOT NULL THEN
                task := t;
                claim_kind := 'task';
            ELSE
                claim_kind := 'dropped';
            END IF;
        ELSE
            v_picked := v_picked || v_ids[i];
            claim_kind := 'activation';
        END IF;
        RETURN NEXT;
    END LOOP;
    IF array_length(v_retire, 1) > 0 THEN
        WITH gone AS (
            DELETE FROM agentos.pgqueuer WHERE id = ANY(v_retire)
            RETURNING id, priority, entrypoint)
        INSERT INTO agentos.pgqueuer_log (job_id, status, priority, entrypoint)
        SELECT id, 'successful', priority, entrypoint FROM gone;
    END IF;
    IF array_length(v_picked, 1) > 0 THEN
        UPDATE agentos.pgqueuer
        SET status = 'picked', updated = now(), heartbeat = now(), queue_manager_id = p_session
        WHERE id = ANY(v_picked);
    END IF;
END;
$$;

-- ----------------------------------------------------------- completions ----

-- End the stages of many lease holders at once: task p_ids[i], held with p_tokens[i],
-- moves to p_to[i] by p_actors[i] with p_results[i], exactly as transition_task does
-- (same checks, activity, wake-ups). A token that is no longer current answers
-- ok = false for that task and changes nothing; any other refusal (an impossible
-- transition) fails the whole statement, and the caller ends those one by one.
CREATE FUNCTION agentos.finish_tasks(
    p_ids bigint[], p_tokens uuid[], p_to agentos.task_status[], p_actors text[],
    p_results text[]
) RETURNS TABLE (finished_id bigint, ok boolean, task agentos.tasks)
LANGUAGE plpgsql AS $$
DECLARE
    k integer;
    t agentos.tasks;
BEGIN
    -- the agents are set idle by the caller after the commit (free_agents_of_tasks): a
    -- claim of their next work then never waits for this commit's WAL flush
    PERFORM set_config('agentos.keep_agents', 'on', true);
    -- in id order: two batches never wait for each other's rows in opposite orders
    FOR k IN SELECT o.k FROM unnest(p_ids) WITH ORDINALITY AS o(id, k) ORDER BY o.id LOOP
        finished_id := p_ids[k];
        SELECT * INTO t FROM agentos.tasks WHERE id = p_ids[k] FOR UPDATE;
        IF NOT FOUND OR t.lease_token IS DISTINCT FROM p_tokens[k] THEN
            ok := false;
            task := NULL;
        ELSE
            ok := true;
            task := agentos.transition_task(
                p_ids[k], p_to[k], p_actors[k],
                format('%s -> %s by %s', t.status, p_to[k], p_actors[k]),
                p_tokens[k], p_results[k], NULL, NULL);
        END IF;
        RETURN NEXT;
    END LOOP;
    PERFORM set_config('agentos.keep_agents', '', true);
END;
$$;

-- A lease that ends frees its agent (001): the lease names the agent, so look it up by
-- name rather than scan every agent for its current task. Stage endings written by
-- finish_tasks leave it to their caller, right after their commit.
CREATE OR REPLACE FUNCTION agentos.tasks_free_agent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('agentos.keep_agents', true) = 'on' THEN
        RETURN NULL;
    ELSIF OLD.lease_agent IS NOT NULL THEN
        UPDATE agentos.agents SET status = 'idle', current_task_id = NULL, updated_at = now()
        WHERE name = OLD.lease_agent AND current_task_id = NEW.id AND status <> 'offline';
    ELSE
        UPDATE agentos.agents SET status = 'idle', current_task_id = NULL, updated_at = now()
        WHERE current_task_id = NEW.id AND status <> 'offline';
    END IF;
    RETURN NULL;
END;
$$;

DO $$
BEGIN
    -- 005's default privileges cover new functions for the agents' role; grant them
    -- explicitly too where 005 could not run its grants.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentos_agent') THEN
        GRANT EXECUTE ON FUNCTION agentos.claim_work(text, text[], uuid, interval, interval,
                                                     timestamptz) TO agentos_agent;
        GRANT EXECUTE ON FUNCTION agentos.finish_tasks(bigint[], uuid[], agentos.task_status[],
                                                       text[], text[]) TO agentos_agent;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END;
$$;
