-- Named queries of the kernel. Each block: `-- name: NAME`, a one-line description
-- starting with `-- `, then the SQL. Parameters are psycopg named placeholders.

-- name: insert_task
-- Create a task; triggers record the activity and enqueue its work.
INSERT INTO agentos.tasks (title, description, acceptance, role, review_role, assignee, priority,
                           parent_id, max_attempts, created_by, metadata, budget_usd, approval)
VALUES (%(title)s, %(description)s, %(acceptance)s, %(role)s, %(review_role)s, %(assignee)s,
        %(priority)s, %(parent_id)s, %(max_attempts)s, %(created_by)s, %(metadata)s,
        %(budget_usd)s, %(approval)s)
RETURNING *;

-- name: insert_dependency
-- Make a task wait for another.
INSERT INTO agentos.task_dependencies (task_id, depends_on_id) VALUES (%(task_id)s, %(depends_on_id)s);

-- name: get_task
-- One task with its dependency ids.
SELECT t.*, coalesce((SELECT array_agg(d.depends_on_id ORDER BY d.depends_on_id)
                      FROM agentos.task_dependencies d WHERE d.task_id = t.id), '{}') AS depends_on
FROM agentos.tasks t WHERE t.id = %(id)s;

-- name: list_tasks
-- Tasks filtered by status and role, board order.
SELECT t.*, coalesce((SELECT array_agg(d.depends_on_id ORDER BY d.depends_on_id)
                      FROM agentos.task_dependencies d WHERE d.task_id = t.id), '{}') AS depends_on
FROM agentos.tasks t
WHERE (%(status)s::agentos.task_status IS NULL OR t.status = %(status)s::agentos.task_status)
  AND (%(role)s::text IS NULL OR t.role = %(role)s::text)
  AND (%(parent_id)s::bigint IS NULL OR t.parent_id = %(parent_id)s::bigint)
ORDER BY array_position(enum_range(NULL::agentos.task_status), t.status), t.priority DESC, t.id
LIMIT %(limit)s;

-- name: transition_task
-- The one transition function (checks, activity, enqueue happen in SQL).
SELECT * FROM agentos.transition_task(%(id)s, %(to)s::agentos.task_status, %(actor)s, %(reason)s,
                                      %(token)s, %(result)s, %(error)s, %(assignee)s);

-- name: claim_jobs
-- Claim the tasks named by dequeued jobs and retire the jobs, in one round trip.
SELECT * FROM agentos.claim_jobs(%(jobs)s, %(tasks)s, %(agents)s, %(role)s, %(session)s,
                                 make_interval(secs => %(lease)s), %(now)s);

-- name: claim_work
-- Dequeue and claim in one statement: lease the free agents' due work, retire the task
-- jobs, mark activations picked (sql/010, set-based in sql/012). The agents come space-separated (names have
-- no spaces): one string is cheaper to send than an array of 1,000.
SELECT c.claim_agent, c.claim_job, c.claim_entrypoint, c.claim_kind, c.claim_payload, (c.task).*
FROM agentos.claim_work_v2(%(role)s, string_to_array(%(agents)s, ' '), %(session)s,
                        make_interval(secs => %(lease)s),
                        make_interval(secs => %(stale)s), %(now)s) AS c;

-- name: finish_tasks
-- End many holders' stages in one statement; ok = false where the token is stale.
SELECT f.finished_id, f.ok, (f.task).*
FROM agentos.finish_tasks(%(ids)s, %(tokens)s, %(to)s::agentos.task_status[], %(actors)s,
                          %(results)s) AS f;

-- name: free_agents_of_tasks
-- Agents that ended their stage through finish_tasks go idle, unless a claim already
-- gave them new work (locked in id order, as claims lock them).
UPDATE agentos.agents SET status = 'idle', current_task_id = NULL, updated_at = now()
WHERE id IN (SELECT a.id FROM agentos.agents a
             JOIN unnest(%(names)s::text[], %(tasks)s::bigint[]) AS f(name, task)
               ON a.name = f.name AND a.current_task_id = f.task
             WHERE a.status <> 'offline'
             ORDER BY a.id FOR NO KEY UPDATE OF a);

-- name: commit_async
-- This transaction's commit need not wait for its WAL flush (transaction-local).
SELECT set_config('synchronous_commit', 'off', true);

-- name: renew_leases
-- Extend a session's leases; returns the tokens it still holds.
SELECT agentos.renew_leases(%(session)s, %(tokens)s, make_interval(secs => %(lease)s), %(now)s)
    AS token;

-- name: release_task
-- Give back a lease without finishing (shutdown).
SELECT * FROM agentos.release_task(%(id)s, %(token)s, %(reason)s);

