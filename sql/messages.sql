-- Named queries of the kernel's conversations: messages, read receipts, people and
-- channels (kernel/messages.py, kernel/channels.py). Same format as queries.sql and read
-- by the same `query(name)`. Who is woken, threads and mentions are decided by the
-- messages triggers (sql/008_conversations.sql), not here.

-- name: insert_message
-- Send a message (triggers: its thread, mentions, who is woken, the activity, NOTIFY).
INSERT INTO agentos.messages (task_id, channel_id, from_agent, to_agent, kind, body, reply_to)
VALUES (%(task)s, %(channel)s, %(from_agent)s, %(to_agent)s, %(kind)s, %(body)s, %(reply_to)s)
RETURNING *;

-- name: set_message_wake
-- Whether the messages of this transaction wake anyone ('on' or 'off', transaction-local).
SELECT set_config('agentos.wake', %(wake)s, true);

-- name: addressee_kind
-- Whether a name is an agent's or a person's (no row: neither).
SELECT 'agent' AS kind FROM agentos.agents WHERE name = %(name)s
UNION ALL
SELECT 'person' FROM agentos.people WHERE name = %(name)s
LIMIT 1;

-- name: ensure_person
-- Register a person the first time they write (a name of an agent's is refused).
INSERT INTO agentos.people (name) VALUES (%(name)s) ON CONFLICT DO NOTHING;

-- name: get_message
-- One message, with its channel's name.
SELECT m.*, c.name AS channel FROM agentos.messages m
LEFT JOIN agentos.channels c ON c.id = m.channel_id
WHERE m.id = %(id)s;

-- name: mark_read
-- Receipts for one reader (the existing ones keep their time); returns the new ones.
INSERT INTO agentos.message_reads (message_id, reader)
SELECT m.id, %(reader)s FROM agentos.messages m WHERE m.id = ANY(%(ids)s::bigint[])
ON CONFLICT DO NOTHING
RETURNING message_id;

-- name: agent_mail
-- An agent's mail, newest first: addressed to it, broadcasts, its channels, mentions, and
-- every message on a task it holds or is assigned (its own are not its mail). With no
-- agent: every message. Unread is per reader (message_reads).
SELECT m.*, c.name AS channel FROM agentos.messages m
LEFT JOIN agentos.channels c ON c.id = m.channel_id
WHERE (%(task)s::bigint IS NULL OR m.task_id = %(task)s::bigint)
  AND (%(agent)s::text IS NULL
       OR agentos.message_for(m, %(agent)s::text)
       OR (m.from_agent IS DISTINCT FROM %(agent)s::text
           AND m.task_id IN (SELECT t.id FROM agentos.tasks t
                             WHERE t.lease_agent = %(agent)s::text
                                OR t.assignee = %(agent)s::text)))
  AND (NOT %(unread)s::boolean
       OR (%(agent)s::text IS NULL AND m.read_at IS NULL)
       OR (%(agent)s::text IS NOT NULL AND NOT agentos.message_read_by(m, %(agent)s::text)))
ORDER BY m.id DESC
LIMIT %(limit)s;

-- name: task_thread
-- The latest messages on a task's thread, newest first.
SELECT m.*, NULL::text AS channel FROM agentos.messages m
WHERE m.task_id = %(task)s
ORDER BY m.id DESC
LIMIT %(limit)s;

-- name: pending_answers
-- What an agent owes an answer to, oldest first: messages that woke it, and questions
-- on the thread of a task it holds that nobody was there to be woken for; not read by
-- it (reading is handling) and not answered by it.
SELECT m.*, c.name AS channel FROM agentos.messages m
LEFT JOIN agentos.channels c ON c.id = m.channel_id
WHERE m.from_agent IS DISTINCT FROM %(agent)s
  AND (m.woken @> ARRAY[%(agent)s::text]
       OR (m.task_id IN (SELECT t.id FROM agentos.tasks t WHERE t.lease_agent = %(agent)s)
           AND m.to_agent IS NULL AND m.woken = '{}'
           AND m.kind IN ('question', 'comment')
           AND (m.kind = 'question'
                OR NOT EXISTS (SELECT 1 FROM agentos.agents a WHERE a.name = m.from_agent))
           AND NOT EXISTS (SELECT 1 FROM agentos.messages r
                           WHERE r.reply_to = m.id AND r.kind = 'answer')))
  AND NOT EXISTS (SELECT 1 FROM agentos.message_reads r
                  WHERE r.message_id = m.id AND r.reader = %(agent)s)
  AND NOT EXISTS (SELECT 1 FROM agentos.messages r
                  WHERE r.reply_to = m.id AND r.from_agent = %(agent)s)
ORDER BY m.id
LIMIT %(limit)s;

-- name: answer_message
-- Answer a message: to whoever wrote it, in its thread (same task or channel), once per
-- answerer; the question is marked read by the answerer in the same statement.
WITH q AS (SELECT * FROM agentos.messages WHERE id = %(question)s),
receipt AS (
    INSERT INTO agentos.message_reads (message_id, reader)
    SELECT q.id, %(from_agent)s FROM q
    ON CONFLICT DO NOTHING)
INSERT INTO agentos.messages (task_id, channel_id, from_agent, to_agent, kind, body, reply_to)
SELECT q.task_id, q.channel_id, %(from_agent)s, q.from_agent, 'answer', %(body)s, q.id FROM q
WHERE NOT EXISTS (SELECT 1 FROM agentos.messages a
                  WHERE a.reply_to = q.id AND a.from_agent = %(from_agent)s
                    AND a.kind = 'answer')
RETURNING *, NULL::text AS channel;

-- name: answer_context
-- What an agent answering sees of itself: its memory, and its current task (or the
-- message's task when it holds none).
SELECT a.name, a.role, a.memory, a.status AS agent_status, t.id AS task_id, t.title,
       t.status::text AS task_status, t.lease_agent
FROM agentos.agents a
LEFT JOIN agentos.tasks t ON t.id = coalesce(a.current_task_id, %(task)s::bigint)
WHERE a.name = %(agent)s;

-- name: agent_recent_steps
-- An agent's last steps on a task, newest first: what each said, called or got back
-- (the step's text, a reply's content, a result's output, a call's arguments), cut at
-- 600 characters, and whether a tool result was ok.
SELECT s.stage, s.seq, s.kind, s.tool_name,
       left(coalesce(s.content->>'content', s.content->>'text', s.content->>'output',
                     (s.content->'arguments')::text, s.content::text), 600) AS text,
       (s.content->>'ok')::boolean AS ok, s.created_at
FROM agentos.steps s
WHERE s.task_id = %(task)s AND s.agent = %(agent)s
ORDER BY s.id DESC
LIMIT %(limit)s;

-- name: thread_before
-- The messages of a thread before one of them, newest first.
SELECT m.*, NULL::text AS channel FROM agentos.messages m
WHERE m.thread_id = %(thread)s AND m.id < %(before)s
ORDER BY m.id DESC
LIMIT %(limit)s;

-- name: answers_to
-- The answers to a message, oldest first.
SELECT m.*, c.name AS channel FROM agentos.messages m
LEFT JOIN agentos.channels c ON c.id = m.channel_id
WHERE m.reply_to = %(id)s AND m.kind = 'answer'
ORDER BY m.id;

-- name: conversation
-- A reader's conversations, newest first, after an id: their mail and what they wrote,
-- or one task's thread, one channel, or what passed between them and one agent (to it,
-- asked of it, answered by it). Each row says whether the reader has read it.
SELECT m.*, c.name AS channel, agentos.message_read_by(m, %(me)s) AS read
FROM agentos.messages m
LEFT JOIN agentos.channels c ON c.id = m.channel_id
WHERE m.id > %(after)s
  AND (%(task)s::bigint IS NULL OR m.task_id = %(task)s::bigint)
  AND (%(channel)s::bigint IS NULL OR m.channel_id = %(channel)s::bigint)
  AND (%(with)s::text IS NULL OR agentos.message_with(m, %(me)s, %(with)s::text))
  AND (%(task)s::bigint IS NOT NULL OR %(channel)s::bigint IS NOT NULL
       OR %(with)s::text IS NOT NULL
       OR m.from_agent = %(me)s OR agentos.message_for(m, %(me)s))
  AND (NOT %(unread)s::boolean OR NOT agentos.message_read_by(m, %(me)s))
ORDER BY m.id DESC
LIMIT %(limit)s;

-- name: unread_count
-- How many of a reader's mail they have not read.
SELECT agentos.unread_for(%(me)s) AS n;

-- name: insert_channel
-- Create a channel.
INSERT INTO agentos.channels (name, description, created_by)
VALUES (%(name)s, %(description)s, %(created_by)s)
RETURNING *;

-- name: add_channel_member
-- Add a member to a channel (idempotent).
INSERT INTO agentos.channel_members (channel_id, member) VALUES (%(channel)s, %(member)s)
ON CONFLICT DO NOTHING;

-- name: channel_by_name
-- One channel by name, with its members.
SELECT c.*, coalesce((SELECT array_agg(cm.member ORDER BY cm.member)
                      FROM agentos.channel_members cm WHERE cm.channel_id = c.id), '{}')
           AS members
FROM agentos.channels c WHERE c.name = %(name)s;

-- name: list_channels
-- Every channel with its members, message count, last message and the reader's unread.
SELECT c.*, coalesce((SELECT array_agg(cm.member ORDER BY cm.member)
                      FROM agentos.channel_members cm WHERE cm.channel_id = c.id), '{}')
           AS members,
       (SELECT count(*) FROM agentos.messages m WHERE m.channel_id = c.id) AS messages,
       (SELECT max(m.created_at) FROM agentos.messages m WHERE m.channel_id = c.id)
           AS last_message_at,
       (SELECT count(*) FROM agentos.messages m
        WHERE m.channel_id = c.id AND NOT agentos.message_read_by(m, %(me)s)) AS unread
FROM agentos.channels c
ORDER BY c.name
LIMIT %(limit)s;

-- name: thread_messages
-- A whole thread, oldest first, each row saying whether the reader has read it.
SELECT m.*, c.name AS channel, agentos.message_read_by(m, %(me)s) AS read
FROM agentos.messages m
LEFT JOIN agentos.channels c ON c.id = m.channel_id
WHERE m.thread_id = %(thread)s
ORDER BY m.id
LIMIT %(limit)s;

-- name: messages_by_ids
-- Messages by id (what activity lines point to).
SELECT m.*, c.name AS channel FROM agentos.messages m
LEFT JOIN agentos.channels c ON c.id = m.channel_id
WHERE m.id = ANY(%(ids)s::bigint[])
ORDER BY m.id;
