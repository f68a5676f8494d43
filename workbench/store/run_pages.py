"""Pages of a project's runs for the terminal UI's run table.

A project may hold tens of thousands of runs, and the run table is polled
every second. So the table never reads them all: it asks for the first `limit`
rows in its order, sorted, filtered and with the archive left out here in SQL,
and asks for a bigger `limit` (the cursor: how far the user has scrolled) only
when the user scrolls towards the end. A page of a 50,000-run project costs
about what a project of a hundred runs does, except for the sorts that need
every row (duration, metric) and the text filter, which SQLite does in one
pass without handing the rows to Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.store.dashboard import RunRow
from workbench.store.db import Store

SORTS = ("id", "status", "duration", "metric")

_SELECT = """
SELECT r.id, p.name, r.status, r.trainer, r.exit_code, r.created_at, r.started_at,
       r.ended_at, r.message
FROM runs r JOIN projects p ON p.id = r.project_id
"""

# The text filter matches what the table shows of a run: its id, status,
# trainer, start time (UTC, as the table writes it), note, tags and
# params written `key=value` (a text param without its JSON quotes). A param
# value that is not JSON (a hand-edited store) is matched as it is stored,
# never an error: CASE evaluates json_type only after json_valid said yes.
_TEXT_FILTER = r"""(
    CAST(r.id AS TEXT) LIKE :q ESCAPE '\'
    OR r.status LIKE :q ESCAPE '\'
    OR r.trainer LIKE :q ESCAPE '\'
    OR COALESCE(r.note, '') LIKE :q ESCAPE '\'
    OR (r.archived_at IS NOT NULL AND '(archived)' LIKE :q ESCAPE '\')
    OR COALESCE(strftime('%Y-%m-%d %H:%M:%S', r.started_at, 'unixepoch'), '')
       LIKE :q ESCAPE '\'
    OR EXISTS (SELECT 1 FROM run_tags t WHERE t.run_id = r.id AND t.tag LIKE :q ESCAPE '\')
    OR EXISTS (
        SELECT 1 FROM params pa WHERE pa.run_id = r.id
        AND pa.key || '=' || CASE WHEN json_valid(pa.value) THEN
            CASE json_type(pa.value) WHEN 'text' THEN json_extract(pa.value, '$')
            ELSE pa.value END
        ELSE pa.value END LIKE :q ESCAPE '\'
    )
)"""


@dataclass(frozen=True, slots=True)
class RunPage:
    """The first rows of a project's run table, whether more rows follow them,
    and how many of the project's runs are archived (hidden unless asked for)."""

    runs: list[RunRow]
    more: bool
    archived: int


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere, its wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def run_page(
    store: Store,
    project_id: int,
    *,
    limit: int,
    sort: str = "id",
    metric: str | None = None,
    lower_is_better: bool = False,
    text: str = "",
    archived: bool = False,
    now: float = 0.0,
) -> RunPage:
    """The first `limit` runs of a project in the table's order: newest first
    (`id`), by status then newest, longest first (`duration`; a run still going
    counts to `now`), or best `metric` first (runs without a value last); only
    those matching `text` (case-insensitive, anywhere) when given; archived runs
    only with `archived=True`. One query for the rows, one for the archive count."""
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
    args: dict[str, Any] = {"project": project_id, "limit": int(limit) + 1, "now": now}
    sql = _SELECT
    if sort == "metric" and metric:
        sql += " LEFT JOIN metric_series ms ON ms.run_id = r.id AND ms.key = :metric"
        args["metric"] = metric
    where = ["r.project_id = :project"]
    if not archived:
        where.append("r.archived_at IS NULL")
    if text:
        where.append(_TEXT_FILTER)
        args["q"] = _like(text)
    sql += " WHERE " + " AND ".join(where)
    if sort == "status":
        order = "r.status ASC, r.id DESC"
    elif sort == "duration":
        order = "COALESCE(COALESCE(r.ended_at, :now) - r.started_at, 0) DESC, r.id DESC"
    elif sort == "metric" and metric:
        direction = "ASC" if lower_is_better else "DESC"
        order = f"ms.value IS NULL, ms.value {direction}, r.id DESC"
    else:
        order = "r.id DESC"
    sql += f" ORDER BY {order} LIMIT :limit"
    rows = [RunRow(*row) for row in store.conn.execute(sql, args)]
    hidden = store.scalar(
        "SELECT COUNT(*) FROM runs WHERE archived_at IS NOT NULL AND project_id = ?",
        (project_id,),
    )
    return RunPage(rows[:limit], len(rows) > limit, int(hidden or 0))
