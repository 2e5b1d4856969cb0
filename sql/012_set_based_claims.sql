-- 012: claims set-based (issue 12, after 010).
--
-- 010's claim_work leased the tasks of a claim one statement at a time (claim_task per
-- task job); claim_work_v2 does it set-based (010's stays, for processes of the
-- previous version during an upgrade). Every UPDATE of a task pays the executor's start-up, and for agentos.tasks
-- that means reading and compiling its fourteen CHECK constraints again: `pg_strtok`
-- was the top symbol of the claiming backend under perf, and the claim connection was
-- the busiest of a draining host. Now a claim locks the named tasks in one statement (in
-- id order, SKIP LOCKED: a row someone is writing keeps its job queued for the next
-- claim, as in 010), leases them all in one UPDATE and marks its agents working in one
-- more. The same contract as 010's claim_work otherwise (its result rows, its locks:
-- agent rows first in id order, then task rows, never waiting for a task row).
--
-- * claim_target: claim_task's readiness rules (001) as one function, used by
--   claim_task and claim_work alike, so the rules exist once.
-- * tasks_after_write: 001's, plus one case: while agentos.claiming is set (claim_work,
--   for its one UPDATE) a lease that starts is audited under the row's own agent with
--   claim_task's words ("claimed by A (attempt N)"), where a claim of one task set
--   agentos.actor and agentos.reason for its statement.

-- Whether a task is ready work for an agent, and the status its claim moves it to
-- (NULL: not claimable now): the one statement of claim_task's rules (001), for
-- claim_task and claim_work alike. Right state, role or assignee, dependencies done,
-- backoff passed, no live lease.
CREATE FUNCTION agentos.claim_target(
    t agentos.tasks, p_agent text, p_role text, p_now timestamptz
) RETURNS agentos.task_status
LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN t.lease_token IS NOT NULL OR t.available_at > p_now THEN NULL
        WHEN t.status IN ('inbox', 'assigned') THEN
            CASE WHEN ((t.assignee = p_agent) OR (t.assignee IS NULL AND t.role = p_role))
                      AND agentos.dependencies_done(t.id)
                 THEN 'in_progress'::agentos.task_status END
        WHEN t.status = 'review' AND t.review_role = p_role THEN 'review'::agentos.task_status
    END
$$;

-- claim_task (001), for processes of the previous version during an upgrade (their
-- claim_jobs): the same contract, its rules now agentos.claim_target's.
CREATE OR REPLACE FUNCTION agentos.claim_task(
    p_task bigint, p_agent text, p_role text, p_session uuid, p_lease interval,
    p_now timestamptz DEFAULT NULL
) RETURNS SETOF agentos.tasks
LANGUAGE plpgsql AS $$
DECLARE
    t     agentos.tasks;
    v_now timestamptz := coalesce(p_now, now());
    v_to  agentos.task_status;
BEGIN
    -- Wait for the row rather than skip it: the job already made this claimer the only
    -- one for this task, and skipping would drop the hint while a person edits the row.
    SELECT * INTO t FROM agentos.tasks WHERE id = p_task FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    v_to := agentos.claim_target(t, p_agent, p_role, v_now);
    IF v_to IS NULL THEN
        RETURN;
    END IF;
    PERFORM set_config('agentos.actor', p_agent, true);
    PERFORM set_config('agentos.reason',
        'claimed by ' || p_agent || ' (attempt ' || (t.attempts + 1) || ')', true);
    UPDATE agentos.tasks SET
        status = v_to,
        attempts = attempts + 1,
        lease_session = p_session,
        lease_agent = p_agent,
        lease_token = gen_random_uuid(),
        lease_expires_at = v_now + p_lease
    WHERE id = t.id
    RETURNING * INTO t;
    IF v_to = 'review' THEN
        PERFORM agentos.record_activity('task.claimed', t.id,
            'review claimed by ' || p_agent || ' (attempt ' || t.attempts || ')',
            jsonb_build_object('agent', p_agent, 'attempt', t.attempts, 'stage', v_to), p_agent);
    END IF;
    UPDATE agentos.agents SET status = 'working', current_task_id = t.id, updated_at = now()
    WHERE name = p_agent;
    PERFORM set_config('agentos.actor', '', true);
    PERFORM set_config('agentos.reason', '', true);
    RETURN NEXT t;
