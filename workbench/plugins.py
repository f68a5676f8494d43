"""Finding, loading and calling plugins (see `workbench/hookspecs.py` for the hooks).

Plugins come from three places: the built-ins (`BUILTIN_MODULE`), the
`workbench` entry point group of installed distributions, and the `*.py` files in
a project's `plugins/` folder. Only the built-ins are registered up front;
entry points and project files are loaded the first time a hook needs them, so
a command that uses no plugin pays nothing. A plugin that fails to import, does
not match the hook specs, or raises in a hook is recorded as failed (with the
error), warned about once, and skipped: one broken plugin never stops the rest.

The built-in plugin module is imported by its dotted name when a manager is made,
as an entry point would be: it registers trainers, exporters and drift tests, so
it sits in a layer above this one, and this module never imports it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import importlib
import importlib.util
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from workbench import hookspecs
from workbench.core.errors import UsageError, WorkbenchError

GROUP = "workbench"
BUILTIN = "builtin"
# Registered by name at load time (see the module docstring).
BUILTIN_MODULE = "workbench.models.builtin_plugin"
# A project plugin file larger than this is refused unread: no hand-written plugin
# is this big, and the file is read whole into memory to be run.
MAX_PLUGIN_FILE_BYTES = 1 << 20
MAX_ERROR = 300  # characters of a plugin's error kept (one line)
# Hook -> (what `plugins list` calls the contributions, the type each hook returns).
CONTRIBUTIONS: dict[str, tuple[str, type]] = {
    "workbench_trainers": ("trainers", dict),
    "workbench_validators": ("validators", list),
    "workbench_drift_tests": ("drift_tests", dict),
    "workbench_exporters": ("exporters", dict),
    "workbench_executors": ("executors", dict),
}


@dataclass
class PluginInfo:
    """One plugin as `workbench plugins list` shows it."""

    name: str
    source: str  # "builtin", "entry point" or "project file"
    origin: str  # distribution name and version, or the file
    status: str = "ok"
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class Plugins:
    """The plugins seen from one project folder (or from none)."""

    def __init__(self, project_dir: Path | None = None, *, warn: bool = True) -> None:
        self.project_dir = project_dir
        self.warn = warn
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.infos: list[PluginInfo] = []
        self._by_name: dict[str, PluginInfo] = {}  # the registered ones
        self._merged: dict[tuple[str, bool], dict[str, Any]] = {}
        self._builtin: dict[tuple[str, str], dict[str, Any]] = {}
        self.loaded = False
        from workbench.core.version import __version__

        builtin = importlib.import_module(BUILTIN_MODULE)
        self._register(builtin, PluginInfo(BUILTIN, "builtin", f"workbench {__version__}"))

    @property
    def failures(self) -> list[PluginInfo]:
        return [info for info in self.infos if info.status == "failed"]

    # -- discovery -------------------------------------------------------------

    def load(self) -> Plugins:
        """Entry points, then project files; once."""
        if self.loaded:
            return self
        self.loaded = True
        for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
            dist = point.dist
            origin = f"{dist.name} {dist.version}" if dist else point.value
            info = PluginInfo(point.name, "entry point", origin)
            try:
                with _plugin_output():
                    module = point.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # never fatal, even a sys.exit
                self._fail(info, f"cannot import {point.value}: {_describe(exc)}")
                continue
            self._register(module, info)
        if self.project_dir is not None:
            for file in sorted((self.project_dir / "plugins").glob("*.py")):
                if not file.name.startswith("_"):
                    self._load_file(file)
        return self

    def _load_file(self, file: Path) -> None:
        """Run one of the project's plugin files as a module. The file is read here
        (a regular file of at most MAX_PLUGIN_FILE_BYTES, or refused unread) and
        compiled in memory, so no bytecode cache is written into the project."""
        info = PluginInfo(file.stem, "project file", str(file))
        try:
            source = _read_plugin_file(file)
        except OSError as exc:
            self._fail(info, f"cannot read {file.name}: {exc.strerror or exc}")
            return
        except ValueError as exc:
            self._fail(info, f"{file.name} {exc}")
            return
        digest = hashlib.sha1(os.fsencode(os.path.abspath(file))).hexdigest()[:12]
        module_name = f"workbench_project_plugin_{digest}_{file.stem}"
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None:
            self._fail(info, "cannot be loaded as a Python module")
            return
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # so that dataclasses and pickling find it
        try:
            code = compile(source, str(file), "exec", dont_inherit=True)
            with _plugin_output():
                exec(code, module.__dict__)
        except KeyboardInterrupt:
            sys.modules.pop(module_name, None)
            raise
        except BaseException as exc:  # a syntax error, even a sys.exit, is reported
            sys.modules.pop(module_name, None)
            self._fail(info, f"cannot import {file.name}: {_describe(exc)}")
            return
        self._register(module, info)

    def _register(self, module: ModuleType, info: PluginInfo) -> None:
        self.infos.append(info)
        taken = self._by_name.get(info.name)
        if taken is not None:
            self._fail(info, f"the name is taken by the {taken.source} {taken.origin}")
            return
        try:
            self.pm.register(module, name=info.name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            if self.pm.get_plugin(info.name) is module:  # registered up to the bad hook
                self.pm.unregister(name=info.name)
            self._fail(info, f"does not match the hook specs: {exc}")
            return
        self._by_name[info.name] = info
        unknown = [c.name for c in self.pm.get_hookcallers(module) or [] if not c.has_spec()]
        if unknown:
            self.pm.unregister(module)
            self._fail(info, f"implements unknown hook(s): {', '.join(unknown)}")

    def _fail(self, info: PluginInfo, error: str) -> None:
        if info not in self.infos:
            self.infos.append(info)
        info.status, info.error = "failed", _one_line(error)
        if self.warn:
            print(f"workbench: warning: plugin {info.name!r} skipped: {error}", file=sys.stderr)

    # -- calling hooks -----------------------------------------------------------

    def call(self, hook: str, external: bool = True) -> list[tuple[str, Any]]:
        """(plugin name, result) of a contribution hook for each plugin that implements
        it, in the order they were registered; a plugin whose hook raises or returns
        the wrong type is failed and skipped."""
        if external:
            self.load()
        expected = CONTRIBUTIONS[hook][1]
        results = []
        for impl, info in self._impls(hook):
            try:
                with _plugin_output():
                    result = impl.function()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a plugin's sys.exit ends only the plugin
                self._fail(info, f"{hook} raised {_describe(exc)}")
                continue
            if not isinstance(result, expected):
                kind = type(result).__name__
                self._fail(info, f"{hook} returned a {kind}, expected a {expected.__name__}")
                continue
            results.append((impl.plugin_name, result))
        return results

    def _impls(self, hook: str) -> list[tuple[Any, PluginInfo]]:
        """A hook's implementations by plugins that have not failed, in registration order."""
        # pluggy lists them in registration order (and calls them last first).
        impls = getattr(self.pm.hook, hook).get_hookimpls()
        found = [(impl, self._by_name.get(impl.plugin_name)) for impl in impls]
        return [(impl, info) for impl, info in found if info and info.status == "ok"]

    def notifiers(self) -> list[tuple[str, Callable[[dict, dict], None]]]:
        """(plugin name, notify(event, settings)) for every plugin with `workbench_notify`."""
        self.load()
        return [(info.name, _bind(impl)) for impl, info in self._impls("workbench_notify")]

    def merged(self, hook: str, external: bool = True) -> dict[str, Any]:
        """A named contribution hook's dicts merged; the first plugin to claim a name keeps it."""
        key = (hook, self.loaded or external)
        if key in self._merged:
            return self._merged[key]
        found: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for plugin, contributed in self.call(hook, external):
            for name, value in contributed.items():
                if name in found:
                    self._by_name[plugin].warnings.append(
                        f"{CONTRIBUTIONS[hook][0]} {name!r} is already provided by "
                        f"{owner[name]!r}; ignored"
                    )
                    continue
                found[name], owner[name] = value, plugin
        self._merged[key] = found
        return found

    def builtin(self, hook: str) -> dict[str, Any]:
        """What the built-in plugin alone contributes to a named contribution hook."""
        key = (hook, BUILTIN)
        if key not in self._builtin:
            found = [result for plugin, result in self.call(hook, False) if plugin == BUILTIN]
            self._builtin[key] = found[0] if found else {}
        return self._builtin[key]

    def find(self, hook: str, name: str) -> Any | None:
        """A named contribution, looked for in the built-ins before loading the rest."""
        builtin = self.merged(hook, external=False)
        if name in builtin:
            return builtin[name]
        return self.merged(hook).get(name)

    def report(self) -> list[dict[str, Any]]:
        """Every plugin, its status and what it contributes, for `plugins list`."""
        contributions: dict[str, dict[str, list[str]]] = {}
        for hook, (_, kind) in CONTRIBUTIONS.items():
            if kind is dict:
                self.merged(hook)  # warns about a name a later plugin claims again
        for hook, (label, _) in CONTRIBUTIONS.items():
            for plugin, result in self.call(hook):
                names = result if isinstance(result, dict) else map(_callable_name, result)
                contributions.setdefault(plugin, {})[label] = sorted(str(n) for n in names)
        for name, _ in self.notifiers():
            contributions.setdefault(name, {})["notifiers"] = [name]
        empty = {label: [] for label, _ in CONTRIBUTIONS.values()} | {"notifiers": []}
        return [
            {
                "name": info.name,
                "source": info.source,
                "origin": info.origin,
                "status": info.status,
                "error": info.error,
                "warnings": info.warnings,
                "contributes": empty
                | (contributions.get(info.name, {}) if info.status == "ok" else {}),
            }
            for info in self.infos
        ]


