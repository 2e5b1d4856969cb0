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
