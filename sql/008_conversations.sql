-- 008: conversations. People are addressees, replies go back to whoever wrote in the
-- same thread, read receipts are per reader, channels group agents and people.
--
--   * agentos.people: the persons who talk to the team (`agentos message send` as
--     AGENTOS_USER or the login name). Agents and people share one namespace: a person
--     cannot take an agent's name, nor an agent a person's.
--   * messages gain a thread (thread_id: the first message's id; reply_to: the message
--     answered), a channel, the @mentions found in the body and `woken`: the agents this
--     message woke, decided here (so a psql insert wakes exactly as the CLI does) and
--     kept on the row, so who was asked is never a guess.
--   * agentos.message_reads: one row per (message, reader). A broadcast read by one
--     agent stays unread for the others; `read_at` keeps meaning "read by its addressee".
--   * agentos.channels / channel_members: a named group of agents and people. A post
--     wakes only the members it @mentions. A task's thread is its channel (`task-N`),
--     open to all: the holder answers it, and any agent mentioned there is woken.
--   * the message.sent activity holds the whole message's id and says when its text was
--     cut, so the log never ends in a 200-character dead end.
--
-- Who is woken (messages_before_insert), never for answers, reviews, status notes,
-- broadcasts, or when the writer sets agentos.wake = 'off' for its transaction:
--   * the addressee (to_agent), when it is an agent;
--   * on a task's thread with no addressee: the task's holder (lease_agent), for a
--     question or anything a person writes, and every agent @mentioned;
--   * in a channel: the agents @mentioned that are members of it;
--   * never the writer itself.
-- A task message nobody holds the task for wakes nobody: it waits for whoever takes the
-- task next (the runner answers it when the work starts, and it is in the prompt).

-- ---------------------------------------------------------------- people ----

CREATE TABLE agentos.people (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION agentos.people_name_free() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM agentos.agents WHERE name = NEW.name) THEN
        RAISE EXCEPTION 'the name % belongs to an agent; a person needs another (AGENTOS_USER)',
            NEW.name USING ERRCODE = '23505';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER people_name_free
BEFORE INSERT OR UPDATE OF name ON agentos.people
FOR EACH ROW EXECUTE FUNCTION agentos.people_name_free();

CREATE FUNCTION agentos.agents_name_free() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM agentos.people WHERE name = NEW.name) THEN
        RAISE EXCEPTION 'the name % belongs to a person; an agent needs another', NEW.name
            USING ERRCODE = '23505';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER agents_name_free
BEFORE INSERT OR UPDATE OF name ON agentos.agents
FOR EACH ROW EXECUTE FUNCTION agentos.agents_name_free();

-- -------------------------------------------------------------- channels ----

CREATE TABLE agentos.channels (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- task-N is the name of task N's thread: never a channel of its own
    name        text NOT NULL UNIQUE
                CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$' AND name !~ '^task-[0-9]+$'),
    description text NOT NULL DEFAULT ''
                CHECK (description !~ '[\x01-\x1f\x7f-\x9f]' AND length(description) <= 500),
    created_by  text NOT NULL DEFAULT agentos.current_actor(),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Members are agents or people (one namespace), checked by the kernel when added.
CREATE TABLE agentos.channel_members (
    channel_id bigint NOT NULL REFERENCES agentos.channels (id) ON DELETE CASCADE,
    member     text NOT NULL CHECK (member ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, member)
);
CREATE INDEX channel_members_member_idx ON agentos.channel_members (member);

-- -------------------------------------------------------------- messages ----

ALTER TABLE agentos.messages
    ADD COLUMN reply_to   bigint REFERENCES agentos.messages (id) ON DELETE SET NULL,
    ADD COLUMN thread_id  bigint,
    ADD COLUMN channel_id bigint REFERENCES agentos.channels (id) ON DELETE CASCADE,
    ADD COLUMN mentions   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN woken      text[] NOT NULL DEFAULT '{}',
    ADD CONSTRAINT messages_task_or_channel CHECK (task_id IS NULL OR channel_id IS NULL);

UPDATE agentos.messages SET thread_id = id;
ALTER TABLE agentos.messages ALTER COLUMN thread_id SET NOT NULL;

CREATE INDEX messages_thread_idx ON agentos.messages (thread_id, id);
CREATE INDEX messages_channel_idx ON agentos.messages (channel_id, id) WHERE channel_id IS NOT NULL;
CREATE INDEX messages_reply_idx ON agentos.messages (reply_to) WHERE reply_to IS NOT NULL;
CREATE INDEX messages_to_idx ON agentos.messages (to_agent, id) WHERE to_agent IS NOT NULL;
CREATE INDEX messages_from_idx ON agentos.messages (from_agent, id);
CREATE INDEX messages_woken_idx ON agentos.messages USING gin (woken);
CREATE INDEX messages_mentions_idx ON agentos.messages USING gin (mentions);
CREATE INDEX messages_broadcast_idx ON agentos.messages (id)
    WHERE to_agent IS NULL AND task_id IS NULL AND channel_id IS NULL;

-- ---------------------------------------------------------- read receipts ----

CREATE TABLE agentos.message_reads (
    message_id bigint NOT NULL REFERENCES agentos.messages (id) ON DELETE CASCADE,
    reader     text NOT NULL,
    read_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, reader)
);
CREATE INDEX message_reads_reader_idx ON agentos.message_reads (reader, message_id);

