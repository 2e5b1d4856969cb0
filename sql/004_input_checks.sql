-- 004: bad input changes nothing, whoever writes it (the kernel, psql, an agent's tool).
--
-- * Amounts are finite and not negative. PostgreSQL's numeric NaN compares greater than
--   every number, so `limit_usd >= 0` admitted NaN, and a NaN limit then granted every
--   reservation; numeric(14, 6) already refuses Infinity.
-- * Text that reaches a terminal (the TUI, `agentos log`) cannot carry control
--   characters: titles are one line; bodies keep newlines and tabs only. The classes are
--   those of agentos.kernel.models (one_line, plain_text).
-- * A schedule for an agent names an agent that exists.
-- * Schedule preconditions are evaluated by one function, agentos.eval_precondition:
--   read-only, one SELECT, and (where the migrating role may create roles) with the
--   privileges of a NOLOGIN role that can only read agentos tables: no file access.
--
-- Rows written before these checks are repaired first (a control character becomes
-- U+FFFD, a NaN amount becomes 0, which blocks spending until someone raises the
-- budget), so the constraints hold for every row and updates of old rows keep working.

-- ------------------------------------------------------------------ amounts ----

UPDATE agentos.budgets SET limit_usd = 0 WHERE limit_usd = 'NaN';
UPDATE agentos.budgets SET spent_usd = 0 WHERE spent_usd = 'NaN';
UPDATE agentos.budgets SET reserved_usd = 0 WHERE reserved_usd = 'NaN';
UPDATE agentos.tasks SET budget_usd = 0 WHERE budget_usd = 'NaN';
UPDATE agentos.llm_calls SET cost_usd = 0 WHERE cost_usd = 'NaN' OR cost_usd < 0;

ALTER TABLE agentos.budgets
    ADD CONSTRAINT budgets_amounts_are_numbers
    CHECK (limit_usd <> 'NaN' AND spent_usd <> 'NaN' AND reserved_usd <> 'NaN');
ALTER TABLE agentos.tasks
    ADD CONSTRAINT tasks_budget_is_a_number CHECK (budget_usd <> 'NaN');
ALTER TABLE agentos.llm_calls
    ADD CONSTRAINT llm_calls_cost_is_an_amount CHECK (cost_usd >= 0 AND cost_usd <> 'NaN');

-- An amount a budget function may take: known, finite, not negative.
CREATE FUNCTION agentos.check_amount(p_what text, p_amount numeric) RETURNS numeric
LANGUAGE plpgsql IMMUTABLE AS $$
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

-- Same contract as in 002; the amounts are checked first, so a NaN or negative estimate
-- can neither pass the comparison nor lower another caller's reservation.
CREATE OR REPLACE FUNCTION agentos.reserve_budget(p_scopes text[], p_limits numeric[], p_estimate numeric)
RETURNS text
LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION agentos.settle_budget(p_scopes text[], p_estimate numeric, p_actual numeric)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM agentos.check_amount('the estimate', p_estimate);
    PERFORM agentos.check_amount('the actual cost', p_actual);
    UPDATE agentos.budgets
    SET reserved_usd = greatest(reserved_usd - p_estimate, 0),
        spent_usd = spent_usd + p_actual, updated_at = now()
    WHERE scope = ANY(p_scopes);
END;
$$;

-- --------------------------------------------------------------------- text ----

UPDATE agentos.tasks
SET title = regexp_replace(title, '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]',
                           U&'\FFFD', 'g')
WHERE title ~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]';
UPDATE agentos.tasks
SET description = regexp_replace(description, '[\x01-\x08\x0b-\x1f\x7f-\x9f]', U&'\FFFD', 'g'),
    acceptance = regexp_replace(acceptance, '[\x01-\x08\x0b-\x1f\x7f-\x9f]', U&'\FFFD', 'g')
WHERE description ~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]' OR acceptance ~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]';
UPDATE agentos.messages
SET body = regexp_replace(body, '[\x01-\x08\x0b-\x1f\x7f-\x9f]', U&'\FFFD', 'g')
WHERE body ~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]';

ALTER TABLE agentos.tasks
    ADD CONSTRAINT tasks_title_is_one_plain_line
    CHECK (title !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]'),
    ADD CONSTRAINT tasks_text_is_plain
    CHECK (description !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]'
           AND acceptance !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]');
ALTER TABLE agentos.messages
    ADD CONSTRAINT messages_body_is_plain CHECK (body !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f]');

-- ---------------------------------------------------------------- schedules ----

-- NOT VALID: a schedule stored earlier for an agent that never existed is kept (and
-- still never fires work anyone takes); every new or retargeted schedule is checked.
ALTER TABLE agentos.schedules
    ADD CONSTRAINT schedules_target_agent_fkey FOREIGN KEY (target_agent)
    REFERENCES agentos.agents (name) ON UPDATE CASCADE ON DELETE CASCADE NOT VALID;

-- Evaluate a schedule's precondition: true when the expression is true, false when it
-- is false or NULL, an error when it is not one boolean expression.
--   * one SELECT only: a cursor cannot be opened on two statements, so
--     `true) IS TRUE; DROP TABLE ...` fails with "cannot open multi-query plan";
--   * only in a read-only transaction (the caller sets it, with a statement timeout);
--   * SECURITY DEFINER, owned below by agentos_precondition where that role can be made:
--     the expression runs with that role's privileges (SELECT on agentos tables, no file
--     functions), and a security-definer function may not SET ROLE back.
CREATE FUNCTION agentos.eval_precondition(p_expr text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, agentos, pg_temp
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

DO $$
DECLARE
    v_rel regclass;
BEGIN
    -- Only the role that runs the kernel evaluates preconditions: anyone else with
    -- USAGE on the schema would read agentos tables through this function.
    REVOKE EXECUTE ON FUNCTION agentos.eval_precondition(text) FROM PUBLIC;
    EXECUTE format('GRANT EXECUTE ON FUNCTION agentos.eval_precondition(text) TO %I',
                   current_user);
    BEGIN
        BEGIN
            CREATE ROLE agentos_precondition NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- made by another database's migration (roles are cluster-wide)
        END;
        GRANT USAGE ON SCHEMA agentos TO agentos_precondition;
        FOR v_rel IN
            SELECT c.oid::regclass FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'agentos'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
              AND c.relname NOT LIKE '%secret%'
        LOOP
            EXECUTE format('GRANT SELECT ON %s TO agentos_precondition', v_rel);
        END LOOP;
        -- a new owner needs CREATE on the schema at the moment of the change only
        GRANT CREATE ON SCHEMA agentos TO agentos_precondition;
        ALTER FUNCTION agentos.eval_precondition(text) OWNER TO agentos_precondition;
        REVOKE CREATE ON SCHEMA agentos FROM agentos_precondition;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE WARNING 'agentos: schedule preconditions run with the privileges of role % '
            '(it may not create or use role agentos_precondition: %); see '
            'docs/decisions/041-bad-input.md', current_user, SQLERRM;
    END;
END;
$$;
