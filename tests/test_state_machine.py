"""The task state machine: no sequence of calls reaches an impossible state.

Hypothesis drives random operations (kernel transitions, claims, rescues, raw psql
UPDATEs) against a real database and checks the invariants after each step.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STATES = ["inbox", "assigned", "in_progress", "review", "done", "blocked", "failed", "cancelled"]

op = st.one_of(
    st.tuples(st.just("transition"), st.integers(0, 2), st.sampled_from(STATES)),
    st.tuples(st.just("raw_update"), st.integers(0, 2), st.sampled_from(STATES)),
    st.tuples(st.just("claim"), st.integers(0, 2), st.sampled_from(["worker", "reviewer"])),
    st.tuples(st.just("expire_and_rescue"), st.integers(0, 2), st.just("")),
    st.tuples(st.just("complete"), st.integers(0, 2), st.sampled_from(["review", "done"])),
)


@pytest.fixture
def conn(db_url: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(db_url, autocommit=True) as c:
        c.execute(
            "INSERT INTO agentos.agents (name, role) VALUES ('w1', 'worker'), ('r1', 'reviewer')"
        )
        yield c


def _invariants(c: psycopg.Connection, ids: list[int]) -> None:
    allowed = set(
        c.execute(
            "SELECT from_status::text, to_status::text FROM agentos.task_transitions"
        ).fetchall()
    )
    for tid in ids:
        status, token, expires, assignee, attempts, max_attempts = c.execute(
            "SELECT status::text, lease_token, lease_expires_at, assignee, attempts, max_attempts "
            "FROM agentos.tasks WHERE id = %s",
            (tid,),
        ).fetchone()
        assert status in STATES
        assert (token is None) == (expires is None)
        if token is not None:
            assert status in ("in_progress", "review"), (tid, status)
        if status == "assigned":
            assert assignee is not None
        assert 0 <= attempts
        # every status change is in the audit log, and each follows an allowed edge
        changes = c.execute(
            "SELECT data->>'from', data->>'to' FROM agentos.activities "
            "WHERE task_id = %s AND data ? 'from' ORDER BY id",
            (tid,),
        ).fetchall()
        prev = "inbox"
        for frm, to in changes:
            assert frm == prev, (tid, changes)
            assert (frm, to) in allowed, (frm, to)
            prev = to
        assert prev == status, (tid, changes, status)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_no_sequence_reaches_an_impossible_state(
    conn: psycopg.Connection, ops: list[tuple[str, int, str]]
) -> None:
    ids = [
        conn.execute(
            "INSERT INTO agentos.tasks (title) VALUES (%s) RETURNING id", (f"t{i}",)
        ).fetchone()[0]
        for i in range(3)
    ]
    session = uuid.uuid4()
    for kind, idx, arg in ops:
        tid = ids[idx]
        try:
            if kind == "transition":
                conn.execute(
                    "SELECT agentos.transition_task(%s, %s::agentos.task_status, 'prop', "
                    "NULL, NULL, NULL, NULL, %s)",
                    (tid, arg, "w1" if arg == "assigned" else None),
                )
            elif kind == "raw_update":
                conn.execute(
                    "UPDATE agentos.tasks SET status = %s::agentos.task_status WHERE id = %s",
                    (arg, tid),
                )
            elif kind == "claim":
                agent = "w1" if arg == "worker" else "r1"
                conn.execute(
                    "SELECT * FROM agentos.claim_task(%s, %s, %s, %s, interval '30 seconds')",
                    (tid, agent, arg, session),
                )
            elif kind == "expire_and_rescue":
                conn.execute(
                    "SELECT * FROM agentos.rescue_expired_leases(now() + interval '1 hour')"
                )
            elif kind == "complete":
                token = conn.execute(
                    "SELECT lease_token FROM agentos.tasks WHERE id = %s", (tid,)
                ).fetchone()[0]
                if token is not None:
                    conn.execute(
                        "SELECT agentos.transition_task(%s, %s::agentos.task_status, 'prop', "
                        "NULL, %s)",
                        (tid, arg, token),
                    )
        except (psycopg.errors.CheckViolation, psycopg.errors.RaiseException):
            pass  # rejected: the row must be unchanged, which the invariants check
        _invariants(conn, ids)
    conn.execute("DELETE FROM agentos.activities")
    conn.execute("DELETE FROM agentos.tasks")
    conn.execute("DELETE FROM agentos.pgqueuer")


def test_psql_cannot_make_an_impossible_transition(conn: psycopg.Connection) -> None:
    tid = conn.execute("INSERT INTO agentos.tasks (title) VALUES ('x') RETURNING id").fetchone()[0]
    conn.execute("UPDATE agentos.tasks SET status = 'cancelled' WHERE id = %s", (tid,))
    with pytest.raises(
        psycopg.errors.CheckViolation, match="impossible transition cancelled -> done"
    ):
        conn.execute("UPDATE agentos.tasks SET status = 'done' WHERE id = %s", (tid,))
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO agentos.tasks (title, status) VALUES ('y', 'done')")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("INSERT INTO agentos.tasks (title) VALUES ('   ')")


def test_dependency_cycles_are_rejected(conn: psycopg.Connection) -> None:
    a, b = (
        conn.execute("INSERT INTO agentos.tasks (title) VALUES (%s) RETURNING id", (t,)).fetchone()[
            0
        ]
        for t in "ab"
    )
    conn.execute("INSERT INTO agentos.task_dependencies VALUES (%s, %s)", (a, b))
    with pytest.raises(psycopg.errors.CheckViolation, match="cycle"):
        conn.execute("INSERT INTO agentos.task_dependencies VALUES (%s, %s)", (b, a))