_MANAGERS: dict[Path | None, Plugins] = {}


def plugins_for(project_dir: Path | None = None) -> Plugins:
    """The process's plugin manager for a project folder (None: no project plugins)."""
    key = project_dir.resolve() if project_dir is not None else None
    if key not in _MANAGERS:
        _MANAGERS[key] = Plugins(key)
    return _MANAGERS[key]


def _bind(impl: Any) -> Callable[[dict, dict], None]:
    """An implementation may take only some of the spec's arguments, by name."""

    def notify(event: dict, settings: dict) -> None:
        arguments = {"event": event, "settings": settings}
        impl.function(**{name: arguments[name] for name in impl.argnames})

    return notify


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return f"{type(exc).__name__}: {exc.msg}{where}"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR else line[: MAX_ERROR - 1] + "…"


def _read_plugin_file(file: Path) -> bytes:
    """The bytes of a plugin file; ValueError (the reason) for anything but a
    regular file of at most MAX_PLUGIN_FILE_BYTES. Opened without blocking and
    checked on the open descriptor, so a FIFO or device is never waited on or read."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.ENXIO):
            raise ValueError("is not a regular file") from None
        raise
    try:
        info = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise ValueError("is not a regular file")
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > MAX_PLUGIN_FILE_BYTES:
            raise ValueError(
                f"is larger than {MAX_PLUGIN_FILE_BYTES >> 20} MiB ({info.st_size} bytes)"
            )
        data = fh.read(MAX_PLUGIN_FILE_BYTES + 1)
    if len(data) > MAX_PLUGIN_FILE_BYTES:  # it grew while being read
        raise ValueError(f"is larger than {MAX_PLUGIN_FILE_BYTES >> 20} MiB")
    return data


_output_lock = threading.Lock()
_output_users = 0
_output_saved: Any = None


@contextlib.contextmanager
def _plugin_output() -> Iterator[None]:
    """What a plugin prints while it is imported or its hook runs goes to stderr:
    stdout may be a command's `--json` document. Counted, so that threads calling
    plugins at once put stdout back only when the last one is done."""
    global _output_users, _output_saved
    with _output_lock:
        if _output_users == 0:
            _output_saved, sys.stdout = sys.stdout, sys.stderr
        _output_users += 1
    try:
        yield
    finally:
        with _output_lock:
            _output_users -= 1
            if _output_users == 0:
                sys.stdout, _output_saved = _output_saved, None


def _callable_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)


def _failed_note(manager: Plugins) -> str:
    failed = [f"{info.name} ({info.error})" for info in manager.failures]
    return f"; plugins that failed to load: {'; '.join(failed)}" if failed else ""


# -- what the rest of the workbench asks for -----------------------------------------


def trainer_names(project_dir: Path | None) -> list[str]:
    """Every trainer name, built-in and from plugins."""
    return sorted(plugins_for(project_dir).merged("workbench_trainers"))


def trainer_class(name: str, project_dir: Path | None) -> type:
    """The trainer class registered as `name`; UsageError listing the others if none is."""
    manager = plugins_for(project_dir)
    cls = manager.find("workbench_trainers", name)
    if cls is None:
        known = ", ".join(trainer_names(project_dir))
        raise UsageError(f"no trainer named {name!r} (trainers: {known}){_failed_note(manager)}")
    return cls


def unknown_trainer_hint(project_dir: Path | None) -> str:
    """Plugin trainer names and failed plugins, for config errors."""
    manager = plugins_for(project_dir)
    builtin = manager.builtin("workbench_trainers")
    names = sorted(set(manager.merged("workbench_trainers")) - set(builtin))
    listed = f" or a plugin's trainer ({', '.join(map(repr, names))})" if names else ""
    return listed + _failed_note(manager)


def load_plugin_model(schema: dict[str, Any], model_file: Path, project_dir: Path | None) -> Any:
    """A model saved by a plugin trainer, loaded by that trainer's `load`."""
    framework, name = schema.get("framework"), schema.get("trainer")
    trainers = plugins_for(project_dir).merged("workbench_trainers")
    candidates = [trainers[name]] if name in trainers else []
    candidates += [c for c in trainers.values() if getattr(c, "framework", None) == framework]
    for cls in candidates:
        if callable(getattr(cls, "load", None)):
            try:
                return cls.load(schema, model_file)
            except Exception as exc:
                raise WorkbenchError(
                    f"cannot load the {framework} model: {_describe(exc)}"
                ) from exc
    raise WorkbenchError(
        f"no installed plugin can load {framework!r} models (a trainer with framework "
        f"{framework!r} and a load(schema, model_file) method)"
    )


