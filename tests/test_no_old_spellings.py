"""The old command spellings (`sweep PROJECT --list`, `watch --status`,
`pipeline PROJECT --history`, `plugins list --project NAME`) stay only as hidden
aliases: tests, benchmarks, scripts, sample projects and the package itself
spell commands noun verb. Only the alias tests and the alias module use the old
spellings, on purpose.

The check reads Python argument lists (calls that run the CLI, and tuples or
lists that hold CLI arguments) through the AST, so prose that names a command
group (`workbench sweep`) and unrelated strings are not flagged; shell scripts
are read line by line.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TREES = ("tests", "benchmarks", "scripts", "sample_projects", "plugins", "workbench")
EXCLUDED = {
    "tests/test_cli_grammar.py",
    "tests/hostile/test_hostile_grammar.py",
    "workbench/cli/aliases.py",
}
VERBS = {
    "sweep": {"start", "resume", "list", "show"},
    "watch": {"start", "status", "stop"},
    "pipeline": {"run", "list"},
    "plugins": {"list"},
}
HELP = {"--help", "-h"}
# names of the functions tests and benchmarks run the CLI through
RUNNERS = {
    "cli", "wb", "wbi", "wb_inprocess", "wb_auto", "invoke", "run",
    "Popen", "check_call", "check_output", "call",
}  # fmt: skip
SHELL = re.compile(
    r"\bworkbench\s+(sweep|watch|pipeline)\s+"
    r"(?!(?:start|resume|list|show|status|stop|run)\b|--help\b)[\w$\"'-]"
    r"|\bworkbench\s+watch\s*$"
    r"|\bworkbench\s+plugins\s+list\b.*\s--project\b"
)


def _str(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _callee(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def old_spelling(elts: list[ast.expr], *, runner: bool, bare: bool = True) -> str | None:
    """What is old about this argument list, or None when it reads noun verb
    (or is no CLI argument list at all). `bare`: whether a lone `watch` counts
    (a one-element tuple or call does; `words[:1] == ["watch"]` does not)."""
    strings = [_str(e) for e in elts]
    flagged = any(s is not None and s.startswith("--") for s in strings)
    for i, word in enumerate(strings):
        if word not in VERBS:
            continue
        before = elts[i - 1] if i else None
        prefix = {"workbench", "-m"}
        after_prefix = i > 0 and (isinstance(before, ast.Starred) or strings[i - 1] in prefix)
        at_start = i == 0 or after_prefix
        if not at_start or not (runner or flagged or i > 0 or (bare and len(elts) == 1)):
            continue
        rest = strings[i + 1 :]
        if word == "plugins":
            if "--project" in rest:
                return "plugins list --project NAME (use plugins list NAME)"
            continue
        if i + 1 == len(elts):
            if word == "watch":
                return "bare watch (use watch start)"
            continue
        following = rest[0]
        if following is None:
            # a variable or *args where the verb belongs: the verb comes first
            return f"{word} followed by {ast.unparse(elts[i + 1])} instead of a verb"
        if following not in VERBS[word] and following not in HELP:
            return f"{word} {following!r} instead of one of {sorted(VERBS[word])}"
    return None


def _python_hits(path: Path) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            why = old_spelling(list(node.args), runner=_callee(node) in RUNNERS)
        elif isinstance(node, (ast.Tuple, ast.List)):
            why = old_spelling(list(node.elts), runner=False, bare=isinstance(node, ast.Tuple))
        else:
            continue
        if why:
            yield node.lineno, why


def _shell_hits(path: Path) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if SHELL.search(line.split("#", 1)[0]):
            yield number, line.strip()


def _files() -> Iterator[Path]:
    for tree in TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if rel in EXCLUDED or "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in {".py", ".sh"}:
                yield path


def find_old_spellings() -> list[str]:
    found = []
    for path in _files():
        hits = _python_hits(path) if path.suffix == ".py" else _shell_hits(path)
        rel = path.relative_to(ROOT).as_posix()
        found += [f"{rel}:{line}: {why}" for line, why in hits]
    return found


def test_no_old_spellings_outside_the_alias_tests():
    found = find_old_spellings()
    assert not found, "old command spellings:\n" + "\n".join(found)


def _check(source: str) -> str | None:
    node = ast.parse(source, mode="eval").body
    if isinstance(node, ast.Call):
        return old_spelling(list(node.args), runner=_callee(node) in RUNNERS)
    assert isinstance(node, (ast.Tuple, ast.List))
    return old_spelling(list(node.elts), runner=False, bare=isinstance(node, ast.Tuple))


@pytest.mark.parametrize(
    "source",
    [
        'cli("sweep", "penguins", "--list", "--json")',
        'cli("sweep", "penguins", "--resume", "1")',
        'cli("sweep", "tiny", "--trials", "4")',
        'wb("watch", "--stop", timeout=60)',
        'wb("watch", "--status", "--json")',
        'cli("watch", name, *START)',
        'wb_inprocess("watch", *args, timeout=60)',
        '("watch",)',
        '("watch", "penguins", "--detach", "--quiet", "0.5")',
        'cli("pipeline", "penguins", str(bad), "--json")',
        'cli("pipeline", "penguins", "--history")',
        '[sys.executable, "-m", "workbench", "pipeline", "penguins", str(clean)]',
        'cli("plugins", "list", "--project", "penguins", "--json")',
        '("sweep", "p", "--trials", "2")',
    ],
)
def test_old_spellings_are_caught(source: str):
    assert _check(source)


@pytest.mark.parametrize(
    "source",
    [
        'cli("sweep", "list", "penguins", "--json")',
        'cli("sweep", "resume", "scripted", "1")',
        'cli("sweep", "start", "tiny", "--trials", "4")',
        'cli("sweep", "show", "3")',
        'wb("watch", "stop", timeout=60)',
        'wb("watch", "status", "--json")',
        'cli("watch", "start", name, *START)',
        'wb_inprocess("watch", "start", *args, timeout=60)',
        'cli("pipeline", "run", "penguins", str(bad), "--json")',
        'cli("pipeline", "list", "penguins")',
        '[*cli, "sweep", "start", "bench", "--trials", "3"]',
        '[sys.executable, "-m", "workbench", "pipeline", "run", "penguins"]',
        'cli("plugins", "list", "penguins", "--json")',
        'cli("sweep", "--help")',
        '("sweep", "key", "problem")',
        '("demo", [watched / "batch.csv"], "watch")',
        'config.get("watch", [])',
        '["watch"]',
    ],
)
def test_new_spellings_and_other_strings_pass(source: str):
    assert _check(source) is None


def test_a_hit_names_its_line(tmp_path: Path):
    script = tmp_path / "t.py"
    script.write_text('import x\n\nx.cli(\n    "watch", "--stop"\n)\nx.cli("watch", "stop")\n')
    ((line, why),) = _python_hits(script)
    assert line == 3 and why.startswith("watch '--stop' instead of")
    shell = tmp_path / "t.sh"
    shell.write_text("workbench watch start\nworkbench sweep p --list  # old\n# workbench watch\n")
    assert [n for n, _ in _shell_hits(shell)] == [2]


def test_shell_lines():
    assert SHELL.search("workbench sweep penguins --trials 3")
    assert SHELL.search("workbench watch --detach")
    assert SHELL.search("workbench watch")
    assert SHELL.search("workbench plugins list --project penguins")
    assert not SHELL.search("workbench sweep start penguins --trials 3")
    assert not SHELL.search("workbench watch start --detach")
    assert not SHELL.search("workbench plugins list penguins")
