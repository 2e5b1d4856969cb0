-- What people do to the team, by name (loaded by agentos.sql.admin_query, run by the
-- kernel only): decide on merges the gate holds (kernel/approvals.py) and manage agents
-- as data (kernel/roster.py). Format as queries.sql: `-- name:`, a description, the SQL.

-- ------------------------------------------------------------- the gate ----

-- name: lock_task_for_decision
-- One task with its dependency ids, locked until the decision commits (a merge happens
-- while it is held, so a concurrent cancel waits for it).
SELECT t.*, coalesce((SELECT array_agg(d.depends_on_id ORDER BY d.depends_on_id)
                      FROM agentos.task_dependencies d WHERE d.task_id = t.id), '{}') AS depends_on
FROM agentos.tasks t WHERE t.id = %(id)s
FOR NO KEY UPDATE OF t;

-- name: record_approval_wait
-- The reviewer's approval that waits for a person: comment, reason and diffstat
-- (lease-checked: only the review's holder writes it).
UPDATE agentos.tasks
SET metadata = metadata || jsonb_build_object('approval', %(approval)s::jsonb)
WHERE id = %(id)s AND lease_token = %(token)s
RETURNING id;

-- name: record_approval_decision
-- What a person decided on a held merge, kept beside the review's approval.
UPDATE agentos.tasks
SET metadata = jsonb_set(metadata, '{approval,decision}', %(decision)s::jsonb, true)
WHERE id = %(id)s AND metadata ? 'approval'
RETURNING id;

-- name: count_person_rejection
-- One more rejection of a task a person sends back from approval; returns the count.
UPDATE agentos.tasks SET rejections = rejections + 1
WHERE id = %(id)s AND status = 'approval'
RETURNING rejections;

-- name: awaiting_people
-- What waits for a person (the awaiting_people view), oldest first.
SELECT * FROM agentos.awaiting_people LIMIT %(limit)s;

-- ------------------------------------------------------- agents as data ----

-- name: insert_defined_agent
-- A new agent made by a person; no row when the name is taken.
INSERT INTO agentos.agents (name, role, defined, description, model_override, instructions,
                            skills, memory, created_by)
VALUES (%(name)s, %(role)s, true, %(description)s, %(model_override)s, %(instructions)s,
        %(skills)s, %(memory)s, %(created_by)s)
ON CONFLICT (name) DO NOTHING
RETURNING *;

-- name: get_agent
-- One agent row.
SELECT * FROM agentos.agents WHERE name = %(name)s;

-- name: lock_agent
-- One agent row, locked until the change commits.
SELECT * FROM agentos.agents WHERE name = %(name)s FOR UPDATE;

-- name: update_agent
-- Change what a person may change of an agent (each field only when given).
UPDATE agentos.agents SET
    role = coalesce(%(role)s, role),
    description = coalesce(%(description)s, description),
    model_override = CASE WHEN %(set_model)s THEN %(model_override)s ELSE model_override END,
    instructions = coalesce(%(instructions)s, instructions),
    skills = coalesce(%(skills)s, skills),
    defined = defined OR %(define)s,
    updated_at = now()
WHERE name = %(name)s
RETURNING *;

-- name: delete_agent
-- Remove an agent (its steps, calls and messages stay; the trigger records it).
DELETE FROM agentos.agents WHERE name = %(name)s RETURNING name;

-- name: agent_work
-- Work an agent holds: tasks it leases, tasks assigned to it that are not finished.
SELECT id, status::text AS status FROM agentos.tasks
WHERE lease_agent = %(name)s
   OR (assignee = %(name)s AND status IN ('inbox', 'assigned', 'in_progress', 'review', 'approval'))
ORDER BY id LIMIT 20;

-- name: agent_detail
-- An agent with its liveness, current task, host and spend today.
SELECT a.*, coalesce(st.alive, false) AS alive, st.current_task, s.host, s.pid,
       (SELECT coalesce(sum(c.cost_usd), 0) FROM agentos.llm_calls c
        WHERE c.agent = a.name AND c.created_at >= date_trunc('day', now())) AS cost_today,
       (SELECT count(*) FROM agentos.llm_calls c
        WHERE c.agent = a.name AND c.created_at >= date_trunc('day', now())) AS calls_today
FROM agentos.agents a
LEFT JOIN agentos.agent_status st ON st.name = a.name
LEFT JOIN agentos.agent_sessions s ON s.id = a.session_id
WHERE a.name = %(name)s;

-- name: known_skills
-- Which of these skill names exist, with their descriptions.
SELECT name, description FROM agentos.skills WHERE name = ANY(%(names)s) ORDER BY name;

-- name: agent_overrides
-- What an agent adds to its role's configuration.
SELECT role, model_override, instructions, skills FROM agentos.agents WHERE name = %(name)s;

-- name: adopt_agents
-- Take the role's defined agents no live session hosts (agentos.adopt_agents).
SELECT name FROM agentos.adopt_agents(%(session)s, %(role)s, %(limit)s) AS name;

-- name: release_agent
-- Stop hosting an agent.
SELECT agentos.release_agent(%(session)s, %(name)s);

-- name: still_hosted
-- Of these names, the defined agents of the role this session still hosts.
SELECT name FROM agentos.agents
WHERE name = ANY(%(names)s) AND defined AND role = %(role)s AND session_id = %(session)s;

-- name: defined_roles
-- Roles that defined agents have.
SELECT DISTINCT role FROM agentos.agents WHERE defined ORDER BY role;

-- name: set_actor
-- Who is acting, for the triggers' activity rows in this transaction.
SELECT set_config('agentos.actor', %(actor)s, true);
