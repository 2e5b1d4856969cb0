"""The AgentOS kernel: the database is the operating system.

Settings, connections, migrations, the task state machine, dispatch over pgqueuer
(SKIP LOCKED + NOTIFY), leases, leader election, schedules, activities and messages.
The kernel knows nothing of LLMs or screens: it never imports agents, tools, cli or tui.
"""

from agentos.kernel.errors import KernelError, NotFound, StaleLease
from agentos.kernel.settings import Settings

__all__ = ["KernelError", "NotFound", "Settings", "StaleLease"]
