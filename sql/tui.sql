-- Mission control's reads (agentos tui), run only by agentos.kernel.views.
--
-- Same format as queries.sql: `-- name: NAME`, a one-line description, the SQL (psycopg
-- named placeholders). Every block reads at most one screen's worth of rows: each list
-- has a LIMIT and each count is done by SQL, so 10,000 tasks cost what 100 do. Time
-- comes in as %(now)s / %(day)s from the screen's clock (River's `coalesce(@now, now())`
-- habit), so tests pin it. Nothing here writes: actions go through the kernel's
-- functions, and the queue line of the header is the kernel's queue_depth view.
--
-- The filter (`/` in the TUI) is one pattern %(like)s ('%text%'), or NULL for none,
-- plus %(qid)s when the text is a task id (`12` or `#12`).

-- name: header_stats
-- Agents online / registered, tasks done today, spend today, what waits for a person.
SELECT
  (SELECT count(*) FROM agentos.agents) AS registered,
  (SELECT count(*) FROM agentos.agents a JOIN agentos.agent_sessions s ON s.id = a.session_id
    WHERE a.status <> 'offline'
      AND agentos.session_alive(s.status, s.heartbeat_at, s.lease_seconds, %(now)s)) AS online,
  (SELECT count(*) FROM agentos.tasks
    WHERE status = 'done' AND completed_at >= %(day)s) AS done_today,
  (SELECT coalesce(sum(cost_usd), 0) FROM agentos.llm_calls
    WHERE created_at >= %(day)s) AS spend_today,
  (SELECT count(*) FROM agentos.awaiting_people) AS awaiting;

-- name: agents
-- Agents with liveness judged at %(now)s, their current task and today's spend.
SELECT a.name, a.role, a.status, a.model, a.current_task_id, t.title AS current_task,
       greatest(a.last_heartbeat, s.heartbeat_at) AS last_heartbeat,
       s.status AS session_status,
       agentos.session_alive(s.status, s.heartbeat_at, s.lease_seconds, %(now)s) AS alive,
       coalesce((SELECT sum(c.cost_usd) FROM agentos.llm_calls c
                 WHERE c.agent = a.name AND c.created_at >= %(day)s), 0) AS spend_today,
       count(*) OVER () AS total
FROM agentos.agents a
LEFT JOIN agentos.agent_sessions s ON s.id = a.session_id
LEFT JOIN agentos.tasks t ON t.id = a.current_task_id
ORDER BY a.role, a.name
LIMIT %(limit)s;