-- name: rescue_expired_leases
-- Return expired leases to the queue with backoff, or fail the task.
SELECT * FROM agentos.rescue_expired_leases(%(now)s);

-- name: requeue_orphans
-- Enqueue ready tasks that have lost their job.
SELECT agentos.requeue_orphans() AS requeued;

-- name: acquire_leadership
-- Take or renew a duty's leader lease.
SELECT agentos.acquire_leadership(%(duty)s, %(holder)s, make_interval(secs => %(ttl)s), %(now)s)
    AS leader;

-- name: release_leadership
-- Give up a duty's leader lease.
SELECT agentos.release_leadership(%(duty)s, %(holder)s);

-- name: insert_session
-- Register a running process.
INSERT INTO agentos.agent_sessions (role, host, pid, agents, lease_seconds)
VALUES (%(role)s, %(host)s, %(pid)s, %(agents)s, %(lease_seconds)s)
RETURNING *;

-- name: upsert_agents
-- Register (or re-register) every agent of a session in one statement, in list order.
INSERT INTO agentos.agents (name, role, model, capabilities, session_id, status, last_heartbeat)
SELECT u.name, %(role)s, %(model)s, %(capabilities)s, %(session)s, 'idle', now()
FROM unnest(%(names)s::text[]) WITH ORDINALITY AS u(name, k)
ORDER BY u.k
ON CONFLICT (name) DO UPDATE
SET role = excluded.role, model = coalesce(excluded.model, agentos.agents.model),
    capabilities = excluded.capabilities, session_id = excluded.session_id, status = 'idle',
    current_task_id = NULL, last_heartbeat = now(), updated_at = now();

-- name: heartbeat_session
-- Mark a running session alive; alive = 0 when it was reaped (declared dead) meanwhile.
-- Only the session row: writing every agent row here deadlocked with claims (003).
UPDATE agentos.agent_sessions SET heartbeat_at = now()
WHERE id = %(session)s AND status = 'running'
RETURNING 1 AS alive;

-- name: stop_session
-- Mark a session stopped and its agents offline.
WITH s AS (
    UPDATE agentos.agent_sessions SET status = 'stopped', stopped_at = now()
    WHERE id = %(session)s RETURNING id)
UPDATE agentos.agents SET status = 'offline', current_task_id = NULL
WHERE session_id IN (SELECT id FROM s);

-- name: reap_dead_sessions
-- Running sessions no longer alive (session_alive, judged at %(now)s or now()) are
-- dead; their agents go offline (locked in id order).
WITH dead AS (
    UPDATE agentos.agent_sessions SET status = 'dead', stopped_at = now()
    WHERE status = 'running'
      AND NOT agentos.session_alive(status, heartbeat_at, lease_seconds, %(now)s::timestamptz)
    RETURNING id, role, host, pid),
off AS (
    UPDATE agentos.agents SET status = 'offline', current_task_id = NULL
    WHERE id IN (SELECT id FROM agentos.agents WHERE session_id IN (SELECT id FROM dead)
                 ORDER BY id FOR NO KEY UPDATE)
    RETURNING name)
SELECT id, role, host, pid FROM dead;

-- name: agent_idle
-- An agent finished its work.
UPDATE agentos.agents SET status = 'idle', current_task_id = NULL
WHERE name = %(name)s AND current_task_id IS NOT DISTINCT FROM %(task)s;

-- name: list_agents
-- Registered agents with liveness (the agent_status view).
SELECT * FROM agentos.agent_status;

-- name: list_sessions
-- Running sessions.
SELECT * FROM agentos.agent_sessions WHERE status = 'running' ORDER BY started_at;

-- name: record_activity
-- Append to the audit log.
SELECT agentos.record_activity(%(kind)s, %(task)s, %(message)s, %(data)s, %(actor)s) AS id;

-- name: record_progress
-- Append a progress note to the audit log; its transaction need not wait for the WAL flush.
SELECT agentos.record_activity(%(kind)s, %(task)s, %(message)s, %(data)s, %(actor)s) AS id,
       set_config('synchronous_commit', 'off', true) AS sync;

-- name: list_activities
-- Activity rows after an id, oldest first, optionally filtered.
SELECT * FROM agentos.activities
WHERE id > %(after)s
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(task)s::bigint IS NULL OR task_id = %(task)s::bigint)
ORDER BY id
LIMIT %(limit)s;

-- name: recent_activities
-- The newest activity rows, optionally filtered (returned newest first).
SELECT * FROM agentos.activities
WHERE (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(task)s::bigint IS NULL OR task_id = %(task)s::bigint)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: insert_schedule
-- Store a cron schedule (task_template set: each tick creates a task from it).
INSERT INTO agentos.schedules (name, cron, target_role, target_agent, activation, payload,
                               precondition, next_fire_at, task_template)
