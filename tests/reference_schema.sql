CREATE SCHEMA agentos;
CREATE TYPE agentos.pgqueuer_status AS ENUM (
    'queued',
    'picked',
    'successful',
    'exception',
    'canceled',
    'deleted',
    'failed'
);
CREATE TYPE agentos.task_status AS ENUM (
    'inbox',
    'assigned',
    'in_progress',
    'review',
    'approval',
    'done',
    'blocked',
    'failed',
    'cancelled'
);
CREATE FUNCTION agentos.acquire_leadership(p_duty text, p_holder uuid, p_ttl interval, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_now    timestamptz := coalesce(p_now, now());
    v_holder uuid;
BEGIN
    INSERT INTO agentos.leader_leases AS l (duty, holder, acquired_at, expires_at)
    VALUES (p_duty, p_holder, v_now, v_now + p_ttl)
    ON CONFLICT (duty) DO UPDATE
        SET holder = excluded.holder,
            acquired_at = CASE WHEN l.holder = excluded.holder THEN l.acquired_at
                               ELSE excluded.acquired_at END,
            expires_at = excluded.expires_at
        WHERE l.holder = excluded.holder OR l.expires_at < v_now
    RETURNING holder INTO v_holder;
    RETURN v_holder IS NOT DISTINCT FROM p_holder;
END;
$$;
CREATE FUNCTION agentos.adopt_agents(p_session uuid, p_role text, p_limit integer DEFAULT 64) RETURNS SETOF text
    LANGUAGE plpgsql
    AS $$
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
CREATE FUNCTION agentos.agents_after_delete() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM agentos.record_activity('agent.removed', NULL, 'agent ' || OLD.name || ' removed',
        jsonb_build_object('agent', OLD.name, 'role', OLD.role));
    PERFORM agentos.notify_once('agentos_agent',
        jsonb_build_object('name', OLD.name, 'status', 'removed'));
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.agents_after_write() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM agentos.notify_once('agentos_agent',
        jsonb_build_object('name', NEW.name, 'status', NEW.status));
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.agents_name_free() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM agentos.people WHERE name = NEW.name) THEN
        RAISE EXCEPTION 'the name % belongs to a person; an agent needs another', NEW.name
            USING ERRCODE = '23505';
    END IF;
    RETURN NEW;
END;
$$;
CREATE FUNCTION agentos.check_amount(p_what text, p_amount numeric) RETURNS numeric
    LANGUAGE plpgsql IMMUTABLE
    AS $$
BEGIN
    IF p_amount IS NULL OR p_amount = 'NaN' OR p_amount < 0
       OR p_amount IN ('Infinity'::numeric, '-Infinity'::numeric) THEN
        RAISE EXCEPTION '% must be a finite amount of at least 0 USD, not %', p_what,
            coalesce(p_amount::text, 'NULL')
            USING ERRCODE = 'P0001';
    END IF;
    RETURN p_amount;
END;
$$;
CREATE TABLE agentos.tasks (
    id bigint NOT NULL,
    title text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    acceptance text DEFAULT ''::text NOT NULL,
    status agentos.task_status DEFAULT 'inbox'::agentos.task_status NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    role text DEFAULT 'worker'::text NOT NULL,
    review_role text DEFAULT 'reviewer'::text NOT NULL,
    assignee text,
    created_by text DEFAULT CURRENT_USER NOT NULL,
    parent_id bigint,
    branch text,
    result text,
    error text,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 3 NOT NULL,
    rejections integer DEFAULT 0 NOT NULL,
    available_at timestamp with time zone DEFAULT now() NOT NULL,
    lease_session uuid,
    lease_agent text,
    lease_token uuid,
    lease_expires_at timestamp with time zone,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    budget_usd numeric(14,6),
    approval text,
    CONSTRAINT tasks_approval_check CHECK ((approval = ANY (ARRAY['auto'::text, 'human'::text]))),
    CONSTRAINT tasks_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT tasks_budget_is_a_number CHECK ((budget_usd <> 'NaN'::numeric)),
    CONSTRAINT tasks_budget_usd_check CHECK ((budget_usd >= (0)::numeric)),
    CONSTRAINT tasks_check CHECK (((lease_token IS NULL) = (lease_expires_at IS NULL))),
    CONSTRAINT tasks_check1 CHECK (((status <> 'assigned'::agentos.task_status) OR (assignee IS NOT NULL))),
    CONSTRAINT tasks_check2 CHECK ((parent_id IS DISTINCT FROM id)),
    CONSTRAINT tasks_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT tasks_priority_check CHECK (((priority >= '-1000'::integer) AND (priority <= 1000))),
    CONSTRAINT tasks_rejections_check CHECK ((rejections >= 0)),
    CONSTRAINT tasks_review_role_check CHECK ((review_role ~ '^[a-z][a-z0-9_-]{0,31}$'::text)),
    CONSTRAINT tasks_role_check CHECK ((role ~ '^[a-z][a-z0-9_-]{0,31}$'::text)),
    CONSTRAINT tasks_text_is_plain CHECK (((description !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'::text) AND (acceptance !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'::text))),
    CONSTRAINT tasks_title_check CHECK (((length(btrim(title)) >= 1) AND (length(btrim(title)) <= 500))),
    CONSTRAINT tasks_title_is_one_plain_line CHECK ((title !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]'::text))
);
CREATE FUNCTION agentos.claim_jobs(p_jobs bigint[], p_tasks bigint[], p_agents text[], p_role text, p_session uuid, p_lease interval, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF agentos.tasks
    LANGUAGE plpgsql
    AS $$
DECLARE
    i integer;
    t agentos.tasks;
BEGIN
    -- A claim lost in a server crash is harmless: job and lease vanish together, the task
    -- is ready again and the holder's next write fails as stale. So the claim need not
    -- wait for its WAL flush; that wait was most of the wake-up latency.
    PERFORM set_config('synchronous_commit', 'off', true);
    IF NOT EXISTS (SELECT 1 FROM agentos.agent_sessions
                   WHERE id = p_session AND status = 'running') THEN
        -- queued again at once, rather than stuck as picked until pgqueuer's timeout
        UPDATE agentos.pgqueuer SET status = 'queued', queue_manager_id = NULL
        WHERE id = ANY(p_jobs) AND status = 'picked';
        RETURN;
    END IF;
    -- NO KEY UPDATE: the same lock claim_task's UPDATE takes, which does not block the
    -- KEY SHARE locks of foreign-key checks (tasks.assignee references agents.name).
    PERFORM 1 FROM agentos.agents WHERE name = ANY(p_agents) ORDER BY id FOR NO KEY UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_jobs, 1), 0) LOOP
        FOR t IN SELECT * FROM agentos.claim_task(p_tasks[i], p_agents[i], p_role, p_session,
                                                  p_lease, p_now) LOOP
            RETURN NEXT t;
        END LOOP;
    END LOOP;
    -- The jobs were hints: once the task is leased (or found not to be ready) they are done.
    WITH gone AS (
        DELETE FROM agentos.pgqueuer WHERE id = ANY(p_jobs)
        RETURNING id, priority, entrypoint)
    INSERT INTO agentos.pgqueuer_log (job_id, status, priority, entrypoint)
    SELECT id, 'successful', priority, entrypoint FROM gone;
END;
$$;
CREATE FUNCTION agentos.claim_target(t agentos.tasks, p_agent text, p_role text, p_now timestamp with time zone) RETURNS agentos.task_status
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
        WHEN t.lease_token IS NOT NULL OR t.available_at > p_now THEN NULL
        WHEN t.status IN ('inbox', 'assigned') THEN
            CASE WHEN ((t.assignee = p_agent) OR (t.assignee IS NULL AND t.role = p_role))
                      AND agentos.dependencies_done(t.id)
                 THEN 'in_progress'::agentos.task_status END
        WHEN t.status = 'review' AND t.review_role = p_role THEN 'review'::agentos.task_status
    END
