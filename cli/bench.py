"""`agentos bench`: benchmarks with a same-run baseline."""

from __future__ import annotations

import click
from agentos.cli.common import (
    CONTEXT,
    echo_json,
    handle_errors,
    run,
    settings,
)


@click.group(context_settings=CONTEXT)
def bench() -> None:
    """Benchmarks against a scratch database, with a baseline measured in the same run."""


@bench.command("dispatch", context_settings=CONTEXT)
@click.option("--tasks", "n", type=click.IntRange(100, 1_000_000), default=2000, show_default=True)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Agent slots per process.",
)
@click.option(
    "--prefill",
    type=click.IntRange(0, 1_000_000),
    default=10000,
    show_default=True,
    help="Items of the pre-filled drain (queued before the clock starts); 0 skips it.",
)
@click.option(
    "--rounds",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Runs of each side, taking turns; the medians are compared.",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_dispatch(n: int, concurrency: int, prefill: int, rounds: int, as_json: bool) -> None:
    """No-op tasks through the kernel path (1 and 2 processes) beside raw pgqueuer: paced
    by a serial producer, then drained from a queue filled before the clock starts."""
    from agentos.kernel import bench as b

    result = run(
        b.dispatch(
            settings(),
            n=n,
            concurrency=concurrency,
            prefill=prefill,
            rounds=rounds,
            echo=None if as_json else click.echo,
        )
    )
    if as_json:
        echo_json(result)


@bench.command("wake", context_settings=CONTEXT)
@click.option("--tasks", "n", type=click.IntRange(10, 1_000_000), default=1000, show_default=True)
@click.option(
    "--killed-samples",
    type=click.IntRange(0, 1000),
    default=20,
    show_default=True,
    help="Samples with the listener's connection killed (poll fallback).",
)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def bench_wake(n: int, killed_samples: int, as_json: bool) -> None:
    """Task commit to claim latency beside bare NOTIFY round-trip."""
    from agentos.kernel import bench as b

    result = run(
        b.wake(settings(), n=n, killed_samples=killed_samples, echo=None if as_json else click.echo)
    )
    if as_json:
        echo_json(result)


from agentos.cli.bench_scale import bench_scale  # noqa: E402
from agentos.cli.bench_steps import bench_steps  # noqa: E402
from agentos.cli.footprint import bench_footprint  # noqa: E402

for command in (bench_footprint, bench_scale, bench_steps):
    bench.add_command(command)