VALUES (%(name)s, %(cron)s, %(target_role)s, %(target_agent)s, %(activation)s, %(payload)s,
        %(precondition)s, %(next_fire_at)s, %(task_template)s)
RETURNING *;

-- name: list_schedules
-- Every schedule.
SELECT * FROM agentos.schedules ORDER BY name;

-- name: delete_schedule
-- Remove a schedule by name or id.
DELETE FROM agentos.schedules WHERE name = %(key)s OR id::text = %(key)s RETURNING *;

-- name: due_schedules
-- Schedules whose next tick has come, locked so that one transaction fires each tick.
SELECT * FROM agentos.schedules
WHERE enabled AND next_fire_at <= %(now)s
ORDER BY next_fire_at
LIMIT 100
FOR UPDATE SKIP LOCKED;

-- name: insert_schedule_run
-- Record a tick; the primary key makes it fire at most once.
INSERT INTO agentos.schedule_runs (schedule_id, tick, fired, job_id)
VALUES (%(schedule)s, %(tick)s, %(fired)s, %(job)s)
ON CONFLICT DO NOTHING
RETURNING tick;

-- name: mark_schedule_run_fired
-- A claimed tick fired: the activation job or the task it created.
UPDATE agentos.schedule_runs SET fired = true, job_id = %(job)s, task_id = %(task)s
WHERE schedule_id = %(schedule)s AND tick = %(tick)s;

-- name: advance_schedule
-- Move a schedule to its next tick.
UPDATE agentos.schedules SET next_fire_at = %(next)s, last_fired_at = %(tick)s
WHERE id = %(schedule)s;

-- name: enqueue_activation
-- Queue a non-task activation for a role or an agent.
SELECT agentos.enqueue_activation(%(entrypoint)s, %(kind)s, %(payload)s, %(priority)s,
                                  %(dedupe_key)s) AS job;

-- name: ack_jobs
-- Retire finished activation jobs into pgqueuer's log.
WITH gone AS (
    DELETE FROM agentos.pgqueuer WHERE id = ANY(%(jobs)s)
    RETURNING id, priority, entrypoint)
INSERT INTO agentos.pgqueuer_log (job_id, status, priority, entrypoint)
SELECT id, %(status)s::agentos.pgqueuer_status, priority, entrypoint FROM gone;

-- name: queue_depth
-- Ready, waiting and running work per role.
SELECT * FROM agentos.queue_depth;

-- name: advisory_lock
-- Wait for the session-level advisory lock named by a text key.
SELECT pg_advisory_lock(hashtext(%(key)s));

-- name: advisory_unlock
-- Give back the session-level advisory lock named by a text key.
SELECT pg_advisory_unlock(hashtext(%(key)s));

-- name: set_precondition_timeout
-- Bound a schedule precondition's evaluation (transaction-local).
SELECT set_config('statement_timeout', %(timeout)s, true);

-- name: eval_precondition
-- Evaluate a schedule precondition: one read-only SELECT with restricted privileges.
SELECT agentos.eval_precondition(%(expr)s) AS ok;

-- name: unlock_precondition_locks
-- Drop session-level advisory locks a precondition may have taken on this connection.
SELECT pg_advisory_unlock_all();

-- name: agent_exists
-- Whether an agent is registered.
SELECT 1 AS found FROM agentos.agents WHERE name = %(name)s;

-- name: disable_schedule
-- Stop a schedule from firing (kept for the operator to fix or remove).
UPDATE agentos.schedules SET enabled = false WHERE id = %(schedule)s;

-- name: lock_task_for_retry
-- A task's status, locked until the retry's transaction ends.
SELECT id, status, assignee, branch, metadata FROM agentos.tasks WHERE id = %(id)s FOR UPDATE;

-- name: known_role
-- Whether a registered agent has this role.
SELECT 1 AS found FROM agentos.agents WHERE role = %(role)s LIMIT 1;

-- name: session_leases
-- Leases held by a session (to find claims whose reply was lost).
SELECT * FROM agentos.tasks
WHERE lease_session = %(session)s AND status IN ('in_progress', 'review');

-- name: reserve_budget
-- Reserve an estimate on every scope or none; returns the breached scope or the reservation.
-- sync: the transaction's synchronous_commit, NULL for the server's setting.
SELECT r.*, set_config('synchronous_commit',
                       coalesce(%(sync)s, current_setting('synchronous_commit')), true) AS sync
FROM agentos.reserve_budget_v2(%(scopes)s, %(limits)s::numeric[], %(estimate)s,
                               make_interval(secs => %(ttl)s)) AS r;

