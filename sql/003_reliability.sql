-- 003_reliability: no claim is forgotten, and no reservation outlives its holder.
--
-- * Lock order. Every transaction that locks several agent rows locks them in id order
--   (claims, the reaper), and the session heartbeat no longer writes agent rows at all
--   (readers take greatest(agent.last_heartbeat, session.heartbeat_at), see the
--   agent_status view). A heartbeat that wrote every agent row of its session deadlocked
--   with a claim that wrote them one by one in job order; the lease keeper then closed
--   the claimer's connection and a committed claim was thrown away, its task leased to an
--   idle agent forever (issue 8, part 3).
-- * A session the reaper declared dead claims nothing and renews nothing: its process
--   was frozen past three lease periods, its leases were rescued, and whatever it still
--   runs must stop. It learns from its heartbeat and registers a new session.
-- * Leases of a session can be listed (tasks_lease_session_idx), so a process that lost
--   the reply of a claim finds what it was given at once instead of after lease expiry.
-- * Budget reservations are rows: each one lives only as long as the lease of its task
--   (or the session of its agent, or a time limit), so a process that dies between
--   reserving and settling leaves nothing reserved once the rescuer or the sweeper
--   passes (issue 8, part 5).

-- ------------------------------------------------------------------ claims ----

CREATE INDEX tasks_lease_session_idx ON agentos.tasks (lease_session)
    WHERE lease_session IS NOT NULL;

-- Same contract as in 001; two changes: a dead session's claim hands its jobs back and
-- leases nothing, and the agent rows are locked up front in id order (see above).
CREATE OR REPLACE FUNCTION agentos.claim_jobs(
    p_jobs bigint[], p_tasks bigint[], p_agents text[], p_role text, p_session uuid,
    p_lease interval, p_now timestamptz DEFAULT NULL
) RETURNS SETOF agentos.tasks
LANGUAGE plpgsql AS $$
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

-- Same contract as in 001, but a session that is no longer running renews nothing: its
-- holder must stop (it was declared dead; the rescuer owns its leases now).
CREATE OR REPLACE FUNCTION agentos.renew_leases(
    p_session uuid, p_tokens uuid[], p_lease interval, p_now timestamptz DEFAULT NULL
) RETURNS SETOF uuid
LANGUAGE sql AS $$
    UPDATE agentos.tasks
    SET lease_expires_at = coalesce(p_now, now()) + p_lease
    WHERE lease_token = ANY(p_tokens) AND lease_session = p_session
      AND status IN ('in_progress', 'review')
      AND EXISTS (SELECT 1 FROM agentos.agent_sessions s
                  WHERE s.id = p_session AND s.status = 'running')
    RETURNING lease_token
$$;

-- A holder whose work failed (its handler crashed) gives the task back as a spent
-- attempt: ready again after the same backoff as a rescue (1 s, 2 s, 4 s ... 5 min), or
-- failed with the reason once max_attempts claims were spent. A release would refund the
-- attempt and make the task ready at once: a handler that always fails then became a
-- claim storm (issue 8, part 2). Stale tokens are rejected like every holder's write.
CREATE FUNCTION agentos.fail_attempt(p_task bigint, p_token uuid, p_reason text)
RETURNS TABLE (task_id bigint, outcome text)
LANGUAGE plpgsql AS $$
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

-- ----------------------------------------------------------------- budgets ----

-- One row per reservation not yet settled. It is live while the lease it was made under
-- is current (lease_token), while its agent's session runs (session_id), and until
-- expires_at; once any of these ends, its estimate is returned to every scope.
CREATE TABLE agentos.budget_reservations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scopes      text[] NOT NULL,
    estimate    numeric(14, 6) NOT NULL CHECK (estimate >= 0),
    task_id     bigint REFERENCES agentos.tasks (id) ON DELETE SET NULL,
    lease_token uuid,
    session_id  uuid,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX budget_reservations_lease_idx ON agentos.budget_reservations (lease_token)
    WHERE lease_token IS NOT NULL;

-- Return reservations to their scopes and delete them. Budget rows are locked in scope
-- order, as reserve_budget does, so releasers and reservers never deadlock.
CREATE FUNCTION agentos.release_reservations(p_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
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

-- Reserve p_estimate on every scope or on none (as reserve_budget in 002) and record the
-- reservation, bound to the current lease of the task scope ('task:<id>') and to the
-- session of the agent scope ('agent:<name>:<day>'). Returns (breach, reservation):
-- breach names the scope that would be exceeded (and reservation is NULL), or breach is
-- NULL and reservation is the id to settle. NaN and infinite amounts are refused: NaN
-- compares greater than every number, so a NaN limit would admit anything.
CREATE FUNCTION agentos.reserve_budget_v2(
    p_scopes text[], p_limits numeric[], p_estimate numeric, p_ttl interval DEFAULT '1 hour'
) RETURNS TABLE (breach text, reservation bigint)
LANGUAGE plpgsql AS $$
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
$$;

-- Swap a reservation for the actual cost. A reservation already returned (its lease
-- ended, its session died, it expired) is not returned twice: only the cost is added,
-- since the money was really spent.
CREATE FUNCTION agentos.settle_reservation(p_id bigint, p_scopes text[], p_actual numeric)
RETURNS void
LANGUAGE plpgsql AS $$
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

-- Return every reservation whose holder is gone: its lease is no longer current, its
-- session stopped or died, or it expired. The leader runs this with its other duties.
CREATE FUNCTION agentos.expire_budget_reservations(p_now timestamptz DEFAULT NULL)
RETURNS integer
LANGUAGE sql AS $$
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

-- A lease that ends by any path (completion, release, rescue, a person's cancel) returns
-- the reservations made under it at once: the rescuer settles a dead holder's
-- reservations in the same transaction that rescues its task.
CREATE FUNCTION agentos.tasks_release_reservations() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM agentos.budget_reservations WHERE lease_token = OLD.lease_token) THEN
        PERFORM agentos.release_reservations(ARRAY(
            SELECT id FROM agentos.budget_reservations WHERE lease_token = OLD.lease_token));
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_release_reservations
AFTER UPDATE ON agentos.tasks
FOR EACH ROW WHEN (OLD.lease_token IS NOT NULL AND OLD.lease_token IS DISTINCT FROM NEW.lease_token)
EXECUTE FUNCTION agentos.tasks_release_reservations();
