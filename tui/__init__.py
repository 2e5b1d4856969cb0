"""Mission control: the Textual terminal UI of AgentOS (`agentos tui`).

Layout of the package (one widget per file, its CSS beside it in DEFAULT_CSS):

* `service.py`  the database side: a Kernel pool and a bus.Listener on a thread of
                their own, which turn NOTIFY hints into fresh snapshots (model.py);
                composed of `bridge.py` (the thread and its loop), `refresh.py` (topics
                re-read on NOTIFY), `loaders.py` (the snapshots, read through
                agentos.kernel.views: the SQL is the kernel's, sql/tui.sql) and
                `actions.py` (what a person does, as kernel calls);
* `app.py`      the App: it routes snapshots to widgets and actions to the service;
* widgets       team_header, connection_banner, board, board_column, agents_panel,
                activity_feed, filter_bar;
* screens       task_screen, new_task_form, message_form, budget_form, confirm, help;
* `command.py`  the click command (`agentos tui`), importable without Textual;
* `bench.py`    start-up and update latency at 10,000 tasks / 100,000 activities.

Nothing here is imported by the kernel and nothing here runs SQL; the service and the
models do not import Textual, so they can be tested and benchmarked on their own. Stored
text is shown through fmt.shown (control characters escaped), never as markup.
"""