def exporter(fmt: str, project_dir: Path | None) -> Callable[..., dict[str, Any]]:
    manager = plugins_for(project_dir)
    fn = manager.find("workbench_exporters", fmt)
    if fn is None:
        known = ", ".join(sorted(manager.merged("workbench_exporters")))
        raise UsageError(f"unknown export format {fmt!r}; expected one of {known}")
    return fn


def export_formats(project_dir: Path | None) -> list[str]:
    return sorted(plugins_for(project_dir).merged("workbench_exporters"))


def drift_tests(project_dir: Path | None, names: Iterable[str | None] = ()) -> dict[str, Any]:
    """Drift tests from plugins; loads plugins only when `names` asks for one that
    is not built in."""
    manager = plugins_for(project_dir)
    builtin = manager.builtin("workbench_drift_tests")
    if not set(names) - set(builtin) - {None}:
        return {}
    tests = manager.merged("workbench_drift_tests")
    return {k: v for k, v in tests.items() if k not in builtin}


def validators(project_dir: Path | None) -> list[tuple[str, Callable[..., Any]]]:
    """(plugin name, validator) of every plugin validator."""
    return [
        (plugin, fn)
        for plugin, fns in plugins_for(project_dir).call("workbench_validators")
        for fn in fns
    ]


def notify_plugins(event: dict[str, Any], project_dir: Path | None = None) -> list[str]:
    """Hand `event` to every notifier with its settings; returns what failed, in words."""
    from workbench.config.settings import load_settings

    try:
        settings = load_settings().plugins
    except WorkbenchError as exc:
        return [f"settings: {exc.message}"]
    failures = []
    for name, hook in plugins_for(project_dir).notifiers():
        try:
            hook(event, dict(settings.get(name, {})))
        except Exception as exc:
            failures.append(f"{name}: {_describe(exc)}")
    return failures


def plugin_report(project_dir: Path | None = None) -> list[dict[str, Any]]:
    """Every plugin seen from `project_dir`, loaded afresh, for `workbench plugins list`."""
    return Plugins(project_dir, warn=False).load().report()
