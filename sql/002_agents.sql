-- 002_agents: what the agent runtime records: durable steps (transcripts), LLM usage,
-- budgets reserved before each call, skills, and the cost views.

-- Every step of an agent's loop, written before the next one starts. A task's steps
-- form one conversation per stage (work, review, plan), across attempts: an agent that
-- takes over a task reads them and resumes after the last one. A tool call is recorded
-- ('tool_call') before it runs and its result ('tool_result') after; a call without a
-- result was interrupted and is the only thing that may run again.
CREATE TABLE agentos.steps (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task_id      bigint NOT NULL REFERENCES agentos.tasks (id) ON DELETE CASCADE,
    stage        text NOT NULL CHECK (stage IN ('work', 'review', 'plan', 'activation')),
    seq          integer NOT NULL CHECK (seq >= 0),
    agent        text NOT NULL,
    attempt      integer NOT NULL DEFAULT 1,
    kind         text NOT NULL
                 CHECK (kind IN ('system', 'user', 'llm', 'tool_call', 'tool_result', 'note')),
    tool_name    text,
    tool_call_id text,
    content      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (task_id, stage, seq)
);
CREATE INDEX steps_call_idx ON agentos.steps (task_id, tool_call_id) WHERE tool_call_id IS NOT NULL;

-- One row per LLM call: who, for what, which model, tokens, cost, latency, outcome.
CREATE TABLE agentos.llm_calls (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at        timestamptz NOT NULL DEFAULT now(),
    agent             text NOT NULL,
    role              text NOT NULL,
    task_id           bigint REFERENCES agentos.tasks (id) ON DELETE SET NULL,
    model             text NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cost_usd          numeric(14, 6) NOT NULL DEFAULT 0,
    latency_ms        integer NOT NULL DEFAULT 0,
    outcome           text NOT NULL CHECK (outcome IN ('ok', 'error', 'budget')),
    error             text
);
CREATE INDEX llm_calls_task_idx ON agentos.llm_calls (task_id) WHERE task_id IS NOT NULL;
CREATE INDEX llm_calls_agent_day_idx ON agentos.llm_calls (agent, created_at);