END;
$$;

-- Claim work for the free agents of a session: jobs addressed to one of them (at most
-- one each), then jobs for the role on the agents left, highest priority first; also
-- picked jobs whose holder went quiet for p_stale (a process that died holding an
-- activation). Task jobs lease their task (agentos.claim_target's rules) and are retired
-- into pgqueuer's log; activation jobs are marked picked by the session and returned
-- for the holder to ack. One row per job taken: the agent, the job, and the leased
-- task (NULL for an activation, or for a task that turned out not to be ready, whose
-- job is retired all the same: jobs are hints, the task row is the truth).
CREATE FUNCTION agentos.claim_work_v2(
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
    v_to      agentos.task_status;
    v_cfg     text;
    v_busy    text[] := '{}';
    v_busy_task bigint[] := '{}';
    v_json    jsonb[] := '{}';
    v_tids    bigint[] := '{}';
    v_locked  bigint[] := '{}';
    c_ids     bigint[] := '{}';
    c_agents  text[] := '{}';
    c_to      agentos.task_status[] := '{}';
    v_leased  agentos.tasks[] := '{}';
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
    -- Read each job: a task job names its task, anything else is an activation.
    FOR i IN 1 .. array_length(v_ids, 1) LOOP
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
        v_json := v_json || v_payload;
        IF v_payload ->> 'kind' = 'task' AND jsonb_typeof(v_payload -> 'task_id') = 'number' THEN
            v_tids := v_tids || (v_payload ->> 'task_id')::bigint;
        ELSE
            v_tids := v_tids || NULL::bigint;
        END IF;
    END LOOP;
    -- Lock the named tasks in one statement, in id order, skipping rows someone else is
    -- writing (their jobs stay queued for the next claim), and decide each lease.
    FOR t IN SELECT * FROM agentos.tasks WHERE id = ANY(v_tids) ORDER BY id
             FOR UPDATE SKIP LOCKED LOOP
        v_locked := v_locked || t.id;
        i := array_position(v_tids, t.id);
        v_to := agentos.claim_target(t, v_who[i], p_role, v_now);
        IF v_to IS NOT NULL THEN
            c_ids := c_ids || t.id; c_agents := c_agents || v_who[i]; c_to := c_to || v_to;
        END IF;
    END LOOP;
    -- One UPDATE leases them all (the transition trigger audits each claim under its
    -- agent's name: agentos.claiming, below); per-row statements cost more than the work.
    IF array_length(c_ids, 1) > 0 THEN
        v_cfg := set_config('agentos.claiming', 'on', true);
        FOR t IN
            UPDATE agentos.tasks x SET
                status = c.to_status, attempts = x.attempts + 1, lease_session = p_session,
                lease_agent = c.agent, lease_token = gen_random_uuid(),
                lease_expires_at = v_now + p_lease
            FROM unnest(c_ids, c_agents, c_to) AS c(id, agent, to_status)
            WHERE x.id = c.id
            RETURNING x.*
        LOOP
            v_leased := v_leased || t;
            IF t.status = 'review' THEN  -- no status change: recorded here, as claim_task does
                PERFORM agentos.record_activity('task.claimed', t.id,
                    'review claimed by ' || t.lease_agent || ' (attempt ' || t.attempts || ')',
                    jsonb_build_object('agent', t.lease_agent, 'attempt', t.attempts,
                                       'stage', 'review'), t.lease_agent);
            END IF;
            v_busy := v_busy || t.lease_agent;
            v_busy_task := v_busy_task || t.id;
        END LOOP;
        v_cfg := set_config('agentos.claiming', '', true);
    END IF;
    -- One row per job taken.
    FOR i IN 1 .. array_length(v_ids, 1) LOOP
        claim_agent := v_who[i];
        claim_job := v_ids[i];
        claim_entrypoint := v_eps[i];
        claim_payload := v_json[i];
        task := NULL;
        IF v_tids[i] IS NULL THEN
            v_picked := v_picked || v_ids[i];
            claim_kind := 'activation';
        ELSIF NOT (v_tids[i] = ANY(v_locked))
              AND EXISTS (SELECT 1 FROM agentos.tasks WHERE id = v_tids[i]) THEN
            CONTINUE;  -- its row is being written: the job stays queued
        ELSE
            v_retire := v_retire || v_ids[i];
            task := (SELECT l FROM unnest(v_leased) AS l
                     WHERE l.id = v_tids[i] AND l.lease_agent = v_who[i]);
            claim_kind := CASE WHEN task IS NULL THEN 'dropped' ELSE 'task' END;
        END IF;
        RETURN NEXT;
    END LOOP;
    IF array_length(v_busy, 1) > 0 THEN
        -- the agents' rows say what they now do, in one statement (locked above)
        UPDATE agentos.agents a SET status = 'working', current_task_id = b.task,
               updated_at = now()
        FROM unnest(v_busy, v_busy_task) AS b(name, task)
        WHERE a.name = b.name;
    END IF;
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

-- The transition trigger of 001, the same but for one case: a claim that leases many
-- tasks in one UPDATE (claim_work sets agentos.claiming) audits each under its own
-- agent's name with claim_task's words, where a claim of one task sets agentos.actor
-- and agentos.reason for its statement.
CREATE OR REPLACE FUNCTION agentos.tasks_after_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_dep    bigint;
    v_reason text;
    v_actor  text;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM agentos.record_activity('task.created', NEW.id, NEW.title,
            jsonb_build_object('status', NEW.status, 'role', NEW.role,
                               'assignee', NEW.assignee, 'priority', NEW.priority),
            coalesce(nullif(current_setting('agentos.actor', true), ''), NEW.created_by));
        PERFORM agentos.enqueue_task_work(NEW.id);
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        v_reason := nullif(current_setting('agentos.reason', true), '');
        IF current_setting('agentos.claiming', true) = 'on'
           AND NEW.lease_token IS DISTINCT FROM OLD.lease_token AND NEW.lease_agent IS NOT NULL
        THEN
            v_actor := NEW.lease_agent;
            v_reason := 'claimed by ' || NEW.lease_agent || ' (attempt ' || NEW.attempts || ')';
        END IF;
        PERFORM agentos.record_activity('task.' || NEW.status::text, NEW.id,
            coalesce(v_reason, OLD.status::text || ' -> ' || NEW.status::text),
            jsonb_build_object('from', OLD.status, 'to', NEW.status,
                               'agent', coalesce(NEW.lease_agent, OLD.lease_agent)),
            v_actor);
        -- only these states can be ready work (a claim moves to in_progress: skip the look-up)
        IF NEW.status IN ('inbox', 'assigned', 'review') THEN
            PERFORM agentos.enqueue_task_work(NEW.id);
        END IF;
        IF NEW.status = 'done' THEN
            FOR v_dep IN SELECT task_id FROM agentos.task_dependencies WHERE depends_on_id = NEW.id
            LOOP
                PERFORM agentos.enqueue_task_work(v_dep);
            END LOOP;
        END IF;
    ELSIF NEW.assignee IS DISTINCT FROM OLD.assignee
       OR (OLD.lease_token IS NOT NULL AND NEW.lease_token IS NULL)
       OR NEW.available_at IS DISTINCT FROM OLD.available_at THEN
        PERFORM agentos.enqueue_task_work(NEW.id);
    END IF;
    PERFORM agentos.notify_once('agentos_task',
        jsonb_build_object('id', NEW.id, 'status', NEW.status, 'op', lower(TG_OP)));
    RETURN NULL;
END;
$$;

DO $$
BEGIN
    -- 005's default privileges cover new functions for the agents' role; grant it
    -- explicitly too where 005 could not run its grants.
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentos_agent') THEN
        GRANT EXECUTE ON FUNCTION agentos.claim_target(agentos.tasks, text, text, timestamptz)
            TO agentos_agent;
        GRANT EXECUTE ON FUNCTION agentos.claim_work_v2(text, text[], uuid, interval, interval,
                                                        timestamptz) TO agentos_agent;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END;
$$;
