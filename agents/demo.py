"""The demo's goal and the work the scripted model does for it (`agentos start --demo`).

Plain data, importable without litellm, so the supervisor can name the goal without
paying for the model layer.
"""

from __future__ import annotations

DEMO_GOAL = "Build a tiny greetings library"

DEMO_PLAN = [
    {
        "title": "Add hello() to greetings.py",
        "description": "Create greetings.py with hello(name) returning 'Hello, <name>!', "
        "and tests/test_greetings.py testing it.",
        "acceptance": "hello('Ada') == 'Hello, Ada!' and the tests pass",
    },
    {
        "title": "Add goodbye() to farewells.py",
        "description": "Create farewells.py with goodbye(name) returning 'Goodbye, <name>!', "
        "and tests/test_farewells.py testing it.",
        "acceptance": "goodbye('Ada') == 'Goodbye, Ada!' and the tests pass",
    },
]

DEMO_FILES: dict[str, dict[str, str]] = {
    "Add hello() to greetings.py": {
        "greetings.py": 'def hello(name: str) -> str:\n    return f"Hello, {name}!"\n',
        "tests/test_greetings.py": "from greetings import hello\n\n\n"
        'def test_hello() -> None:\n    assert hello("Ada") == "Hello, Ada!"\n',
    },
    "Add goodbye() to farewells.py": {
        "farewells.py": 'def goodbye(name: str) -> str:\n    return f"Goodbye, {name}!"\n',
        "tests/test_farewells.py": "from farewells import goodbye\n\n\n"
        'def test_goodbye() -> None:\n    assert goodbye("Ada") == "Goodbye, Ada!"\n',
    },
}

__all__ = ["DEMO_FILES", "DEMO_GOAL", "DEMO_PLAN"]
