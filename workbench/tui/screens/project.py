"""A project's runs: sort, filter, start, stop, open, mark and compare; tag,
note, archive, delete and clone them, and browse their artifacts."""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Input, Label

from workbench.core import formatting as fmt
from workbench.store.jobs import Job
from workbench.store.run_notes import RunNotes
from workbench.tui import reads
from workbench.tui.screens.base import Fresh, LiveScreen, StoreWatch
from workbench.tui.widgets.footer import KeyFooter
from workbench.tui.widgets.synced_table import SyncedTable, cell

from workbench.store.run_pages import SORTS

PAGE_ROWS = reads.PAGE_ROWS
# Rows from the end of those loaded at which the next page is fetched, so
# scrolling down rarely waits for it.
PAGE_MARGIN = 20
RUN_COLUMNS = [
    ("mark", " "),
    ("id", "Run"),
    ("status", "Status"),
    ("started", "Started"),
    ("duration", "Duration"),
    ("metric", "Metric"),
    ("params", "Params"),
    ("tags", "Tags"),
]
# Shown only once a run of the project went to another executor (Slurm), so a
# local-only project's table stays as it is.
JOB_COLUMNS = [("executor", "Executor"), ("job", "Job"), ("node", "Node"), ("slurm", "Slurm")]


class ProjectScreen(LiveScreen):
    AUTO_FOCUS = "#runs"
    # The keys the footer keeps below 100 columns; help (?) lists them all.
    FOOTER_NARROW = {
        "project.start",
        "project.stop",
        "project.data",
        "project.models",
        "project.automation",
        "project.back",
        "app.quit",
    }
    BINDINGS = [
        Binding("enter", "open_run", "Open run", id="project.open"),
        Binding("n", "start_run", "Start run", id="project.start"),
        Binding("x", "stop_run", "Stop run", id="project.stop"),
        Binding("space", "mark", "Mark", id="project.mark"),
        Binding("c", "compare", "Compare", id="project.compare"),
        Binding("s", "sort", "Sort", id="project.sort"),
        Binding("slash", "filter", "Filter", id="project.filter"),
        Binding("D", "data", "Data", id="project.data"),
        Binding("M", "models", "Models", id="project.models"),
        Binding("A", "automation", "Automation", id="project.automation"),
        Binding("t", "notes", "Tags/note", id="project.notes"),
        Binding("a", "archive", "Archive", id="project.archive"),
        Binding("H", "show_archived", "Archived", id="project.archived"),
        Binding("delete", "delete_run", "Delete", id="project.delete"),
        Binding("C", "clone", "Clone", id="project.clone"),
        Binding("f", "artifacts", "Artifacts", id="project.artifacts"),
        Binding("escape", "back", "Back", id="project.back"),
    ]

    def __init__(self, name: str) -> None:
        super().__init__()
        self.project = name
        self.title = f"Project {name}"
        self.marked: set[int] = set()
        self.sort_by = "id"
        self.filter_text = ""
        self.snapshot: reads.ProjectRuns | None = None
        self._summary: str | None = None
        self.jobs: dict[int, Job] | None = None  # None: no run of the project used Slurm
        self.notes: dict[int, RunNotes] = {}
        self.show_archived = False  # archived runs are left out until H
        # How many rows the table reads (the paging cursor): a page at first,
        # a page more each time the user scrolls near the end of those loaded.
        self.window = PAGE_ROWS
        self._to_bottom = False  # G asked for the last row: go there once loaded
        self._loaded_text = ""  # the filter the shown rows were read with
        self._watch = StoreWatch()  # the runs are read again only when the store changed
        self._hint: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Label("", id="project-summary")
        yield Input(placeholder="filter runs (any column); Esc clears", id="filter")
        yield Label("", id="project-empty", classes="empty-hint")
        yield SyncedTable(RUN_COLUMNS, id="runs")
        yield KeyFooter()

    def on_mount(self) -> None:
        super().on_mount()
        # Mouse scrolling near the end of the loaded rows fetches the next page,
        # as moving the cursor there does.
        self.watch(self.query_one("#runs", SyncedTable), "scroll_y", self._scrolled, init=False)

    def load(self) -> Fresh | str:
        from workbench.store.jobs import page_jobs
        from workbench.store.run_notes import notes_of

        text = self.filter_text
        window, sort, archived = self.window, self.sort_by, self.show_archived

        def read() -> tuple[reads.ProjectRuns, dict[int, RunNotes], str, dict[int, Job] | None]:
            snapshot = reads.project_runs(
                self.project, window, sort=sort, text=text, archived=archived
            )
            ids = [r.id for r in snapshot.runs]
            jobs = page_jobs(reads.store(), snapshot.project.id, ids)
            return snapshot, notes_of(reads.store(), ids), text, jobs

        return self._watch.read((window, sort, text, archived), read)

    def show(self, fresh: Fresh | str) -> None:
        if not isinstance(fresh, Fresh):
            # Nothing new in the store: only an active run's duration moves on.
            if self.snapshot is not None and any(
                r.status in ("queued", "running") for r in self.snapshot.runs
            ):
                self._render_runs()
            return
        self._watch.shown(fresh)
        snapshot, self.notes, self._loaded_text, self.jobs = fresh.data
        self.snapshot = snapshot
        project = snapshot.project
        best = project.best
        count = f"{project.runs} runs"
        if snapshot.more:  # "100 of 2000 runs": the rest come as the user scrolls
            count = f"{len(snapshot.runs)} of {count}"
        summary = project.config_error or (
            f"{project.trainer}  target {project.target}  "
            f"metric {project.metric or '-'}  {count}"
            + (f"  best: run {best.run} {fmt.metric(best.value)}" if best else "")
        )
        if summary != self._summary:  # a layout pass each: not at every poll
            self._summary = summary
            self.query_one("#project-summary", Label).update(summary)
        self._render_runs()
        if self._to_bottom:
            self._to_bottom = False
            table = self.query_one("#runs", SyncedTable)
            table.move_cursor(row=table.row_count - 1)

    # Paging: more rows as the user nears the end of those loaded ----------------

    def _more(self) -> None:
        """Read a page more at the next poll, now (once per page)."""
        if self.snapshot is None or not self.snapshot.more:
            return
        loaded = len(self.snapshot.runs)
        if self.window > loaded:
            return  # already asked for: the poll is on its way
        self.window = loaded + PAGE_ROWS
        self.poll()

    def _near_end(self, row: int) -> bool:
        table = self.query_one("#runs", SyncedTable)
        return row >= table.row_count - PAGE_MARGIN

    def on_data_table_row_highlighted(self, event: SyncedTable.RowHighlighted) -> None:
        if event.data_table.id == "runs" and self._near_end(event.cursor_row):
            self._more()

    def _scrolled(self, _old: float, new: float) -> None:
        table = self.query_one("#runs", SyncedTable)
        if new >= table.max_scroll_y - PAGE_MARGIN:
            self._more()

    def on_synced_table_bottom(self, event: SyncedTable.Bottom) -> None:
        # G: the last row loaded; on a long project the next page too, and
        # then its last row (G again goes on).
        if self.snapshot is not None and self.snapshot.more:
            self._to_bottom = True
            self._more()

    def _reload(self) -> None:
        """The order or the filter changed: the first page again, read now."""
        self.window = PAGE_ROWS
        self._render_runs()  # the loaded rows at once, in the new order
        self.poll()

    def _render_runs(self) -> None:
        if self.snapshot is None:
            return
        snapshot = self.snapshot
        key_params = snapshot.key_params
        now = time.time()
        rows = []
        archived = 0
        # The store filtered the rows with `_loaded_text`; while a new filter
        # is on its way, the loaded rows are narrowed here at once.
        narrow = self.filter_text if self.filter_text != self._loaded_text else ""
        for run in snapshot.runs:
            notes = self.notes.get(run.id) or RunNotes(run.id)
            if notes.archived and not self.show_archived:
                archived += 1
                continue
            value = snapshot.metric.get(run.id)
            params = snapshot.params.get(run.id, {})
            tags = " ".join(notes.tags)
            cells = (
                "●" if run.id in self.marked else "",
                str(run.id),
                fmt.status(run.status),
                _when(run.started_at),
                fmt.seconds(run.duration(now)),
                fmt.metric(value),
                " ".join(f"{k}={cell(params[k])}" for k in key_params if k in params),
                ("(archived) " if notes.archived else "") + tags,
            )
            if self.jobs is not None:
                cells += _job_cells(self.jobs.get(run.id))
            if narrow and not any(narrow in str(c).lower() for c in (*cells, notes.note or "")):
                continue
            rows.append((str(run.id), cells, run, value))
        rows.sort(key=lambda row: self._sort_key(row, now), reverse=self.sort_by != "status")
        runs = self.query_one("#runs", SyncedTable)
        runs.set_columns(RUN_COLUMNS + (JOB_COLUMNS if self.jobs is not None else []))
        runs.set_sort(self.sort_by, descending=self.sort_by != "status")
        runs.show([(key, cells) for key, cells, _, _ in rows])
        hint = self.query_one("#project-empty", Label)
        archived = max(archived, 0 if self.show_archived else snapshot.archived)
        if not snapshot.runs and not archived and not self.filter_text:
            text = (
                "No runs yet — press n to start one"
                " (the params of workbench.toml are filled in)."
            )
        elif archived and not rows and not self.filter_text:
            text = f"All {archived} runs shown here are archived — press H to show them."
        elif not rows and self.filter_text and self.filter_text == self._loaded_text:
            text = "No run matches the filter — Esc clears it."
        else:
            text = ""
        if text != self._hint:  # a layout pass each: not at every poll
            self._hint = text
            hint.update(text)
            hint.set_class(bool(text), "-visible")

    def _sort_key(self, row: tuple, now: float) -> Any:
        _, _, run, value = row
        if self.sort_by == "status":
            return (run.status, -run.id)
        if self.sort_by == "duration":
            return (run.duration(now) or 0, run.id)
        if self.sort_by == "metric":
            from workbench.core.metric_rules import lower_is_better

            metric_key = (self.snapshot.project.metric if self.snapshot else None) or ""
            if value is None:
                return (float("-inf"), run.id)
            return (-value if lower_is_better(metric_key) else value, run.id)
        return run.id

    @property
    def selected_run(self) -> int | None:
        key = self.query_one("#runs", SyncedTable).selected_key
        return int(key) if key else None

    def on_data_table_row_selected(self, event: SyncedTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        if self.selected_run is not None:
            self.app.open_run(self.selected_run)

    def action_mark(self) -> None:
        run_id = self.selected_run
        if run_id is None:
            return
        self.marked.symmetric_difference_update({run_id})
        self._render_runs()
        self.query_one("#runs", SyncedTable).action_cursor_down()

    def action_compare(self) -> None:
        if len(self.marked) < 2:
            self.notify("Mark two or more runs with space, then press c.", severity="warning")
            return
        self.app.open_compare(sorted(self.marked))

    def action_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.notify(f"sorted by {self.sort_by}", timeout=1.5)
        self._reload()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-visible")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value.strip().lower()
            self._reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one("#runs", SyncedTable).focus()

    def action_back(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("-visible"):
            box.value = ""
            box.remove_class("-visible")
            self.query_one("#runs", SyncedTable).focus()
            return
        self.app.pop_screen()

    def action_data(self) -> None:
        from workbench.tui.screens.data import DataScreen

        self.app.push_screen(DataScreen(self.project))

    def action_models(self) -> None:
        self.app.open_models(self.project)

    def action_automation(self) -> None:
        self.app.open_automation(self.project)

    def action_start_run(self) -> None:
        # Before the first poll the params are not known yet: let the app load them.
        params = self.snapshot.project.params if self.snapshot else None
        self.app.start_run_form(self.project, params)

    def action_stop_run(self) -> None:
        run_id = self.selected_run
        if run_id is None:
            self.notify("No run selected.", severity="warning")
            return
        runs = self.snapshot.runs if self.snapshot else []
        status = next((r.status for r in runs if r.id == run_id), None)
        self.app.stop_run(run_id, status)


    # Tags, notes, the archive, deleting and cloning ----------------------------------

    def _selected_or_warn(self) -> int | None:
        run_id = self.selected_run
        if run_id is None:
            self.notify("No run selected.", severity="warning")
        return run_id

    def action_notes(self) -> None:
        from workbench.tui.screens.run_notes import RunNotesModal

        run_id = self._selected_or_warn()
        if run_id is None:
            return
        notes = self.notes.get(run_id) or RunNotes(run_id)

        def save(answer: tuple[str, str] | None) -> None:
            if answer is None:
                return
            from workbench.runs.manage import set_tags_and_note

            tags, note = answer
            self.in_background(
                "Cannot save the tags and note",
                lambda: set_tags_and_note(reads.store(), run_id, tags, note),
                lambda _: self._changed(f"run {run_id}: tags and note saved"),
            )

        self.app.push_screen(RunNotesModal(run_id, notes.tags, notes.note), save)

    def action_archive(self) -> None:
        from workbench.runs.manage import set_archived

        run_id = self._selected_or_warn()
        if run_id is None:
            return
        archive = not (self.notes.get(run_id) or RunNotes(run_id)).archived
        done = "archived (H shows archived runs)" if archive else "unarchived"
        self.in_background(
            "Cannot archive the run" if archive else "Cannot unarchive the run",
            lambda: set_archived(reads.store(), [run_id], archive),
            lambda _: self._changed(f"run {run_id} {done}"),
        )

    def action_show_archived(self) -> None:
        self.show_archived = not self.show_archived
        self.notify(
            "showing archived runs" if self.show_archived else "archived runs hidden", timeout=1.5
        )
        self._reload()

    def action_delete_run(self) -> None:
        from workbench.runs.manage import plan_delete

        run_id = self._selected_or_warn()
        if run_id is None:
            return
        self.in_background(
            "Cannot delete the run",
            lambda: plan_delete(reads.store(), [run_id]),
            self._confirm_delete,
        )

    def _confirm_delete(self, plan: Any) -> None:
        from workbench.tui.screens.confirm import ConfirmModal

        run_id = plan.run_ids[0]
        if plan.blockers:
            self.notify(
                f"Run {run_id} cannot be deleted: {plan.blockers[0].reason}.",
                severity="warning",
                timeout=6,
            )
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self._delete(plan)

        self.app.push_screen(
            ConfirmModal(
                f"Delete run {run_id}? Frees {fmt.size(plan.freed_bytes)}.",
                plan.summary(),
                confirm="Delete run",
            ),
            answered,
        )

    def _delete(self, plan: Any) -> None:
        from workbench.runs.manage import delete

        def deleted(done: Any) -> None:
            self.marked.difference_update(done.run_ids)
            message = f"run {', '.join(map(str, done.run_ids))} deleted:"
            message += f" {fmt.size(done.freed_bytes)} freed"
            if done.problems:
                message += f" ({len(done.problems)} file(s) could not be removed)"
            self._changed(message)

        self.in_background("Cannot delete the run", lambda: delete(reads.store(), plan), deleted)

    def _changed(self, message: str) -> None:
        self.notify(message)
        self.poll()  # show it now, not at the next poll

    def action_artifacts(self) -> None:
        from workbench.tui.screens.artifacts import ArtifactsScreen

        run_id = self._selected_or_warn()
        if run_id is not None:
            self.app.push_screen(ArtifactsScreen(run_id))

    def action_clone(self) -> None:
        run_id = self._selected_or_warn()
        if run_id is None or self.snapshot is None:
            return
        self.app.start_run_form(
            self.project,
            self.snapshot.project.params,
            initial=self.snapshot.params.get(run_id, {}),
            title=f"Clone run {run_id} of {self.project}",
        )


def _when(ts: float | None) -> str:
    """A run's start, in UTC to the second (as `run list` shows it)."""
    return "" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def _job_cells(job: Job | None) -> tuple[str, str, str, str]:
    """A run's executor, job id, node and the scheduler's state (reason)."""
    if job is None or job.executor == "local":
        return ("local", "", "", "")
    state = (job.slurm_state or "") + (f" ({job.slurm_reason})" if job.slurm_reason else "")
    return (job.executor, job.job_id or "", job.node or "", state)