$$;
CREATE FUNCTION agentos.claim_task(p_task bigint, p_agent text, p_role text, p_session uuid, p_lease interval, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF agentos.tasks
    LANGUAGE plpgsql
    AS $$
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
CREATE FUNCTION agentos.claim_work(p_role text, p_agents text[], p_session uuid, p_lease interval, p_stale interval, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(claim_agent text, claim_job bigint, claim_entrypoint text, claim_kind text, claim_payload jsonb, task agentos.tasks)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $_$
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
$_$;
CREATE FUNCTION agentos.claim_work_v2(p_role text, p_agents text[], p_session uuid, p_lease interval, p_stale interval, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS TABLE(claim_agent text, claim_job bigint, claim_entrypoint text, claim_kind text, claim_payload jsonb, task agentos.tasks)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $_$
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
$_$;
CREATE FUNCTION agentos.current_actor() RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(nullif(current_setting('agentos.actor', true), ''), current_user::text)
$$;
CREATE FUNCTION agentos.dependencies_done(p_task bigint) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT NOT EXISTS (
        SELECT 1 FROM agentos.task_dependencies d
        JOIN agentos.tasks t ON t.id = d.depends_on_id
        WHERE d.task_id = p_task AND t.status <> 'done')
$$;
CREATE FUNCTION agentos.enqueue_activation(p_entrypoint text, p_kind text, p_payload jsonb DEFAULT '{}'::jsonb, p_priority integer DEFAULT 0, p_dedupe_key text DEFAULT NULL::text, p_delay interval DEFAULT '00:00:00'::interval) RETURNS bigint
    LANGUAGE plpgsql
    AS $_$
DECLARE
    v_job bigint;
BEGIN
    IF p_entrypoint !~ '^(role|agent):[a-z0-9][a-z0-9_.-]*$' THEN
        RAISE EXCEPTION 'bad entrypoint %: expected role:NAME or agent:NAME', p_entrypoint
            USING ERRCODE = '22023';
    END IF;
    INSERT INTO agentos.pgqueuer (priority, entrypoint, payload, status, dedupe_key, execute_after)
    VALUES (p_priority, p_entrypoint,
            convert_to((coalesce(p_payload, '{}') || jsonb_build_object('kind', p_kind))::text,
                       'UTF8'),
            'queued', p_dedupe_key, now() + p_delay)
    ON CONFLICT (dedupe_key) WHERE status IN ('queued', 'picked') AND dedupe_key IS NOT NULL
    DO NOTHING
    RETURNING id INTO v_job;
    IF v_job IS NOT NULL THEN
        PERFORM agentos.notify_work(p_entrypoint);
    END IF;
    RETURN v_job;
END;
$_$;
CREATE FUNCTION agentos.enqueue_task_work(p_task bigint) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    t     agentos.tasks;
    v_ep  text;
    v_job bigint;
BEGIN
    SELECT * INTO t FROM agentos.tasks WHERE id = p_task;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    v_ep := agentos.task_entrypoint(t);
    IF v_ep IS NULL OR t.lease_token IS NOT NULL OR NOT agentos.dependencies_done(t.id) THEN
        RETURN NULL;
    END IF;
    -- A queued hint for an older state points at the wrong entrypoint: replace it.
    DELETE FROM agentos.pgqueuer
    WHERE dedupe_key = 'task:' || t.id AND status = 'queued' AND entrypoint <> v_ep;
    INSERT INTO agentos.pgqueuer (priority, entrypoint, payload, status, dedupe_key, execute_after)
    VALUES (t.priority, v_ep,
            convert_to(jsonb_build_object('kind', 'task', 'task_id', t.id)::text, 'UTF8'),
            'queued', 'task:' || t.id, greatest(t.available_at, now()))
    ON CONFLICT (dedupe_key) WHERE status IN ('queued', 'picked') AND dedupe_key IS NOT NULL
    DO NOTHING
    RETURNING id INTO v_job;
    IF v_job IS NOT NULL THEN
        PERFORM agentos.notify_work(v_ep);
    END IF;
    RETURN v_job;
END;
$$;
CREATE FUNCTION agentos.eval_precondition(p_expr text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'agentos', 'pg_temp'
    AS $$
DECLARE
    v_cur refcursor;
    v_ok boolean;
BEGIN
    IF p_expr IS NULL THEN
        RETURN true;
    END IF;
    IF current_setting('transaction_read_only') <> 'on' THEN
        RAISE EXCEPTION 'a schedule precondition runs only in a read-only transaction'
            USING ERRCODE = '25006';
    END IF;
    -- the newline ends a trailing `--` comment before the closing parenthesis
    OPEN v_cur NO SCROLL FOR EXECUTE 'SELECT (' || p_expr || E'\n) IS TRUE';
    FETCH v_cur INTO v_ok;
    CLOSE v_cur;
    RETURN coalesce(v_ok, false);
END;
$$;
CREATE FUNCTION agentos.expire_budget_reservations(p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS integer
    LANGUAGE sql
    AS $$
    SELECT agentos.release_reservations(ARRAY(
        SELECT r.id FROM agentos.budget_reservations r
        WHERE r.expires_at < coalesce(p_now, now())
           OR (r.lease_token IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM agentos.tasks t
                   WHERE t.id = r.task_id AND t.lease_token = r.lease_token))
           OR (r.session_id IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM agentos.agent_sessions s
                   WHERE s.id = r.session_id AND s.status = 'running'))
        ORDER BY r.id LIMIT 1000))
$$;
CREATE FUNCTION agentos.fail_attempt(p_task bigint, p_token uuid, p_reason text) RETURNS TABLE(task_id bigint, outcome text)
    LANGUAGE plpgsql
    AS $$
DECLARE
    t     agentos.tasks;
    v_msg text;
BEGIN
    SELECT * INTO t FROM agentos.tasks WHERE id = p_task AND lease_token = p_token FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task %: stale lease (the task was taken over or released)', p_task
            USING ERRCODE = '40001', HINT = 'agentos:stale_lease';
    END IF;
    v_msg := format('%s (attempt %s of %s)', coalesce(p_reason, 'failed'), t.attempts,
                    t.max_attempts);
    PERFORM set_config('agentos.actor', coalesce(t.lease_agent, ''), true);
    task_id := t.id;
    IF t.attempts >= t.max_attempts THEN
        PERFORM set_config('agentos.reason', v_msg || '; giving up', true);
        UPDATE agentos.tasks SET status = 'failed', error = v_msg || '; giving up'
        WHERE id = t.id;
        outcome := 'failed';
    ELSE
        PERFORM set_config('agentos.reason', v_msg || '; retrying', true);
        IF t.status = 'in_progress' THEN
            UPDATE agentos.tasks
            SET status = (CASE WHEN assignee IS NOT NULL THEN 'assigned' ELSE 'inbox' END)::agentos.task_status,
                error = v_msg,
                available_at = now() + least(interval '1 second' * power(2, t.attempts - 1),
                                             interval '5 minutes')
            WHERE id = t.id;
        ELSE
            UPDATE agentos.tasks SET lease_session = NULL, lease_agent = NULL,
                   lease_token = NULL, lease_expires_at = NULL, error = v_msg,
                   available_at = now() + least(interval '1 second' * power(2, t.attempts - 1),
                                                interval '5 minutes')
            WHERE id = t.id;
            PERFORM agentos.record_activity('task.retry_later', t.id, v_msg || '; retrying');
        END IF;
        outcome := 'retried';
    END IF;
    PERFORM set_config('agentos.actor', '', true);
    PERFORM set_config('agentos.reason', '', true);
    RETURN NEXT;
END;
$$;
CREATE FUNCTION agentos.finish_tasks(p_ids bigint[], p_tokens uuid[], p_to agentos.task_status[], p_actors text[], p_results text[]) RETURNS TABLE(finished_id bigint, ok boolean, task agentos.tasks)
    LANGUAGE plpgsql
    AS $$
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
CREATE FUNCTION agentos.fn_pgqueuer_changed() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    to_emit BOOLEAN := false;  -- Flag to decide whether to emit a notification
BEGIN
    -- Check operation type and set the emit flag accordingly
    IF TG_OP = 'UPDATE' AND OLD IS DISTINCT FROM NEW THEN
        to_emit := true;
    ELSIF TG_OP = 'DELETE' THEN
        to_emit := true;
    ELSIF TG_OP = 'INSERT' THEN
        to_emit := true;
    ELSIF TG_OP = 'TRUNCATE' THEN
        to_emit := true;
    END IF;
    -- Perform notification if the emit flag is set
    IF to_emit THEN
        PERFORM pg_notify(
            'ch_pgqueuer',
            json_build_object(
                'channel', 'ch_pgqueuer',
                'operation', lower(TG_OP),
                'sent_at', NOW(),
                'table', TG_TABLE_NAME,
                'type', 'table_changed_event'
            )::text
        );
    END IF;
    -- Return appropriate value based on the operation
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        RETURN NEW;
    ELSIF TG_OP = 'DELETE' THEN
        RETURN OLD;
    ELSE
        RETURN NULL; -- For TRUNCATE and other non-row-specific contexts
    END IF;
END;
$$;
CREATE TABLE agentos.messages (
    id bigint NOT NULL,
    task_id bigint,
    from_agent text,
    to_agent text,
    kind text DEFAULT 'comment'::text NOT NULL,
    body text NOT NULL,
    read_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    reply_to bigint,
    thread_id bigint NOT NULL,
    channel_id bigint,
    mentions text[] DEFAULT '{}'::text[] NOT NULL,
    woken text[] DEFAULT '{}'::text[] NOT NULL,
    CONSTRAINT messages_body_check CHECK ((length(btrim(body)) > 0)),
    CONSTRAINT messages_body_is_plain CHECK ((body !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'::text)),
    CONSTRAINT messages_kind_check CHECK ((kind = ANY (ARRAY['comment'::text, 'status'::text, 'review'::text, 'question'::text, 'answer'::text, 'broadcast'::text]))),
    CONSTRAINT messages_task_or_channel CHECK (((task_id IS NULL) OR (channel_id IS NULL)))
);
CREATE FUNCTION agentos.message_for(m agentos.messages, p_reader text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT m.from_agent IS DISTINCT FROM p_reader AND (
        m.to_agent = p_reader
        OR (m.to_agent IS NULL AND m.task_id IS NULL AND m.channel_id IS NULL)
        OR p_reader = ANY (m.mentions)
        OR EXISTS (SELECT 1 FROM agentos.channel_members cm
                   WHERE cm.channel_id = m.channel_id AND cm.member = p_reader))
$$;
CREATE FUNCTION agentos.message_mentions(p_body text) RETURNS text[]
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(array_agg(DISTINCT n ORDER BY n), '{}')
    FROM (SELECT lower(m[1]) AS n
          FROM regexp_matches(p_body, '(?:^|[^A-Za-z0-9_.@-])@([A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9_-])?)', 'g') AS m) s
    WHERE EXISTS (SELECT 1 FROM agentos.agents a WHERE a.name = s.n)
       OR EXISTS (SELECT 1 FROM agentos.people p WHERE p.name = s.n)
$$;
CREATE FUNCTION agentos.message_read_by(m agentos.messages, p_reader text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT m.from_agent IS NOT DISTINCT FROM p_reader
        OR EXISTS (SELECT 1 FROM agentos.message_reads r
                   WHERE r.message_id = m.id AND r.reader = p_reader)
$$;
CREATE FUNCTION agentos.message_reads_after_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE agentos.messages SET read_at = NEW.read_at
    WHERE id = NEW.message_id AND to_agent = NEW.reader AND read_at IS NULL;
    PERFORM agentos.notify_once('agentos_message', jsonb_build_object('read_by', NEW.reader));
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.message_with(m agentos.messages, p_reader text, p_other text) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT (m.from_agent = p_reader AND (m.to_agent = p_other OR p_other = ANY (m.woken)))
        OR (m.from_agent = p_other AND m.to_agent = p_reader)
        OR EXISTS (SELECT 1 FROM agentos.messages a
                   WHERE a.reply_to = m.id AND a.from_agent = p_other AND a.to_agent = p_reader)
$$;
CREATE FUNCTION agentos.messages_after_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_line text := regexp_replace(btrim(NEW.body), '\s+', ' ', 'g');
    w      text;
BEGIN
    PERFORM agentos.record_activity('message.sent', NEW.task_id,
        left(v_line, 200) || CASE WHEN length(v_line) > 200 THEN '…' ELSE '' END,
        jsonb_build_object('message', NEW.id, 'to', NEW.to_agent, 'from', NEW.from_agent,
                           'kind', NEW.kind, 'thread', NEW.thread_id, 'reply_to', NEW.reply_to,
                           'channel', NEW.channel_id, 'woken', to_jsonb(NEW.woken),
                           'length', length(NEW.body), 'cut', length(v_line) > 200),
        NEW.from_agent);
    FOREACH w IN ARRAY NEW.woken LOOP
        PERFORM agentos.enqueue_activation('agent:' || w, 'message',
            jsonb_build_object('message', NEW.id), 0, 'message:' || w);
        PERFORM agentos.notify_work('agent:' || w);
    END LOOP;
    PERFORM agentos.notify_once('agentos_message',
        jsonb_build_object('id', NEW.id, 'to', NEW.to_agent, 'task', NEW.task_id,
                           'channel', NEW.channel_id, 'thread', NEW.thread_id));
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.messages_before_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
DECLARE
    p agentos.messages;
BEGIN
    NEW.from_agent := coalesce(NEW.from_agent, agentos.current_actor());
    IF NEW.reply_to IS NOT NULL THEN
        SELECT * INTO p FROM agentos.messages WHERE id = NEW.reply_to;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'no message % to reply to', NEW.reply_to USING ERRCODE = '23503';
        END IF;
        NEW.thread_id := p.thread_id;
        -- a reply stays where the conversation is: the same task, or the same channel
        IF NEW.task_id IS NULL AND NEW.channel_id IS NULL THEN
            NEW.task_id := p.task_id;
            NEW.channel_id := p.channel_id;
        END IF;
    ELSE
        NEW.thread_id := NEW.id;
    END IF;
    NEW.mentions := agentos.message_mentions(NEW.body);
    IF coalesce(current_setting('agentos.wake', true), '') = 'off'
       OR NEW.kind IN ('answer', 'review', 'status', 'broadcast') THEN
        NEW.woken := '{}';
        RETURN NEW;
    END IF;
    SELECT coalesce(array_agg(DISTINCT w ORDER BY w), '{}') INTO NEW.woken
    FROM (
        SELECT NEW.to_agent AS w
        UNION
        SELECT t.lease_agent FROM agentos.tasks t
        WHERE NEW.to_agent IS NULL AND t.id = NEW.task_id
          AND (NEW.kind = 'question'
               OR NOT EXISTS (SELECT 1 FROM agentos.agents a WHERE a.name = NEW.from_agent))
        UNION
        SELECT m FROM unnest(NEW.mentions) AS m WHERE NEW.task_id IS NOT NULL
        UNION
        SELECT m FROM unnest(NEW.mentions) AS m
        WHERE NEW.channel_id IS NOT NULL
          AND EXISTS (SELECT 1 FROM agentos.channel_members cm
                      WHERE cm.channel_id = NEW.channel_id AND cm.member = m)
    ) s
    WHERE w IS NOT NULL AND w IS DISTINCT FROM NEW.from_agent
      AND EXISTS (SELECT 1 FROM agentos.agents a WHERE a.name = s.w);
    RETURN NEW;
END;
$$;
CREATE FUNCTION agentos.notify_once(p_channel text, p_payload jsonb) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_key text := 'agentos.notified_' || p_channel;
    v_tx  text := txid_current()::text;
BEGIN
    IF current_setting(v_key, true) IS DISTINCT FROM v_tx THEN
        PERFORM set_config(v_key, v_tx, true);
        PERFORM pg_notify(p_channel, left(p_payload::text, 7900));
    END IF;
END;
$$;
CREATE FUNCTION agentos.notify_work(p_entrypoint text) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    -- a setting name must be identifier-like: key it by a hash of the entrypoint
    v_key text := 'agentos.notified_w' || md5(p_entrypoint);
    v_tx  text := txid_current()::text;
BEGIN
    IF current_setting(v_key, true) IS DISTINCT FROM v_tx THEN
        PERFORM set_config(v_key, v_tx, true);
        PERFORM pg_notify('agentos.' || p_entrypoint,
                          jsonb_build_object('ep', p_entrypoint)::text);
    END IF;
END;
$$;
CREATE FUNCTION agentos.people_name_free() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM agentos.agents WHERE name = NEW.name) THEN
        RAISE EXCEPTION 'the name % belongs to an agent; a person needs another (AGENTOS_USER)',
            NEW.name USING ERRCODE = '23505';
    END IF;
    RETURN NEW;
END;
$$;
CREATE FUNCTION agentos.queue_depth(p_role text) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
    SELECT count(*) FROM agentos.tasks
    WHERE role = p_role AND status IN ('inbox', 'assigned') AND available_at <= now()
      AND agentos.dependencies_done(id)
$$;
CREATE FUNCTION agentos.record_activity(p_kind text, p_task bigint, p_message text, p_data jsonb DEFAULT '{}'::jsonb, p_actor text DEFAULT NULL::text) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO agentos.activities (kind, actor, task_id, message, data)
    VALUES (p_kind, coalesce(p_actor, agentos.current_actor()), p_task, coalesce(p_message, ''),
            coalesce(p_data, '{}'))
    RETURNING id INTO v_id;
    PERFORM agentos.notify_once('agentos_activity',
        jsonb_build_object('id', v_id, 'kind', p_kind, 'task', p_task));
    RETURN v_id;
END;
$$;
CREATE FUNCTION agentos.release_agent(p_session uuid, p_name text) RETURNS void
    LANGUAGE sql
    AS $$
    UPDATE agentos.agents SET session_id = NULL, status = 'offline', current_task_id = NULL,
           updated_at = now()
    WHERE name = p_name AND session_id = p_session;
    UPDATE agentos.agent_sessions SET agents = array_remove(agents, p_name)
    WHERE id = p_session;
$$;
CREATE FUNCTION agentos.release_leadership(p_duty text, p_holder uuid) RETURNS void
    LANGUAGE sql
    AS $$
    DELETE FROM agentos.leader_leases WHERE duty = p_duty AND holder = p_holder
$$;
CREATE FUNCTION agentos.release_reservations(p_ids bigint[]) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    n integer;
BEGIN
    IF coalesce(array_length(p_ids, 1), 0) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM agentos.budgets
    WHERE scope IN (SELECT unnest(scopes) FROM agentos.budget_reservations WHERE id = ANY(p_ids))
    ORDER BY scope FOR UPDATE;
    WITH gone AS (
        DELETE FROM agentos.budget_reservations WHERE id = ANY(p_ids)
        RETURNING scopes, estimate),
    per_scope AS (
        SELECT s.scope, sum(g.estimate) AS amount, count(*) AS n
        FROM gone g, unnest(g.scopes) AS s(scope) GROUP BY s.scope),
    upd AS (
        UPDATE agentos.budgets b
        SET reserved_usd = greatest(b.reserved_usd - p.amount, 0), updated_at = now()
        FROM per_scope p WHERE b.scope = p.scope RETURNING 1)
    SELECT count(*) INTO n FROM gone;
    RETURN n;
END;
$$;
CREATE FUNCTION agentos.release_task(p_task bigint, p_token uuid, p_reason text) RETURNS agentos.tasks
    LANGUAGE plpgsql
    AS $$
DECLARE
    t agentos.tasks;
BEGIN
    SELECT * INTO t FROM agentos.tasks WHERE id = p_task AND lease_token = p_token FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task %: stale lease (the task was taken over or released)', p_task
            USING ERRCODE = '40001', HINT = 'agentos:stale_lease';
    END IF;
    PERFORM set_config('agentos.actor', coalesce(t.lease_agent, ''), true);
    PERFORM set_config('agentos.reason', coalesce(p_reason, 'released'), true);
    IF t.status = 'in_progress' THEN
        UPDATE agentos.tasks
        SET status = (CASE WHEN assignee IS NOT NULL THEN 'assigned' ELSE 'inbox' END)::agentos.task_status,
            attempts = greatest(attempts - 1, 0)
        WHERE id = p_task RETURNING * INTO t;
    ELSE
        UPDATE agentos.tasks SET lease_session = NULL, lease_agent = NULL, lease_token = NULL,
               lease_expires_at = NULL, attempts = greatest(attempts - 1, 0)
        WHERE id = p_task RETURNING * INTO t;
        PERFORM agentos.record_activity('task.released', p_task, coalesce(p_reason, 'released'));
    END IF;
    PERFORM set_config('agentos.actor', '', true);
    PERFORM set_config('agentos.reason', '', true);
    RETURN t;
END;
$$;
CREATE FUNCTION agentos.renew_leases(p_session uuid, p_tokens uuid[], p_lease interval, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS SETOF uuid
    LANGUAGE sql
    AS $$
    UPDATE agentos.tasks
    SET lease_expires_at = coalesce(p_now, now()) + p_lease
    WHERE lease_token = ANY(p_tokens) AND lease_session = p_session
      AND status IN ('in_progress', 'review')
      AND EXISTS (SELECT 1 FROM agentos.agent_sessions s
                  WHERE s.id = p_session AND s.status = 'running')
    RETURNING lease_token
$$;
CREATE FUNCTION agentos.requeue_orphans(p_older_than interval DEFAULT '00:00:05'::interval) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_id bigint;
    n    integer := 0;
BEGIN
    FOR v_id IN
        SELECT t.id FROM agentos.tasks t
        WHERE ((t.status IN ('inbox', 'assigned')) OR (t.status = 'review' AND t.lease_token IS NULL))
          AND t.updated_at < now() - p_older_than
          AND NOT EXISTS (SELECT 1 FROM agentos.pgqueuer j
                          WHERE j.dedupe_key = 'task:' || t.id AND j.status IN ('queued', 'picked'))
          AND agentos.dependencies_done(t.id)
        LIMIT 1000
    LOOP
        IF agentos.enqueue_task_work(v_id) IS NOT NULL THEN
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END;
$$;
CREATE FUNCTION agentos.rescue_expired_leases(p_now timestamp with time zone DEFAULT NULL::timestamp with time zone, p_limit integer DEFAULT 100) RETURNS TABLE(task_id bigint, outcome text)
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_now timestamptz := coalesce(p_now, now());
    t     agentos.tasks;
    v_msg text;
BEGIN
    FOR t IN SELECT * FROM agentos.tasks
             WHERE lease_expires_at < v_now AND status IN ('in_progress', 'review')
             ORDER BY lease_expires_at LIMIT p_limit
             FOR UPDATE SKIP LOCKED
    LOOP
        v_msg := format('lease of %s expired (attempt %s of %s)', t.lease_agent, t.attempts,
                        t.max_attempts);
        PERFORM set_config('agentos.actor', 'kernel', true);
        IF t.attempts >= t.max_attempts THEN
            PERFORM set_config('agentos.reason', v_msg || '; giving up', true);
            UPDATE agentos.tasks SET status = 'failed', error = v_msg || '; giving up'
            WHERE id = t.id;
            task_id := t.id; outcome := 'failed';
        ELSE
            PERFORM set_config('agentos.reason', v_msg || '; retrying', true);
            -- backoff: 1 s, 2 s, 4 s ... capped at 5 minutes
            IF t.status = 'in_progress' THEN
                UPDATE agentos.tasks
                SET status = (CASE WHEN assignee IS NOT NULL THEN 'assigned' ELSE 'inbox' END)::agentos.task_status,
                    available_at = v_now + least(interval '1 second' * power(2, t.attempts - 1),
                                                    interval '5 minutes')
                WHERE id = t.id;
            ELSE
                UPDATE agentos.tasks SET lease_session = NULL, lease_agent = NULL,
                       lease_token = NULL, lease_expires_at = NULL,
                       available_at = v_now + least(interval '1 second' * power(2, t.attempts - 1),
                                                    interval '5 minutes')
                WHERE id = t.id;
                PERFORM agentos.record_activity('task.rescued', t.id, v_msg || '; retrying');
            END IF;
            task_id := t.id; outcome := 'retried';
        END IF;
        PERFORM set_config('agentos.actor', '', true);
        PERFORM set_config('agentos.reason', '', true);
        RETURN NEXT;
    END LOOP;
END;
$$;
CREATE FUNCTION agentos.reserve_budget(p_scopes text[], p_limits numeric[], p_estimate numeric) RETURNS text
    LANGUAGE plpgsql
    AS $$
DECLARE
    i integer;
    v_ok boolean;
BEGIN
    PERFORM agentos.check_amount('the estimate', p_estimate);
    IF coalesce(array_length(p_limits, 1), 0) < coalesce(array_length(p_scopes, 1), 0) THEN
        RAISE EXCEPTION 'reserve_budget needs one limit per scope' USING ERRCODE = 'P0001';
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        PERFORM agentos.check_amount('the limit of ' || p_scopes[i], p_limits[i]);
        INSERT INTO agentos.budgets (scope, limit_usd) VALUES (p_scopes[i], p_limits[i])
        ON CONFLICT (scope) DO NOTHING;
    END LOOP;
    -- lock in a fixed order so two reservers never deadlock
    PERFORM 1 FROM agentos.budgets WHERE scope = ANY(p_scopes) ORDER BY scope FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        SELECT spent_usd + reserved_usd + p_estimate <= limit_usd INTO v_ok
        FROM agentos.budgets WHERE scope = p_scopes[i];
        IF NOT v_ok THEN
            RETURN p_scopes[i];
        END IF;
    END LOOP;
    UPDATE agentos.budgets SET reserved_usd = reserved_usd + p_estimate, updated_at = now()
    WHERE scope = ANY(p_scopes);
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.reserve_budget_v2(p_scopes text[], p_limits numeric[], p_estimate numeric, p_ttl interval DEFAULT '01:00:00'::interval) RETURNS TABLE(breach text, reservation bigint)
    LANGUAGE plpgsql
    AS $_$
DECLARE
    i       integer;
    v_ok    boolean;
    v_task  bigint;
    v_token uuid;
    v_sess  uuid;
    v_m     text[];
BEGIN
    IF p_estimate IS NULL OR NOT (p_estimate BETWEEN 0 AND 1e8) THEN
        RAISE EXCEPTION 'bad budget estimate %: expected a finite amount >= 0', p_estimate;
    END IF;
    IF coalesce(array_length(p_scopes, 1), 0) <> coalesce(array_length(p_limits, 1), 0) THEN
        RAISE EXCEPTION 'every budget scope needs a limit';
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        IF p_limits[i] IS NULL OR NOT (p_limits[i] BETWEEN 0 AND 1e8) THEN
            RAISE EXCEPTION 'bad budget limit % for %: expected a finite amount >= 0',
                p_limits[i], p_scopes[i];
        END IF;
        INSERT INTO agentos.budgets (scope, limit_usd) VALUES (p_scopes[i], p_limits[i])
        ON CONFLICT (scope) DO NOTHING;
    END LOOP;
    -- lock in a fixed order so two reservers never deadlock
    PERFORM 1 FROM agentos.budgets WHERE scope = ANY(p_scopes) ORDER BY scope FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        SELECT limit_usd <> 'NaN' AND spent_usd + reserved_usd + p_estimate <= limit_usd
        INTO v_ok FROM agentos.budgets WHERE scope = p_scopes[i];
        IF NOT v_ok THEN
            breach := p_scopes[i];
            reservation := NULL;
            RETURN NEXT;
            RETURN;
        END IF;
        v_m := regexp_match(p_scopes[i], '^task:([0-9]{1,18})$');
        IF v_m IS NOT NULL AND v_task IS NULL THEN
            v_task := v_m[1]::bigint;
            SELECT lease_token INTO v_token FROM agentos.tasks WHERE id = v_task;
            IF NOT FOUND THEN
                v_task := NULL;
            END IF;
        END IF;
        v_m := regexp_match(p_scopes[i], '^agent:([a-z0-9][a-z0-9_.-]{0,62}):');
        IF v_m IS NOT NULL AND v_sess IS NULL THEN
            SELECT session_id INTO v_sess FROM agentos.agents WHERE name = v_m[1];
        END IF;
    END LOOP;
    UPDATE agentos.budgets SET reserved_usd = reserved_usd + p_estimate, updated_at = now()
    WHERE scope = ANY(p_scopes);
    INSERT INTO agentos.budget_reservations (scopes, estimate, task_id, lease_token, session_id,
                                             expires_at)
    VALUES (p_scopes, p_estimate, v_task, v_token, v_sess, now() + p_ttl)
    RETURNING id INTO reservation;
    breach := NULL;
    RETURN NEXT;
END;
$_$;
CREATE FUNCTION agentos.session_alive(p_status text, p_heartbeat timestamp with time zone, p_lease_seconds real, p_now timestamp with time zone DEFAULT NULL::timestamp with time zone) RETURNS boolean
    LANGUAGE sql STABLE
    AS $$
    SELECT coalesce(p_status = 'running'
                    AND p_heartbeat > coalesce(p_now, now()) - make_interval(secs => 3 * p_lease_seconds),
                    false)
$$;
CREATE FUNCTION agentos.settle_budget(p_scopes text[], p_estimate numeric, p_actual numeric) RETURNS void
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM agentos.check_amount('the estimate', p_estimate);
    PERFORM agentos.check_amount('the actual cost', p_actual);
    UPDATE agentos.budgets
    SET reserved_usd = greatest(reserved_usd - p_estimate, 0),
        spent_usd = spent_usd + p_actual, updated_at = now()
    WHERE scope = ANY(p_scopes);
END;
$$;
CREATE FUNCTION agentos.settle_reservation(p_id bigint, p_scopes text[], p_actual numeric) RETURNS void
    LANGUAGE plpgsql
    AS $$
DECLARE
    v_estimate numeric;
BEGIN
    IF p_actual IS NULL OR NOT (p_actual BETWEEN 0 AND 1e8) THEN
        RAISE EXCEPTION 'bad cost %: expected a finite amount >= 0', p_actual;
    END IF;
    PERFORM 1 FROM agentos.budgets WHERE scope = ANY(p_scopes) ORDER BY scope FOR UPDATE;
    DELETE FROM agentos.budget_reservations WHERE id = p_id RETURNING estimate INTO v_estimate;
    UPDATE agentos.budgets
    SET reserved_usd = greatest(reserved_usd - coalesce(v_estimate, 0), 0),
        spent_usd = spent_usd + p_actual, updated_at = now()
    WHERE scope = ANY(p_scopes);
END;
$$;
CREATE FUNCTION agentos.steps_after_insert() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    PERFORM agentos.notify_once('agentos_step',
        jsonb_build_object('task', NEW.task_id, 'stage', NEW.stage, 'seq', NEW.seq));
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.task_dependencies_check() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (
        WITH RECURSIVE up(id) AS (
            SELECT NEW.depends_on_id
            UNION
            SELECT d.depends_on_id FROM agentos.task_dependencies d JOIN up ON d.task_id = up.id)
        SELECT 1 FROM up WHERE id = NEW.task_id) THEN
        RAISE EXCEPTION 'task % cannot depend on % (cycle)', NEW.task_id, NEW.depends_on_id
            USING ERRCODE = '23514';
    END IF;
    RETURN NEW;
END;
$$;
CREATE FUNCTION agentos.task_dependencies_withdraw() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NOT agentos.dependencies_done(NEW.task_id) THEN
        DELETE FROM agentos.pgqueuer
        WHERE dedupe_key = 'task:' || NEW.task_id AND status = 'queued';
    END IF;
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.task_entrypoint(t agentos.tasks) RETURNS text
    LANGUAGE sql STABLE
    AS $$
    SELECT CASE
        WHEN t.status IN ('inbox', 'assigned') AND t.assignee IS NOT NULL THEN 'agent:' || t.assignee
        WHEN t.status IN ('inbox', 'assigned') THEN 'role:' || t.role
        WHEN t.status = 'review' AND t.lease_token IS NULL THEN 'role:' || t.review_role
        ELSE NULL
    END
$$;
CREATE FUNCTION agentos.tasks_after_write() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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
CREATE FUNCTION agentos.tasks_before_write() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('inbox', 'assigned') THEN
            RAISE EXCEPTION 'a new task starts in inbox or assigned, not %', NEW.status
                USING ERRCODE = '23514';
        END IF;
        IF NEW.status = 'inbox' AND NEW.assignee IS NOT NULL THEN
            NEW.status := 'assigned';
        END IF;
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT EXISTS (SELECT 1 FROM agentos.task_transitions
                       WHERE from_status = OLD.status AND to_status = NEW.status) THEN
            RAISE EXCEPTION 'task %: impossible transition % -> %', OLD.id, OLD.status, NEW.status
                USING ERRCODE = '23514';
        END IF;
        IF NEW.status = 'in_progress' AND NEW.started_at IS NULL THEN
            NEW.started_at := now();
        END IF;
        IF NEW.status IN ('done', 'failed', 'cancelled') THEN
            NEW.completed_at := now();
        ELSE
            NEW.completed_at := NULL;
        END IF;
        -- A status change ends the holder's stage and its lease, whoever wrote the row;
        -- only a claim (which sets a new token in the same UPDATE) carries a lease over.
        IF NEW.status NOT IN ('in_progress', 'review')
           OR NEW.lease_token IS NOT DISTINCT FROM OLD.lease_token THEN
            NEW.lease_session := NULL;
            NEW.lease_agent := NULL;
            NEW.lease_token := NULL;
            NEW.lease_expires_at := NULL;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;
CREATE FUNCTION agentos.tasks_free_agent() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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
CREATE FUNCTION agentos.tasks_inherit_approval() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF NEW.approval IS NULL AND NEW.parent_id IS NOT NULL THEN
        SELECT p.approval INTO NEW.approval FROM agentos.tasks p WHERE p.id = NEW.parent_id;
    END IF;
    RETURN NEW;
END;
$$;
CREATE FUNCTION agentos.tasks_release_reservations() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM agentos.budget_reservations WHERE lease_token = OLD.lease_token) THEN
        PERFORM agentos.release_reservations(ARRAY(
            SELECT id FROM agentos.budget_reservations WHERE lease_token = OLD.lease_token));
    END IF;
    RETURN NULL;
END;
$$;
CREATE FUNCTION agentos.transition_task(p_task bigint, p_to agentos.task_status, p_actor text DEFAULT NULL::text, p_reason text DEFAULT NULL::text, p_token uuid DEFAULT NULL::uuid, p_result text DEFAULT NULL::text, p_error text DEFAULT NULL::text, p_assignee text DEFAULT NULL::text) RETURNS agentos.tasks
    LANGUAGE plpgsql
    AS $$
DECLARE
    t agentos.tasks;
BEGIN
    SELECT * INTO t FROM agentos.tasks WHERE id = p_task FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'task % not found', p_task USING ERRCODE = 'P0002';
    END IF;
    IF p_token IS NOT NULL AND t.lease_token IS DISTINCT FROM p_token THEN
        RAISE EXCEPTION 'task %: stale lease (the task was taken over or released)', p_task
            USING ERRCODE = '40001', HINT = 'agentos:stale_lease';
    END IF;
    IF t.status = p_to THEN
        RAISE EXCEPTION 'task % is already %', p_task, p_to USING ERRCODE = '23514';
    END IF;
    PERFORM set_config('agentos.actor', coalesce(p_actor, ''), true);
    PERFORM set_config('agentos.reason', coalesce(p_reason, ''), true);
    UPDATE agentos.tasks SET
        status = p_to,
        result = coalesce(p_result, result),
        error = CASE WHEN p_to IN ('failed', 'blocked') THEN coalesce(p_error, p_reason, error)
                     WHEN p_to IN ('inbox', 'assigned', 'done') THEN coalesce(p_error, NULL)
                     ELSE error END,
        assignee = CASE WHEN p_to = 'assigned' THEN coalesce(p_assignee, assignee)
                        WHEN p_to = 'inbox' AND p_assignee IS NOT NULL THEN p_assignee
                        ELSE assignee END,
        -- a stage that ends (handed on, finished, sent back, or retried by a person)
        -- resets the claim count; only lease rescues spend attempts
        attempts = 0,
        available_at = CASE WHEN p_to IN ('inbox', 'assigned') THEN now() ELSE available_at END
    WHERE id = p_task
    RETURNING * INTO t;
    PERFORM set_config('agentos.actor', '', true);
    PERFORM set_config('agentos.reason', '', true);
    RETURN t;
END;
$$;
CREATE FUNCTION agentos.unread_for(p_reader text) RETURNS bigint
    LANGUAGE sql STABLE
    AS $$
    SELECT count(*) FROM agentos.messages m
    WHERE (m.to_agent = p_reader
           OR (m.to_agent IS NULL AND m.task_id IS NULL AND m.channel_id IS NULL)
           OR m.mentions @> ARRAY[p_reader]
           OR m.channel_id = ANY (ARRAY(SELECT cm.channel_id FROM agentos.channel_members cm
                                        WHERE cm.member = p_reader)))
      AND m.from_agent IS DISTINCT FROM p_reader
      AND NOT EXISTS (SELECT 1 FROM agentos.message_reads r
                      WHERE r.message_id = m.id AND r.reader = p_reader)
$$;
CREATE TABLE agentos.activities (
    id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    kind text NOT NULL,
    actor text,
    task_id bigint,
    message text DEFAULT ''::text NOT NULL,
    data jsonb DEFAULT '{}'::jsonb NOT NULL
);
ALTER TABLE agentos.activities ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.activities_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.agent_sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    role text NOT NULL,
    host text NOT NULL,
    pid integer NOT NULL,
    agents text[] DEFAULT '{}'::text[] NOT NULL,
    status text DEFAULT 'running'::text NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat_at timestamp with time zone DEFAULT now() NOT NULL,
    stopped_at timestamp with time zone,
    lease_seconds real DEFAULT 30 NOT NULL,
    CONSTRAINT agent_sessions_lease_seconds_check CHECK (((lease_seconds > (0)::double precision) AND (lease_seconds <= (3600)::double precision))),
    CONSTRAINT agent_sessions_status_check CHECK ((status = ANY (ARRAY['running'::text, 'stopped'::text, 'dead'::text])))
);
CREATE TABLE agentos.agents (
    id bigint NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    status text DEFAULT 'offline'::text NOT NULL,
    model text,
    capabilities text[] DEFAULT '{}'::text[] NOT NULL,
    session_id uuid,
    current_task_id bigint,
    last_heartbeat timestamp with time zone,
    memory text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    defined boolean DEFAULT false NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    model_override text,
    instructions text DEFAULT ''::text NOT NULL,
    skills text[] DEFAULT '{}'::text[] NOT NULL,
    created_by text,
    CONSTRAINT agents_description_check CHECK (((length(description) <= 2000) AND (description !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'::text))),
    CONSTRAINT agents_instructions_check CHECK (((length(instructions) <= 20000) AND (instructions !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'::text))),
    CONSTRAINT agents_model_override_check CHECK ((model_override ~ '^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$'::text)),
    CONSTRAINT agents_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'::text)),
    CONSTRAINT agents_role_check CHECK ((role ~ '^[a-z][a-z0-9_-]{0,31}$'::text)),
    CONSTRAINT agents_status_check CHECK ((status = ANY (ARRAY['idle'::text, 'working'::text, 'offline'::text])))
);
CREATE VIEW agentos.agent_status AS
 SELECT a.name,
    a.role,
    a.status,
    agentos.session_alive(s.status, s.heartbeat_at, s.lease_seconds) AS alive,
    a.current_task_id,
    t.title AS current_task,
    GREATEST(a.last_heartbeat, s.heartbeat_at) AS last_heartbeat,
    s.host,
    s.pid,
    a.session_id,
    a.model
   FROM ((agentos.agents a
     LEFT JOIN agentos.agent_sessions s ON ((s.id = a.session_id)))
     LEFT JOIN agentos.tasks t ON ((t.id = a.current_task_id)))
  ORDER BY a.role, a.name;
ALTER TABLE agentos.agents ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.agents_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE VIEW agentos.awaiting_people AS
 SELECT t.id,
    t.title,
    'merge'::text AS waits_for,
    ((t.metadata -> 'approval'::text) ->> 'reason'::text) AS reason,
    ((t.metadata -> 'approval'::text) ->> 'reviewer'::text) AS reviewer,
    ((t.metadata -> 'approval'::text) ->> 'comment'::text) AS comment,
    (((t.metadata -> 'approval'::text) ->> 'files'::text))::integer AS files,
    (((t.metadata -> 'approval'::text) ->> 'added'::text))::integer AS added,
    (((t.metadata -> 'approval'::text) ->> 'deleted'::text))::integer AS deleted,
    t.updated_at AS since
   FROM agentos.tasks t
  WHERE (t.status = 'approval'::agentos.task_status)
UNION ALL
 SELECT t.id,
    t.title,
    'budget'::text AS waits_for,
    t.error AS reason,
    NULL::text AS reviewer,
    NULL::text AS comment,
    NULL::integer AS files,
    NULL::integer AS added,
    NULL::integer AS deleted,
    t.updated_at AS since
   FROM agentos.tasks t
  WHERE ((t.status = 'blocked'::agentos.task_status) AND (t.error ~~ 'budget exhausted: task:%'::text))
  ORDER BY 10, 1;
CREATE TABLE agentos.task_dependencies (
    task_id bigint NOT NULL,
    depends_on_id bigint NOT NULL,
    CONSTRAINT task_dependencies_check CHECK ((task_id <> depends_on_id))
);
CREATE VIEW agentos.board AS
 SELECT id,
    status,
    priority,
    role,
    COALESCE(lease_agent, assignee) AS assignee,
    title,
    attempts,
    max_attempts,
    parent_id,
    ( SELECT array_agg(d.depends_on_id ORDER BY d.depends_on_id) AS array_agg
           FROM agentos.task_dependencies d
          WHERE (d.task_id = t.id)) AS depends_on,
    lease_agent AS held_by,
    lease_expires_at,
    created_at,
    updated_at,
    date_trunc('second'::text, (now() - created_at)) AS age
   FROM agentos.tasks t
  ORDER BY (array_position(enum_range(NULL::agentos.task_status), status)), priority DESC, id;
CREATE VIEW agentos.board_summary AS
 SELECT s.status,
    count(t.id) AS tasks
   FROM (unnest(enum_range(NULL::agentos.task_status)) s(status)
     LEFT JOIN agentos.tasks t ON ((t.status = s.status)))
  GROUP BY s.status
  ORDER BY (array_position(enum_range(NULL::agentos.task_status), s.status));
CREATE TABLE agentos.budget_reservations (
    id bigint NOT NULL,
    scopes text[] NOT NULL,
    estimate numeric(14,6) NOT NULL,
    task_id bigint,
    lease_token uuid,
    session_id uuid,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT budget_reservations_estimate_check CHECK ((estimate >= (0)::numeric))
);
ALTER TABLE agentos.budget_reservations ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.budget_reservations_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.budgets (
    scope text NOT NULL,
    limit_usd numeric(14,6) NOT NULL,
    spent_usd numeric(14,6) DEFAULT 0 NOT NULL,
    reserved_usd numeric(14,6) DEFAULT 0 NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT budgets_amounts_are_numbers CHECK (((limit_usd <> 'NaN'::numeric) AND (spent_usd <> 'NaN'::numeric) AND (reserved_usd <> 'NaN'::numeric))),
    CONSTRAINT budgets_limit_usd_check CHECK ((limit_usd >= (0)::numeric)),
    CONSTRAINT budgets_reserved_usd_check CHECK ((reserved_usd >= (0)::numeric)),
    CONSTRAINT budgets_spent_usd_check CHECK ((spent_usd >= (0)::numeric))
);
CREATE TABLE agentos.channel_members (
    channel_id bigint NOT NULL,
    member text NOT NULL,
    added_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT channel_members_member_check CHECK ((member ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'::text))
);
CREATE TABLE agentos.channels (
    id bigint NOT NULL,
    name text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    created_by text DEFAULT agentos.current_actor() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT channels_description_check CHECK (((description !~ '[\x01-\x1f\x7f-\x9f]'::text) AND (length(description) <= 500))),
    CONSTRAINT channels_name_check CHECK (((name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'::text) AND (name !~ '^task-[0-9]+$'::text)))
);
ALTER TABLE agentos.channels ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.channels_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.llm_calls (
    id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    agent text NOT NULL,
    role text NOT NULL,
    task_id bigint,
    model text NOT NULL,
    prompt_tokens integer DEFAULT 0 NOT NULL,
    completion_tokens integer DEFAULT 0 NOT NULL,
    cost_usd numeric(14,6) DEFAULT 0 NOT NULL,
    latency_ms integer DEFAULT 0 NOT NULL,
    outcome text NOT NULL,
    error text,
    CONSTRAINT llm_calls_cost_is_an_amount CHECK (((cost_usd >= (0)::numeric) AND (cost_usd <> 'NaN'::numeric))),
    CONSTRAINT llm_calls_outcome_check CHECK ((outcome = ANY (ARRAY['ok'::text, 'error'::text, 'budget'::text])))
);
CREATE VIEW agentos.cost_per_agent AS
 SELECT agent,
    role,
    count(*) AS calls,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cost_usd) AS cost_usd,
    round(avg(latency_ms)) AS avg_latency_ms,
    count(*) FILTER (WHERE (outcome <> 'ok'::text)) AS failed_calls
   FROM agentos.llm_calls
  GROUP BY agent, role
  ORDER BY (sum(cost_usd)) DESC;
CREATE VIEW agentos.cost_per_day AS
 SELECT (date_trunc('day'::text, created_at))::date AS day,
    count(*) AS calls,
    sum(prompt_tokens) AS prompt_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(cost_usd) AS cost_usd
   FROM agentos.llm_calls
  GROUP BY ((date_trunc('day'::text, created_at))::date)
  ORDER BY ((date_trunc('day'::text, created_at))::date) DESC;
CREATE VIEW agentos.cost_per_task AS
SELECT
    NULL::bigint AS task_id,
    NULL::text AS title,
    NULL::agentos.task_status AS status,
    NULL::bigint AS calls,
    NULL::bigint AS prompt_tokens,
    NULL::bigint AS completion_tokens,
    NULL::numeric AS cost_usd,
    NULL::numeric(14,6) AS budget_usd;
CREATE TABLE agentos.leader_leases (
    duty text NOT NULL,
    holder uuid NOT NULL,
    acquired_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);
ALTER TABLE agentos.llm_calls ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.llm_calls_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.message_reads (
    message_id bigint NOT NULL,
    reader text NOT NULL,
    read_at timestamp with time zone DEFAULT now() NOT NULL
);
ALTER TABLE agentos.messages ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.messages_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.people (
    name text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT people_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'::text))
);
CREATE TABLE agentos.pgqueuer (
    id bigint NOT NULL,
    priority integer NOT NULL,
    queue_manager_id uuid,
    created timestamp with time zone DEFAULT now() NOT NULL,
    updated timestamp with time zone DEFAULT now() NOT NULL,
    heartbeat timestamp with time zone DEFAULT now() NOT NULL,
    execute_after timestamp with time zone DEFAULT now() NOT NULL,
    status agentos.pgqueuer_status NOT NULL,
    entrypoint text NOT NULL,
    dedupe_key text,
    payload bytea,
    headers jsonb,
    attempts integer DEFAULT 0 NOT NULL,
    slot bigint
);
CREATE SEQUENCE agentos.pgqueuer_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE agentos.pgqueuer_id_seq OWNED BY agentos.pgqueuer.id;
CREATE TABLE agentos.pgqueuer_log (
    id bigint NOT NULL,
    created timestamp with time zone DEFAULT now() NOT NULL,
    job_id bigint NOT NULL,
    status agentos.pgqueuer_status NOT NULL,
    priority integer NOT NULL,
    entrypoint text NOT NULL,
    traceback jsonb,
    aggregated boolean DEFAULT false
);
ALTER TABLE agentos.pgqueuer_log ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME agentos.pgqueuer_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.pgqueuer_schedules (
    id bigint NOT NULL,
    expression text NOT NULL,
    entrypoint text NOT NULL,
    heartbeat timestamp with time zone DEFAULT now() NOT NULL,
    created timestamp with time zone DEFAULT now() NOT NULL,
    updated timestamp with time zone DEFAULT now() NOT NULL,
    next_run timestamp with time zone DEFAULT now() NOT NULL,
    last_run timestamp with time zone,
    status agentos.pgqueuer_status DEFAULT 'queued'::agentos.pgqueuer_status
);
CREATE SEQUENCE agentos.pgqueuer_schedules_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE agentos.pgqueuer_schedules_id_seq OWNED BY agentos.pgqueuer_schedules.id;
CREATE TABLE agentos.pgqueuer_statistics (
    id bigint NOT NULL,
    created timestamp with time zone DEFAULT date_trunc('sec'::text, now()) NOT NULL,
    count bigint NOT NULL,
    priority integer NOT NULL,
    status agentos.pgqueuer_status NOT NULL,
    entrypoint text NOT NULL
);
CREATE SEQUENCE agentos.pgqueuer_statistics_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;
ALTER SEQUENCE agentos.pgqueuer_statistics_id_seq OWNED BY agentos.pgqueuer_statistics.id;
CREATE VIEW agentos.queue_depth AS
 SELECT r.role,
    count(*) FILTER (WHERE t.ready) AS ready,
    count(*) FILTER (WHERE t.waiting) AS waiting,
    count(*) FILTER (WHERE t.running) AS running
   FROM (( SELECT agents.role
           FROM agentos.agents
        UNION
         SELECT tasks.role
           FROM agentos.tasks
          WHERE (tasks.status = ANY (ARRAY['inbox'::agentos.task_status, 'assigned'::agentos.task_status, 'in_progress'::agentos.task_status]))
        UNION
         SELECT tasks.review_role
           FROM agentos.tasks
          WHERE (tasks.status = 'review'::agentos.task_status)) r(role)
     LEFT JOIN ( SELECT tasks.role,
            ((tasks.status = ANY (ARRAY['inbox'::agentos.task_status, 'assigned'::agentos.task_status])) AND (tasks.available_at <= now()) AND agentos.dependencies_done(tasks.id)) AS ready,
            ((tasks.status = ANY (ARRAY['inbox'::agentos.task_status, 'assigned'::agentos.task_status])) AND ((tasks.available_at > now()) OR (NOT agentos.dependencies_done(tasks.id)))) AS waiting,
            (tasks.lease_token IS NOT NULL) AS running
           FROM agentos.tasks
          WHERE (tasks.status = ANY (ARRAY['inbox'::agentos.task_status, 'assigned'::agentos.task_status, 'in_progress'::agentos.task_status]))
        UNION ALL
         SELECT tasks.review_role,
            ((tasks.lease_token IS NULL) AND (tasks.available_at <= now())),
            false,
            (tasks.lease_token IS NOT NULL)
           FROM agentos.tasks
          WHERE (tasks.status = 'review'::agentos.task_status)) t ON ((t.role = r.role)))
  GROUP BY r.role
  ORDER BY r.role;
CREATE VIEW agentos.recent_activity AS
 SELECT id,
    created_at,
    kind,
    actor,
    task_id,
    message
   FROM agentos.activities
  ORDER BY id DESC
 LIMIT 200;
CREATE TABLE agentos.schedule_runs (
    schedule_id bigint NOT NULL,
    tick timestamp with time zone NOT NULL,
    fired boolean NOT NULL,
    job_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    task_id bigint
);
CREATE TABLE agentos.schedules (
    id bigint NOT NULL,
    name text NOT NULL,
    cron text NOT NULL,
    target_role text,
    target_agent text,
    activation text DEFAULT 'heartbeat'::text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    precondition text,
    enabled boolean DEFAULT true NOT NULL,
    next_fire_at timestamp with time zone NOT NULL,
    last_fired_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    task_template jsonb,
    CONSTRAINT schedules_activation_check CHECK ((activation ~ '^[a-z][a-z0-9_.-]{0,31}$'::text)),
    CONSTRAINT schedules_check CHECK (((target_role IS NULL) <> (target_agent IS NULL))),
    CONSTRAINT schedules_name_check CHECK ((name ~ '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$'::text)),
    CONSTRAINT schedules_task_template_shape CHECK (((task_template IS NULL) OR ((jsonb_typeof(task_template) = 'object'::text) AND (jsonb_typeof((task_template -> 'title'::text)) = 'string'::text))))
);
ALTER TABLE agentos.schedules ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.schedules_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.schema_migrations (
    version text NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);
CREATE TABLE agentos.secrets (
    id bigint NOT NULL,
    name text NOT NULL,
    scope_kind text DEFAULT 'global'::text NOT NULL,
    scope_value text DEFAULT ''::text NOT NULL,
    ciphertext bytea NOT NULL,
    key_id text NOT NULL,
    created_by text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT secrets_ciphertext_check CHECK ((length(ciphertext) >= 29)),
    CONSTRAINT secrets_key_id_check CHECK ((key_id ~ '^[0-9a-f]{16}$'::text)),
    CONSTRAINT secrets_name_check CHECK ((name ~ '^[A-Za-z_][A-Za-z0-9_]{0,127}$'::text)),
    CONSTRAINT secrets_scope_kind_check CHECK ((scope_kind = ANY (ARRAY['global'::text, 'role'::text, 'agent'::text, 'task'::text]))),
    CONSTRAINT secrets_scope_value CHECK (
CASE scope_kind
    WHEN 'global'::text THEN (scope_value = ''::text)
    WHEN 'task'::text THEN (scope_value ~ '^[1-9][0-9]{0,18}$'::text)
    ELSE (scope_value ~ '^[a-z0-9][a-z0-9._-]{0,62}$'::text)
END)
);
COMMENT ON TABLE agentos.secrets IS 'Encrypted credentials (AES-256-GCM, key outside the database); never a plaintext value.';
ALTER TABLE agentos.secrets ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.secrets_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.skills (
    name text NOT NULL,
    description text DEFAULT ''::text NOT NULL,
    body text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT skills_name_check CHECK ((name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'::text))
);
CREATE TABLE agentos.steps (
    id bigint NOT NULL,
    task_id bigint NOT NULL,
    stage text NOT NULL,
    seq integer NOT NULL,
    agent text NOT NULL,
    attempt integer DEFAULT 1 NOT NULL,
    kind text NOT NULL,
    tool_name text,
    tool_call_id text,
    content jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL,
    CONSTRAINT steps_kind_check CHECK ((kind = ANY (ARRAY['system'::text, 'user'::text, 'llm'::text, 'tool_call'::text, 'tool_result'::text, 'note'::text]))),
    CONSTRAINT steps_seq_check CHECK ((seq >= 0)),
    CONSTRAINT steps_stage_check CHECK ((stage = ANY (ARRAY['work'::text, 'review'::text, 'plan'::text, 'activation'::text])))
);
ALTER TABLE agentos.steps ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME agentos.steps_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
CREATE TABLE agentos.task_transitions (
    from_status agentos.task_status NOT NULL,
    to_status agentos.task_status NOT NULL
);
ALTER TABLE agentos.tasks ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (
    SEQUENCE NAME agentos.tasks_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);
ALTER TABLE ONLY agentos.pgqueuer ALTER COLUMN id SET DEFAULT nextval('agentos.pgqueuer_id_seq'::regclass);
ALTER TABLE ONLY agentos.pgqueuer_schedules ALTER COLUMN id SET DEFAULT nextval('agentos.pgqueuer_schedules_id_seq'::regclass);
ALTER TABLE ONLY agentos.pgqueuer_statistics ALTER COLUMN id SET DEFAULT nextval('agentos.pgqueuer_statistics_id_seq'::regclass);
ALTER TABLE ONLY agentos.activities
    ADD CONSTRAINT activities_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.agent_sessions
    ADD CONSTRAINT agent_sessions_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.agents
    ADD CONSTRAINT agents_name_key UNIQUE (name);
ALTER TABLE ONLY agentos.agents
    ADD CONSTRAINT agents_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.budget_reservations
    ADD CONSTRAINT budget_reservations_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.budgets
    ADD CONSTRAINT budgets_pkey PRIMARY KEY (scope);
ALTER TABLE ONLY agentos.channel_members
    ADD CONSTRAINT channel_members_pkey PRIMARY KEY (channel_id, member);
ALTER TABLE ONLY agentos.channels
    ADD CONSTRAINT channels_name_key UNIQUE (name);
ALTER TABLE ONLY agentos.channels
    ADD CONSTRAINT channels_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.leader_leases
    ADD CONSTRAINT leader_leases_pkey PRIMARY KEY (duty);
ALTER TABLE ONLY agentos.llm_calls
    ADD CONSTRAINT llm_calls_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.message_reads
    ADD CONSTRAINT message_reads_pkey PRIMARY KEY (message_id, reader);
ALTER TABLE ONLY agentos.messages
    ADD CONSTRAINT messages_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.people
    ADD CONSTRAINT people_pkey PRIMARY KEY (name);
ALTER TABLE ONLY agentos.pgqueuer_log
    ADD CONSTRAINT pgqueuer_log_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.pgqueuer
    ADD CONSTRAINT pgqueuer_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.pgqueuer_schedules
    ADD CONSTRAINT pgqueuer_schedules_expression_entrypoint_key UNIQUE (expression, entrypoint);
ALTER TABLE ONLY agentos.pgqueuer_schedules
    ADD CONSTRAINT pgqueuer_schedules_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.pgqueuer_statistics
    ADD CONSTRAINT pgqueuer_statistics_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.schedule_runs
    ADD CONSTRAINT schedule_runs_pkey PRIMARY KEY (schedule_id, tick);
ALTER TABLE ONLY agentos.schedules
    ADD CONSTRAINT schedules_name_key UNIQUE (name);
ALTER TABLE ONLY agentos.schedules
    ADD CONSTRAINT schedules_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);
ALTER TABLE ONLY agentos.secrets
    ADD CONSTRAINT secrets_name_scope UNIQUE (name, scope_kind, scope_value);
ALTER TABLE ONLY agentos.secrets
    ADD CONSTRAINT secrets_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.skills
    ADD CONSTRAINT skills_pkey PRIMARY KEY (name);
ALTER TABLE ONLY agentos.steps
    ADD CONSTRAINT steps_pkey PRIMARY KEY (id);
ALTER TABLE ONLY agentos.steps
    ADD CONSTRAINT steps_task_id_stage_seq_key UNIQUE (task_id, stage, seq);
ALTER TABLE ONLY agentos.task_dependencies
    ADD CONSTRAINT task_dependencies_pkey PRIMARY KEY (task_id, depends_on_id);
ALTER TABLE ONLY agentos.task_transitions
    ADD CONSTRAINT task_transitions_pkey PRIMARY KEY (from_status, to_status);
ALTER TABLE ONLY agentos.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);
CREATE INDEX activities_actor_idx ON agentos.activities USING btree (actor, id) WHERE (actor IS NOT NULL);
CREATE INDEX activities_created_idx ON agentos.activities USING btree (created_at);
CREATE INDEX activities_task_idx ON agentos.activities USING btree (task_id, id) WHERE (task_id IS NOT NULL);
CREATE INDEX agent_sessions_running_idx ON agentos.agent_sessions USING btree (heartbeat_at) WHERE (status = 'running'::text);
CREATE INDEX agents_defined_idx ON agentos.agents USING btree (role, id) WHERE defined;
CREATE INDEX budget_reservations_lease_idx ON agentos.budget_reservations USING btree (lease_token) WHERE (lease_token IS NOT NULL);
CREATE INDEX channel_members_member_idx ON agentos.channel_members USING btree (member);
CREATE INDEX llm_calls_agent_day_idx ON agentos.llm_calls USING btree (agent, created_at);
CREATE INDEX llm_calls_task_idx ON agentos.llm_calls USING btree (task_id) WHERE (task_id IS NOT NULL);
CREATE INDEX message_reads_reader_idx ON agentos.message_reads USING btree (reader, message_id);
CREATE INDEX messages_broadcast_idx ON agentos.messages USING btree (id) WHERE ((to_agent IS NULL) AND (task_id IS NULL) AND (channel_id IS NULL));
CREATE INDEX messages_channel_idx ON agentos.messages USING btree (channel_id, id) WHERE (channel_id IS NOT NULL);
CREATE INDEX messages_from_idx ON agentos.messages USING btree (from_agent, id);
CREATE INDEX messages_mentions_idx ON agentos.messages USING gin (mentions);
CREATE INDEX messages_reply_idx ON agentos.messages USING btree (reply_to) WHERE (reply_to IS NOT NULL);
CREATE INDEX messages_task_idx ON agentos.messages USING btree (task_id, id) WHERE (task_id IS NOT NULL);
CREATE INDEX messages_thread_idx ON agentos.messages USING btree (thread_id, id);
CREATE INDEX messages_to_idx ON agentos.messages USING btree (to_agent, id) WHERE (to_agent IS NOT NULL);
CREATE INDEX messages_unread_idx ON agentos.messages USING btree (to_agent, id) WHERE (read_at IS NULL);
CREATE INDEX messages_woken_idx ON agentos.messages USING gin (woken);
CREATE INDEX pgqueuer_agent_work_idx ON agentos.pgqueuer USING btree (priority DESC, id) WHERE ((status = 'queued'::agentos.pgqueuer_status) AND (entrypoint ~~ 'agent:%'::text));
CREATE INDEX pgqueuer_ep_ea_idx ON agentos.pgqueuer USING btree (entrypoint, execute_after) WHERE (status = 'queued'::agentos.pgqueuer_status);
CREATE INDEX pgqueuer_ep_prio_id_idx ON agentos.pgqueuer USING btree (entrypoint, priority DESC, id) WHERE (status = 'queued'::agentos.pgqueuer_status);
CREATE INDEX pgqueuer_log_created ON agentos.pgqueuer_log USING btree (created);
CREATE INDEX pgqueuer_log_job_id_status ON agentos.pgqueuer_log USING btree (job_id, created DESC);
CREATE INDEX pgqueuer_log_not_aggregated ON agentos.pgqueuer_log USING btree ((1)) WHERE (NOT aggregated);
CREATE INDEX pgqueuer_log_status ON agentos.pgqueuer_log USING btree (status);
CREATE INDEX pgqueuer_picked_heartbeat_idx ON agentos.pgqueuer USING btree (heartbeat) WHERE (status = 'picked'::agentos.pgqueuer_status);
CREATE UNIQUE INDEX pgqueuer_picked_slot_idx ON agentos.pgqueuer USING btree (entrypoint, slot) WHERE ((status = 'picked'::agentos.pgqueuer_status) AND (slot IS NOT NULL));
CREATE INDEX pgqueuer_priority_id_id1_idx ON agentos.pgqueuer USING btree (priority, id DESC) INCLUDE (id) WHERE (status = 'queued'::agentos.pgqueuer_status);
CREATE INDEX pgqueuer_queue_manager_id_idx ON agentos.pgqueuer USING btree (queue_manager_id) WHERE (queue_manager_id IS NOT NULL);
CREATE UNIQUE INDEX pgqueuer_statistics_unique_count ON agentos.pgqueuer_statistics USING btree (priority, date_trunc('sec'::text, timezone('UTC'::text, created)), status, entrypoint);
CREATE UNIQUE INDEX pgqueuer_unique_dedupe_key ON agentos.pgqueuer USING btree (dedupe_key) WHERE ((status = ANY (ARRAY['queued'::agentos.pgqueuer_status, 'picked'::agentos.pgqueuer_status])) AND (dedupe_key IS NOT NULL));
CREATE INDEX pgqueuer_updated_id_id1_idx ON agentos.pgqueuer USING btree (updated, id DESC) INCLUDE (id) WHERE (status = 'picked'::agentos.pgqueuer_status);
CREATE INDEX schedule_runs_task_idx ON agentos.schedule_runs USING btree (task_id) WHERE (task_id IS NOT NULL);
CREATE INDEX schedules_due_idx ON agentos.schedules USING btree (next_fire_at) WHERE enabled;
CREATE INDEX steps_call_idx ON agentos.steps USING btree (task_id, tool_call_id) WHERE (tool_call_id IS NOT NULL);
CREATE INDEX task_dependencies_rev_idx ON agentos.task_dependencies USING btree (depends_on_id);
CREATE INDEX tasks_assignee_idx ON agentos.tasks USING btree (assignee) WHERE (assignee IS NOT NULL);
CREATE INDEX tasks_lease_idx ON agentos.tasks USING btree (lease_expires_at) WHERE (lease_expires_at IS NOT NULL);
CREATE INDEX tasks_lease_session_idx ON agentos.tasks USING btree (lease_session) WHERE (lease_session IS NOT NULL);
CREATE INDEX tasks_parent_idx ON agentos.tasks USING btree (parent_id) WHERE (parent_id IS NOT NULL);
CREATE INDEX tasks_ready_idx ON agentos.tasks USING btree (role, priority DESC, id) WHERE (status = ANY (ARRAY['inbox'::agentos.task_status, 'assigned'::agentos.task_status]));
CREATE INDEX tasks_status_idx ON agentos.tasks USING btree (status, priority DESC, id);
CREATE OR REPLACE VIEW agentos.cost_per_task AS
 SELECT t.id AS task_id,
    t.title,
    t.status,
    count(c.id) AS calls,
    COALESCE(sum(c.prompt_tokens), (0)::bigint) AS prompt_tokens,
    COALESCE(sum(c.completion_tokens), (0)::bigint) AS completion_tokens,
    COALESCE(sum(c.cost_usd), (0)::numeric) AS cost_usd,
    t.budget_usd
   FROM (agentos.tasks t
     LEFT JOIN agentos.llm_calls c ON ((c.task_id = t.id)))
  GROUP BY t.id
  ORDER BY COALESCE(sum(c.cost_usd), (0)::numeric) DESC, t.id;
CREATE TRIGGER agents_after_delete AFTER DELETE ON agentos.agents FOR EACH ROW EXECUTE FUNCTION agentos.agents_after_delete();
CREATE TRIGGER agents_after_write AFTER INSERT OR UPDATE OF status, current_task_id, session_id ON agentos.agents FOR EACH ROW EXECUTE FUNCTION agentos.agents_after_write();
CREATE TRIGGER agents_name_free BEFORE INSERT OR UPDATE OF name ON agentos.agents FOR EACH ROW EXECUTE FUNCTION agentos.agents_name_free();
CREATE TRIGGER message_reads_after_insert AFTER INSERT ON agentos.message_reads FOR EACH ROW EXECUTE FUNCTION agentos.message_reads_after_insert();
CREATE TRIGGER messages_after_insert AFTER INSERT ON agentos.messages FOR EACH ROW EXECUTE FUNCTION agentos.messages_after_insert();
CREATE TRIGGER messages_before_insert BEFORE INSERT ON agentos.messages FOR EACH ROW EXECUTE FUNCTION agentos.messages_before_insert();
CREATE TRIGGER people_name_free BEFORE INSERT OR UPDATE OF name ON agentos.people FOR EACH ROW EXECUTE FUNCTION agentos.people_name_free();
CREATE TRIGGER steps_after_insert AFTER INSERT ON agentos.steps FOR EACH ROW EXECUTE FUNCTION agentos.steps_after_insert();
CREATE TRIGGER task_dependencies_check BEFORE INSERT OR UPDATE ON agentos.task_dependencies FOR EACH ROW EXECUTE FUNCTION agentos.task_dependencies_check();
CREATE TRIGGER task_dependencies_withdraw AFTER INSERT ON agentos.task_dependencies FOR EACH ROW EXECUTE FUNCTION agentos.task_dependencies_withdraw();
CREATE TRIGGER tasks_after_write AFTER INSERT OR UPDATE ON agentos.tasks FOR EACH ROW EXECUTE FUNCTION agentos.tasks_after_write();
CREATE TRIGGER tasks_check_transition BEFORE INSERT OR UPDATE ON agentos.tasks FOR EACH ROW EXECUTE FUNCTION agentos.tasks_before_write();
CREATE TRIGGER tasks_free_agent AFTER UPDATE ON agentos.tasks FOR EACH ROW WHEN (((old.lease_token IS NOT NULL) AND (new.lease_token IS NULL))) EXECUTE FUNCTION agentos.tasks_free_agent();
CREATE TRIGGER tasks_inherit_approval BEFORE INSERT ON agentos.tasks FOR EACH ROW EXECUTE FUNCTION agentos.tasks_inherit_approval();
CREATE TRIGGER tasks_release_reservations AFTER UPDATE ON agentos.tasks FOR EACH ROW WHEN (((old.lease_token IS NOT NULL) AND (old.lease_token IS DISTINCT FROM new.lease_token))) EXECUTE FUNCTION agentos.tasks_release_reservations();
CREATE TRIGGER tg_pgqueuer_changed AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON agentos.pgqueuer FOR EACH STATEMENT EXECUTE FUNCTION agentos.fn_pgqueuer_changed();
ALTER TABLE ONLY agentos.agents
    ADD CONSTRAINT agents_session_fk FOREIGN KEY (session_id) REFERENCES agentos.agent_sessions(id) ON DELETE SET NULL;
ALTER TABLE ONLY agentos.budget_reservations
    ADD CONSTRAINT budget_reservations_task_id_fkey FOREIGN KEY (task_id) REFERENCES agentos.tasks(id) ON DELETE SET NULL;
ALTER TABLE ONLY agentos.channel_members
    ADD CONSTRAINT channel_members_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES agentos.channels(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.llm_calls
    ADD CONSTRAINT llm_calls_task_id_fkey FOREIGN KEY (task_id) REFERENCES agentos.tasks(id) ON DELETE SET NULL;
ALTER TABLE ONLY agentos.message_reads
    ADD CONSTRAINT message_reads_message_id_fkey FOREIGN KEY (message_id) REFERENCES agentos.messages(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.messages
    ADD CONSTRAINT messages_channel_id_fkey FOREIGN KEY (channel_id) REFERENCES agentos.channels(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.messages
    ADD CONSTRAINT messages_reply_to_fkey FOREIGN KEY (reply_to) REFERENCES agentos.messages(id) ON DELETE SET NULL;
ALTER TABLE ONLY agentos.messages
    ADD CONSTRAINT messages_task_id_fkey FOREIGN KEY (task_id) REFERENCES agentos.tasks(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.schedule_runs
    ADD CONSTRAINT schedule_runs_schedule_id_fkey FOREIGN KEY (schedule_id) REFERENCES agentos.schedules(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.schedule_runs
    ADD CONSTRAINT schedule_runs_task_id_fkey FOREIGN KEY (task_id) REFERENCES agentos.tasks(id) ON DELETE SET NULL;
ALTER TABLE ONLY agentos.schedules
    ADD CONSTRAINT schedules_target_agent_fkey FOREIGN KEY (target_agent) REFERENCES agentos.agents(name) ON UPDATE CASCADE ON DELETE CASCADE NOT VALID;
ALTER TABLE ONLY agentos.steps
    ADD CONSTRAINT steps_task_id_fkey FOREIGN KEY (task_id) REFERENCES agentos.tasks(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.task_dependencies
    ADD CONSTRAINT task_dependencies_depends_on_id_fkey FOREIGN KEY (depends_on_id) REFERENCES agentos.tasks(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.task_dependencies
    ADD CONSTRAINT task_dependencies_task_id_fkey FOREIGN KEY (task_id) REFERENCES agentos.tasks(id) ON DELETE CASCADE;
ALTER TABLE ONLY agentos.tasks
    ADD CONSTRAINT tasks_assignee_fkey FOREIGN KEY (assignee) REFERENCES agentos.agents(name) ON UPDATE CASCADE ON DELETE SET NULL;
ALTER TABLE ONLY agentos.tasks
    ADD CONSTRAINT tasks_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES agentos.tasks(id) ON DELETE SET NULL;