-- name: board_counts
-- Tasks per status under the filter (the column counts).
SELECT t.status::text AS status, count(*) AS n
FROM agentos.tasks t
WHERE (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
       OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
GROUP BY t.status;

-- name: board_cards
-- The first cards of each column under the filter, in column order (indexed per status).
(SELECT 0 AS col, t.id, t.status::text AS status, t.priority, left(t.title, 200) AS title, t.role,
        coalesce(t.lease_agent, t.assignee) AS assignee, t.created_at, t.updated_at,
        t.attempts, t.max_attempts
 FROM agentos.tasks t
 WHERE t.status = 'inbox'
   AND (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
        OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
 ORDER BY t.priority DESC, t.id LIMIT %(l0)s)
UNION ALL
(SELECT 1, t.id, t.status::text, t.priority, left(t.title, 200), t.role,
        coalesce(t.lease_agent, t.assignee), t.created_at, t.updated_at, t.attempts, t.max_attempts
 FROM agentos.tasks t
 WHERE t.status = 'assigned'
   AND (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
        OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
 ORDER BY t.priority DESC, t.id LIMIT %(l1)s)
UNION ALL
(SELECT 2, t.id, t.status::text, t.priority, left(t.title, 200), t.role,
        coalesce(t.lease_agent, t.assignee), t.created_at, t.updated_at, t.attempts, t.max_attempts
 FROM agentos.tasks t
 WHERE t.status = 'in_progress'
   AND (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
        OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
 ORDER BY t.priority DESC, t.id LIMIT %(l2)s)
UNION ALL
(SELECT 3, t.id, t.status::text, t.priority, left(t.title, 200), t.role,
        coalesce(t.lease_agent, t.assignee), t.created_at, t.updated_at, t.attempts, t.max_attempts
 FROM agentos.tasks t
 WHERE t.status = 'review'
   AND (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
        OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
 ORDER BY t.priority DESC, t.id LIMIT %(l3)s)
UNION ALL
(SELECT 4, t.id, t.status::text, t.priority, left(t.title, 200), t.role,
        coalesce(t.lease_agent, t.assignee), t.created_at, t.updated_at, t.attempts, t.max_attempts
 FROM agentos.tasks t
 WHERE t.status = 'approval'
   AND (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
        OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
 ORDER BY t.updated_at, t.id LIMIT %(l4)s)
UNION ALL
(SELECT 5, t.id, t.status::text, t.priority, left(t.title, 200), t.role,
        coalesce(t.lease_agent, t.assignee), t.created_at, t.updated_at, t.attempts, t.max_attempts
 FROM agentos.tasks t
 WHERE t.status = 'done'
   AND (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
        OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
 ORDER BY t.completed_at DESC NULLS LAST, t.id DESC LIMIT %(l5)s)
UNION ALL
(SELECT 6, t.id, t.status::text, t.priority, left(t.title, 200), t.role,
        coalesce(t.lease_agent, t.assignee), t.created_at, t.updated_at, t.attempts, t.max_attempts
 FROM agentos.tasks t
 WHERE t.status IN ('blocked', 'failed', 'cancelled')
   AND (%(like)s::text IS NULL OR t.title ILIKE %(like)s OR t.role ILIKE %(like)s
        OR coalesce(t.lease_agent, t.assignee, '') ILIKE %(like)s OR t.id = %(qid)s::bigint)
 ORDER BY array_position(ARRAY['blocked', 'failed', 'cancelled']::agentos.task_status[], t.status),
          t.updated_at DESC, t.id DESC
 LIMIT %(l6)s);

-- name: feed
-- The newest activities under the filter, newest first.
SELECT a.id, a.created_at, a.kind, a.actor, a.task_id, left(a.message, 300) AS message
FROM agentos.activities a
WHERE (%(like)s::text IS NULL OR a.message ILIKE %(like)s OR a.kind ILIKE %(like)s
       OR a.actor ILIKE %(like)s OR a.task_id = %(qid)s::bigint)
ORDER BY a.id DESC
LIMIT %(limit)s;

-- name: task
-- One task row with its budget and holder.
SELECT t.*, t.status::text AS status, coalesce(t.lease_agent, t.assignee) AS holder
FROM agentos.tasks t WHERE t.id = %(id)s;

-- name: task_depends_on
-- The tasks this task waits for.
SELECT t.id, left(t.title, 200) AS title, t.status::text AS status
FROM agentos.task_dependencies d JOIN agentos.tasks t ON t.id = d.depends_on_id
WHERE d.task_id = %(id)s ORDER BY t.id LIMIT 100;

-- name: task_dependents
-- The tasks that wait for this task.
SELECT t.id, left(t.title, 200) AS title, t.status::text AS status
FROM agentos.task_dependencies d JOIN agentos.tasks t ON t.id = d.task_id
WHERE d.depends_on_id = %(id)s ORDER BY t.id LIMIT 100;

-- name: task_subtasks
-- The first subtasks of a task and how many there are.
SELECT t.id, left(t.title, 200) AS title, t.status::text AS status, count(*) OVER () AS total
FROM agentos.tasks t WHERE t.parent_id = %(id)s ORDER BY t.id LIMIT %(limit)s;

-- name: task_steps
-- The last steps of a task's transcript (content cut at 4000 characters), oldest first.
SELECT * FROM (
    SELECT s.id, s.stage, s.seq, s.agent, s.attempt, s.kind, s.tool_name,
           left(s.content::text, 4000) AS content, length(s.content::text) > 4000 AS truncated,
           s.created_at, count(*) OVER () AS total
    FROM agentos.steps s WHERE s.task_id = %(id)s
    ORDER BY s.id DESC LIMIT %(limit)s) last
ORDER BY id;

-- name: task_messages
-- The last messages about a task, oldest first.
SELECT * FROM (
    SELECT m.id, m.created_at, m.from_agent, m.to_agent, m.kind, left(m.body, 4000) AS body
    FROM agentos.messages m WHERE m.task_id = %(id)s ORDER BY m.id DESC LIMIT %(limit)s) last
ORDER BY id;

-- name: task_activities
-- The last activities of a task, newest first.
SELECT a.id, a.created_at, a.kind, a.actor, a.task_id, left(a.message, 300) AS message
FROM agentos.activities a WHERE a.task_id = %(id)s ORDER BY a.id DESC LIMIT %(limit)s;

-- name: task_cost
-- LLM calls, tokens and dollars spent on a task.
SELECT count(*) AS calls, coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(completion_tokens), 0) AS completion_tokens,
       coalesce(sum(cost_usd), 0) AS cost_usd
FROM agentos.llm_calls WHERE task_id = %(id)s;

-- name: task_budget
-- What the budget form shows: status, budget and what was spent.
SELECT t.id, t.title, t.status::text AS status, t.budget_usd,
       coalesce((SELECT sum(c.cost_usd) FROM agentos.llm_calls c WHERE c.task_id = t.id), 0)
           AS spent
FROM agentos.tasks t WHERE t.id = %(id)s;

-- name: server_now
-- The server's clock (the screen's clock follows it).
SELECT now() AS now;

-- name: agent_names
-- Registered agents' names (the message form's suggestions).
SELECT name FROM agentos.agents ORDER BY name LIMIT %(limit)s;

-- name: role_names
-- Roles in use, and the three built-in ones (the new-task form's suggestions).
SELECT role FROM agentos.agents
UNION SELECT 'worker' UNION SELECT 'reviewer' UNION SELECT 'orchestrator'
ORDER BY 1 LIMIT %(limit)s;

-- name: header_unread
-- How many of a person's messages they have not read (agentos.unread_for, sql/008).
SELECT agentos.unread_for(%(me)s) AS unread;

-- name: conversation_agents
-- Agents to talk to: what each sent the reader unread, and the last message between them.
SELECT a.name, a.role,
       (SELECT count(*) FROM agentos.messages m
        WHERE m.from_agent = a.name AND m.to_agent = %(me)s
          AND NOT agentos.message_read_by(m, %(me)s)) AS unread,
       (SELECT max(m.id) FROM agentos.messages m
        WHERE (m.from_agent = a.name AND m.to_agent = %(me)s)
           OR (m.from_agent = %(me)s AND m.to_agent = a.name)) AS last_id
FROM agentos.agents a
ORDER BY a.name
LIMIT %(limit)s;

-- name: conversation_channels
-- Channels, with the reader's unread mail in each and whether they belong to it.
SELECT c.name, left(c.description, 200) AS description,
       EXISTS (SELECT 1 FROM agentos.channel_members cm
               WHERE cm.channel_id = c.id AND cm.member = %(me)s) AS member,
       (SELECT count(*) FROM agentos.messages m
        WHERE m.channel_id = c.id AND agentos.message_for(m, %(me)s)
          AND NOT agentos.message_read_by(m, %(me)s)) AS unread,
       (SELECT max(m.id) FROM agentos.messages m WHERE m.channel_id = c.id) AS last_id
FROM agentos.channels c
ORDER BY c.name
LIMIT %(limit)s;

-- name: conversation_tasks
-- Tasks with messages (the latest 5000 messages looked at), latest conversation first,
-- with the reader's unread mail on each.
SELECT t.id, left(t.title, 200) AS title, t.status::text AS status, count(*) AS messages,
       count(*) FILTER (WHERE agentos.message_for(m, %(me)s)
                          AND NOT agentos.message_read_by(m, %(me)s)) AS unread,
       max(m.id) AS last_id
FROM (SELECT * FROM agentos.messages WHERE task_id IS NOT NULL ORDER BY id DESC LIMIT 5000) m
JOIN agentos.tasks t ON t.id = m.task_id
GROUP BY t.id
ORDER BY max(m.id) DESC
LIMIT %(limit)s;

-- name: conversation_messages
-- The last messages of one conversation, oldest first: the reader's mail and their own
-- (no agent, channel or task given), what passed between them and an agent, a channel,
-- or a task's thread. `mine`: the message is the reader's mail (its read flag counts).
SELECT * FROM (
    SELECT m.id, m.created_at, m.from_agent, m.to_agent, m.task_id, c.name AS channel, m.kind,
           left(m.body, 4000) AS body, m.reply_to,
           agentos.message_read_by(m, %(me)s) AS read, agentos.message_for(m, %(me)s) AS mine
    FROM agentos.messages m
    LEFT JOIN agentos.channels c ON c.id = m.channel_id
    WHERE (%(agent)s::text IS NULL OR agentos.message_with(m, %(me)s, %(agent)s::text))
      AND (%(channel)s::text IS NULL OR c.name = %(channel)s::text)
      AND (%(task)s::bigint IS NULL OR m.task_id = %(task)s::bigint)
      AND (%(agent)s::text IS NOT NULL OR %(channel)s::text IS NOT NULL
           OR %(task)s::bigint IS NOT NULL
           OR m.from_agent = %(me)s OR agentos.message_for(m, %(me)s))
    ORDER BY m.id DESC
    LIMIT %(limit)s) last
ORDER BY id;
