-- 011: recurring tasks. A schedule may carry a task template instead of waking a role:
-- each tick it fires creates one task from the template, in the transaction that
-- records the tick, so the task exists exactly when agentos.schedule_runs says the
-- tick fired (the run's primary key keeps that to once per tick, cluster-wide).
--
-- The template is the task's fields as JSON (title, description, acceptance, role,
-- assignee, priority, budget_usd, max_attempts), checked by the kernel when the schedule
-- is added and again by the task insert at each tick. Here only its shape is checked,
-- so a row written with psql is at least an object with a title.

ALTER TABLE agentos.schedules
    ADD COLUMN task_template jsonb
        CONSTRAINT schedules_task_template_shape CHECK (
            task_template IS NULL
            OR (jsonb_typeof(task_template) = 'object'
                AND jsonb_typeof(task_template -> 'title') = 'string'));

-- The task a tick created (NULL for an activation, a skipped tick, or a deleted task).
ALTER TABLE agentos.schedule_runs
    ADD COLUMN task_id bigint REFERENCES agentos.tasks (id) ON DELETE SET NULL;

CREATE INDEX schedule_runs_task_idx ON agentos.schedule_runs (task_id) WHERE task_id IS NOT NULL;
