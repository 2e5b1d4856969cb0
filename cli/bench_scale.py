"""`agentos bench scale`: one process hosting many agents on few server connections."""

from __future__ import annotations

import click
from agentos.cli.common import CONTEXT, echo_json, handle_errors, run, settings


@click.command("scale", context_settings=CONTEXT)
@click.option(
    "--agents",
    type=click.IntRange(2, 1000),
    default=1000,
    show_default=True,
    help="Agent slots hosted by the one consumer process.",
)
@click.option(
    "--samples",
    type=click.IntRange(10, 100_000),
    default=200,
    show_default=True,
    help="Wake-ups measured in each phase.",
)
@click.option(
    "--burst",
    type=click.IntRange(0, 1_000_000),
    default=5000,
    show_default=True,
    help="Tasks committed at once in the last phase.",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_scale(agents: int, samples: int, burst: int, as_json: bool) -> None:
    """N agents in one process: connections, claims, double claims, wake-up percentiles."""
    from agentos.kernel import bench_scale as b

    result = run(
        b.scale(
            settings(),
            agents=agents,
            wake_samples=samples,
            burst=burst,
            echo=None if as_json else click.echo,
        )
    )
    if as_json:
        echo_json(result)