-- name: settle_reservation
-- Swap a reservation for the actual cost.
SELECT agentos.settle_reservation(%(id)s, %(scopes)s, %(actual)s);

-- name: settle_budget
-- Swap an estimate for the actual cost (a reservation made before 003, with no row).
SELECT agentos.settle_budget(%(scopes)s, %(estimate)s, %(actual)s);

-- name: expire_budget_reservations
-- Return reservations whose lease, session or time ran out.
SELECT agentos.expire_budget_reservations(%(now)s) AS expired;

-- name: unpick_session_jobs
-- Queue again the jobs a session picked but is not handling (a claim whose reply was lost).
UPDATE agentos.pgqueuer SET status = 'queued', queue_manager_id = NULL
WHERE queue_manager_id = %(session)s AND status = 'picked' AND id <> ALL(%(keep)s::bigint[])
RETURNING id;

-- name: set_task_branch
-- Record the branch a holder hands to review, and who worked on it (lease-checked).
UPDATE agentos.tasks SET branch = %(branch)s, metadata = metadata || %(metadata)s
WHERE id = %(id)s AND lease_token = %(token)s
RETURNING id;

-- name: merge_task_metadata
-- Add keys to a task's metadata.
UPDATE agentos.tasks SET metadata = metadata || %(metadata)s WHERE id = %(id)s RETURNING id;

-- name: count_rejection
-- One more rejection of the task under review (lease-checked); returns the new count.
UPDATE agentos.tasks SET rejections = rejections + 1
WHERE id = %(id)s AND lease_token = %(token)s
RETURNING rejections;

-- name: agent_is_alive
-- Whether an agent has a live session (the one definition of alive: agent_status).
SELECT EXISTS (SELECT 1 FROM agentos.agent_status WHERE name = %(name)s AND alive) AS alive;

-- name: add_dependency_if_missing
-- The task waits for another (idempotent).
INSERT INTO agentos.task_dependencies (task_id, depends_on_id)
VALUES (%(task_id)s, %(depends_on_id)s) ON CONFLICT DO NOTHING;

-- name: unblock_goals_of_stuck_subtasks
-- Goals (tasks of the planning role) waiting on a failed, blocked or cancelled subtask
-- stop waiting on it, so they come back for re-planning.
DELETE FROM agentos.task_dependencies d USING agentos.tasks c, agentos.tasks g
WHERE d.depends_on_id = c.id AND d.task_id = g.id
  AND c.status IN ('failed', 'blocked', 'cancelled')
  AND g.status IN ('inbox', 'assigned') AND g.role = %(role)s;

-- name: requeue_orphans_now
-- Enqueue every ready task that has no job, however recent.
SELECT agentos.requeue_orphans(interval '0 seconds') AS requeued;

-- name: role_load
-- Ready work and leased tasks of a role (what the worker scaler sizes from).
SELECT agentos.queue_depth(%(role)s) AS ready,
       (SELECT count(*) FROM agentos.tasks
        WHERE role = %(role)s AND lease_token IS NOT NULL) AS busy;

-- name: schedule_exists
-- Whether a schedule of that name exists.
SELECT EXISTS (SELECT 1 FROM agentos.schedules WHERE name = %(name)s) AS found;

-- name: fail_attempt
-- A holder's work failed: back to the queue with backoff (the attempt spent), or failed.
SELECT * FROM agentos.fail_attempt(%(id)s, %(token)s, %(reason)s);

-- name: last_activity_id
-- The newest activity's id (0 when there is none).
SELECT coalesce(max(id), 0) AS id FROM agentos.activities;

-- name: count_subtasks
-- How many subtasks a task has.
SELECT count(*) AS n FROM agentos.tasks WHERE parent_id = %(id)s;

-- name: find_task_by_title
-- The newest task with this title that was not cancelled.
SELECT id FROM agentos.tasks
WHERE title = %(title)s AND status <> 'cancelled' ORDER BY id DESC LIMIT 1;

-- name: running_sessions
-- Live agent sessions, oldest first (`agentos status`).
SELECT role, host, pid, agents, heartbeat_at FROM agentos.agent_sessions
WHERE status = 'running' ORDER BY started_at;

-- name: board_summary
-- Task count per status.
SELECT * FROM agentos.board_summary;

-- name: task_cost
-- LLM calls, dollars and tokens spent on one task.
SELECT count(*) AS calls, coalesce(sum(cost_usd), 0) AS cost_usd,
       coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens
FROM agentos.llm_calls WHERE task_id = %(id)s;

-- name: task_transcript
-- Every step of a task, stage by stage, in order.
SELECT stage, seq, agent, kind, tool_name, content, created_at
FROM agentos.steps WHERE task_id = %(id)s ORDER BY stage, seq;