-- Budgets: a row per scope ('task:<id>' or 'agent:<name>:<YYYY-MM-DD>'). A call first
-- reserves its estimated cost (reserve_budget); the reservation succeeds only while
-- spent + reserved + estimate <= limit, in one UPDATE, so concurrent agents cannot
-- overshoot together. settle_budget then swaps the reservation for the actual cost.
CREATE TABLE agentos.budgets (
    scope        text PRIMARY KEY,
    limit_usd    numeric(14, 6) NOT NULL CHECK (limit_usd >= 0),
    spent_usd    numeric(14, 6) NOT NULL DEFAULT 0 CHECK (spent_usd >= 0),
    reserved_usd numeric(14, 6) NOT NULL DEFAULT 0 CHECK (reserved_usd >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE agentos.tasks ADD COLUMN budget_usd numeric(14, 6) CHECK (budget_usd >= 0);

-- Reserve p_estimate on every scope or on none. Returns NULL when granted, else the scope
-- that would be exceeded. Scopes without a row are created with p_limits' limit.
CREATE FUNCTION agentos.reserve_budget(p_scopes text[], p_limits numeric[], p_estimate numeric)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    v_ok boolean;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
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

CREATE FUNCTION agentos.settle_budget(p_scopes text[], p_estimate numeric, p_actual numeric)
RETURNS void
LANGUAGE sql AS $$
    UPDATE agentos.budgets
    SET reserved_usd = greatest(reserved_usd - p_estimate, 0),
        spent_usd = spent_usd + p_actual, updated_at = now()
    WHERE scope = ANY(p_scopes)
$$;

-- Skills: markdown documents in a global library that agents can list and read.
CREATE TABLE agentos.skills (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    description text NOT NULL DEFAULT '',
    body        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Steps notify the TUI's task screen (hint: task id).
CREATE FUNCTION agentos.steps_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agentos.notify_once('agentos_step',
        jsonb_build_object('task', NEW.task_id, 'stage', NEW.stage, 'seq', NEW.seq));
    RETURN NULL;
END;
$$;

CREATE TRIGGER steps_after_insert
AFTER INSERT ON agentos.steps
FOR EACH ROW EXECUTE FUNCTION agentos.steps_after_insert();

-- Cost views for psql.
CREATE VIEW agentos.cost_per_task AS
SELECT t.id AS task_id, t.title, t.status,
       count(c.id) AS calls, coalesce(sum(c.prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(c.completion_tokens), 0) AS completion_tokens,
       coalesce(sum(c.cost_usd), 0) AS cost_usd, t.budget_usd
FROM agentos.tasks t
LEFT JOIN agentos.llm_calls c ON c.task_id = t.id
GROUP BY t.id
ORDER BY cost_usd DESC, t.id;

CREATE VIEW agentos.cost_per_agent AS
SELECT agent, role, count(*) AS calls, sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens, sum(cost_usd) AS cost_usd,
       round(avg(latency_ms)) AS avg_latency_ms,
       count(*) FILTER (WHERE outcome <> 'ok') AS failed_calls
FROM agentos.llm_calls
GROUP BY agent, role
ORDER BY cost_usd DESC;

CREATE VIEW agentos.cost_per_day AS
SELECT date_trunc('day', created_at)::date AS day, count(*) AS calls,
       sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
       sum(cost_usd) AS cost_usd
FROM agentos.llm_calls
GROUP BY 1
ORDER BY 1 DESC;

-- A message to an agent wakes it (an activation for that agent, one pending per agent);
-- answers do not, so two agents never answer each other forever.
CREATE OR REPLACE FUNCTION agentos.messages_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agentos.record_activity('message.sent', NEW.task_id, left(NEW.body, 200),
        jsonb_build_object('message', NEW.id, 'to', NEW.to_agent, 'from', NEW.from_agent,
                           'kind', NEW.kind),
        coalesce(NEW.from_agent, agentos.current_actor()));
    IF NEW.to_agent IS NOT NULL AND NEW.kind NOT IN ('answer', 'review')
       AND NEW.to_agent IS DISTINCT FROM NEW.from_agent THEN
        PERFORM agentos.enqueue_activation('agent:' || NEW.to_agent, 'message',
            jsonb_build_object('message', NEW.id), 0, 'message:' || NEW.to_agent);
    END IF;
    PERFORM agentos.notify_once('agentos_message',
        jsonb_build_object('id', NEW.id, 'to', NEW.to_agent, 'task', NEW.task_id));
    RETURN NULL;
END;
$$;

-- A lease that ends by any path (a person cancelling, a rescue, a transition) frees
-- the agent that held it, so agent status never points at work it no longer has.
CREATE FUNCTION agentos.tasks_free_agent() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agentos.agents SET status = 'idle', current_task_id = NULL, updated_at = now()
    WHERE current_task_id = NEW.id AND status <> 'offline';
    RETURN NULL;
END;
$$;

-- (not UPDATE OF lease_token: the BEFORE trigger clears the lease, outside the SET list)
CREATE TRIGGER tasks_free_agent
AFTER UPDATE ON agentos.tasks
FOR EACH ROW WHEN (OLD.lease_token IS NOT NULL AND NEW.lease_token IS NULL)
EXECUTE FUNCTION agentos.tasks_free_agent();

-- Claims are the hot path: do not look for ready work in a state that cannot be ready.
CREATE OR REPLACE FUNCTION agentos.tasks_after_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_dep bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM agentos.record_activity('task.created', NEW.id, NEW.title,
            jsonb_build_object('status', NEW.status, 'role', NEW.role,
                               'assignee', NEW.assignee, 'priority', NEW.priority),
            coalesce(nullif(current_setting('agentos.actor', true), ''), NEW.created_by));
        PERFORM agentos.enqueue_task_work(NEW.id);
    ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
        PERFORM agentos.record_activity('task.' || NEW.status::text, NEW.id,
            coalesce(nullif(current_setting('agentos.reason', true), ''),
                     OLD.status::text || ' -> ' || NEW.status::text),
            jsonb_build_object('from', OLD.status, 'to', NEW.status,
                               'agent', coalesce(NEW.lease_agent, OLD.lease_agent)));
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

-- Queue depth per role, counting a task waiting for review (no lease yet) as ready work
-- for its review role.
CREATE OR REPLACE VIEW agentos.queue_depth AS
SELECT r.role,
       count(*) FILTER (WHERE t.ready) AS ready,
       count(*) FILTER (WHERE t.waiting) AS waiting,
       count(*) FILTER (WHERE t.running) AS running
FROM (SELECT role FROM agentos.agents
      UNION SELECT role FROM agentos.tasks WHERE status IN ('inbox', 'assigned', 'in_progress')
      UNION SELECT review_role FROM agentos.tasks WHERE status = 'review') AS r(role)
LEFT JOIN (
    SELECT role,
           status IN ('inbox', 'assigned') AND available_at <= now()
               AND agentos.dependencies_done(id) AS ready,
           status IN ('inbox', 'assigned')
               AND (available_at > now() OR NOT agentos.dependencies_done(id)) AS waiting,
           lease_token IS NOT NULL AS running
    FROM agentos.tasks WHERE status IN ('inbox', 'assigned', 'in_progress')
    UNION ALL
    SELECT review_role, lease_token IS NULL AND available_at <= now(), false,
           lease_token IS NOT NULL
    FROM agentos.tasks WHERE status = 'review'
) AS t ON t.role = r.role
GROUP BY r.role
ORDER BY r.role;


-- Work wakes only those who can take it. pgqueuer's own trigger NOTIFYs every listener on
-- every insert, pick and delete of any job, so each task woke every idle agent three
-- times for nothing. Instead each entrypoint has its channel ("agentos.role:worker",
-- "agentos.agent:worker-1"), notified once per transaction when work is queued for it.
CREATE FUNCTION agentos.notify_work(p_entrypoint text) RETURNS void
LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION agentos.enqueue_task_work(p_task bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION agentos.enqueue_activation(
    p_entrypoint text, p_kind text, p_payload jsonb DEFAULT '{}', p_priority integer DEFAULT 0,
    p_dedupe_key text DEFAULT NULL, p_delay interval DEFAULT '0'
) RETURNS bigint
LANGUAGE plpgsql AS $$
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
$$;