-- What the single column knew: the addressee read it. (A broadcast's read_at named no
-- reader; it is unread again for everyone.)
INSERT INTO agentos.message_reads (message_id, reader, read_at)
SELECT id, to_agent, read_at FROM agentos.messages
WHERE read_at IS NOT NULL AND to_agent IS NOT NULL;

-- The addressee's receipt is also the message's read_at (what older readers, and the
-- roles' heartbeat preconditions, look at). Screens showing unread counts are told.
CREATE FUNCTION agentos.message_reads_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE agentos.messages SET read_at = NEW.read_at
    WHERE id = NEW.message_id AND to_agent = NEW.reader AND read_at IS NULL;
    PERFORM agentos.notify_once('agentos_message', jsonb_build_object('read_by', NEW.reader));
    RETURN NULL;
END;
$$;

CREATE TRIGGER message_reads_after_insert
AFTER INSERT ON agentos.message_reads
FOR EACH ROW EXECUTE FUNCTION agentos.message_reads_after_insert();

-- -------------------------------------------------------------- triggers ----

-- The @names in a text that are agents or people, sorted (a trailing '.' or ',' is
-- punctuation, not part of the name).
CREATE FUNCTION agentos.message_mentions(p_body text) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(DISTINCT n ORDER BY n), '{}')
    FROM (SELECT lower(m[1]) AS n
          FROM regexp_matches(p_body, '(?:^|[^A-Za-z0-9_.@-])@([A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9_-])?)', 'g') AS m) s
    WHERE EXISTS (SELECT 1 FROM agentos.agents a WHERE a.name = s.n)
       OR EXISTS (SELECT 1 FROM agentos.people p WHERE p.name = s.n)
$$;

-- BEFORE INSERT: the writer, the thread, the mentions and who is woken.
CREATE FUNCTION agentos.messages_before_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
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

CREATE TRIGGER messages_before_insert
BEFORE INSERT ON agentos.messages
FOR EACH ROW EXECUTE FUNCTION agentos.messages_before_insert();

-- AFTER INSERT: the activity (its text cut at 200 characters, the message id in its
-- data), a wake-up for each woken agent, and the NOTIFY. An agent busy on a task
-- already has a wake-up queued after the first message: it is told anyway (notify_work),
-- so the runner answers between the task's steps instead of after the task.
CREATE OR REPLACE FUNCTION agentos.messages_after_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
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


-- --------------------------------------------------------------- mailbox ----

-- Whether a message is a reader's mail: addressed to them, a broadcast, a post in a
-- channel they belong to, or mentioning them. Their own messages are not their mail.
CREATE FUNCTION agentos.message_for(m agentos.messages, p_reader text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT m.from_agent IS DISTINCT FROM p_reader AND (
        m.to_agent = p_reader
        OR (m.to_agent IS NULL AND m.task_id IS NULL AND m.channel_id IS NULL)
        OR p_reader = ANY (m.mentions)
        OR EXISTS (SELECT 1 FROM agentos.channel_members cm
                   WHERE cm.channel_id = m.channel_id AND cm.member = p_reader))
$$;

-- Whether the reader has read the message (their own messages count as read).
CREATE FUNCTION agentos.message_read_by(m agentos.messages, p_reader text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT m.from_agent IS NOT DISTINCT FROM p_reader
        OR EXISTS (SELECT 1 FROM agentos.message_reads r
                   WHERE r.message_id = m.id AND r.reader = p_reader)
$$;

-- Whether a message passed between a reader and someone else: one wrote to the other,
-- the reader's message woke them, or they answered it to the reader.
CREATE FUNCTION agentos.message_with(m agentos.messages, p_reader text, p_other text)
RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT (m.from_agent = p_reader AND (m.to_agent = p_other OR p_other = ANY (m.woken)))
        OR (m.from_agent = p_other AND m.to_agent = p_reader)
        OR EXISTS (SELECT 1 FROM agentos.messages a
                   WHERE a.reply_to = m.id AND a.from_agent = p_other AND a.to_agent = p_reader)
$$;

-- How many of a reader's mail (as message_for) they have not read: one scan of the
-- indexes the mail's four parts have (to_agent, broadcasts, mentions, channel_id), what
-- a screen's header counts after every message.
CREATE FUNCTION agentos.unread_for(p_reader text) RETURNS bigint
LANGUAGE sql STABLE AS $$
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

DO $$
BEGIN
    -- 005's default privileges cover what this file creates for the agents' role; grant
    -- explicitly too where 005 could not run its grants (a warning was raised then).
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'agentos_agent') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON agentos.people, agentos.channels,
            agentos.channel_members, agentos.message_reads TO agentos_agent;
        GRANT USAGE, SELECT, UPDATE ON SEQUENCE agentos.channels_id_seq TO agentos_agent;
        GRANT EXECUTE ON FUNCTION agentos.message_mentions(text),
            agentos.message_for(agentos.messages, text),
            agentos.message_read_by(agentos.messages, text),
            agentos.message_with(agentos.messages, text, text),
            agentos.unread_for(text) TO agentos_agent;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END;
$$;
