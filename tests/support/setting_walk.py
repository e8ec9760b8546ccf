"""Follow one pretraining setting through the workflow's own files as the code runs.

The setting is given a value object of its own (a float or an int made at run time, so that
no other value is the same object); a ``sys.setprofile`` hook looks at every Python call and
return while the traced code runs. Wherever the value is an argument or a return value,
itself or as an item or field of one (the settings mapping, the settings dataclass, the
schedule object that keeps it), the stack of the workflow's own frames at that moment
(rule files, rule scripts, the library) is recorded, until the optimizer and its
learning-rate schedule are built (the return of torch's LRScheduler.__init__, which has set
the first step's rate): what the run does with the settings after that (the checkpoint's
record of them, the tracker's, run.json) is not on the way to the optimizer. A global
optimizer-step hook then records the stack of the first optimizer step and stops the run
there.

Used by tests/test_layout.py (the walk of a setting from the config to the optimizer step)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from torch.optim.lr_scheduler import LRScheduler
from torch.optim.optimizer import register_optimizer_step_pre_hook

REPO = Path(__file__).resolve().parents[2]
OURS = str(REPO / "workflow") + "/"


class Reached(Exception):
    """Raised by the optimizer-step hook: the walk got to the optimizer's first step."""


def _holds(obj: Any, value: Any) -> bool:
    """`obj` is `value`, or has it as an item (a mapping) or a field (an object's own
    attributes)."""
    if obj is value:
        return True
    try:
        if isinstance(obj, dict):
            return any(v is value for v in list(obj.values()))
        fields = object.__getattribute__(obj, "__dict__")
    except (AttributeError, TypeError, RuntimeError):
        return False
    return isinstance(fields, dict) and any(v is value for v in list(fields.values()))


def _our_stack(frame) -> list[tuple[str, str]]:
    """(file relative to the repository, function) of the workflow's own frames on the
    stack of `frame`, outermost first."""
    out = []
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(OURS):
            out.append((str(Path(name).relative_to(REPO)), frame.f_code.co_qualname))
        frame = frame.f_back
    return out[::-1]


class SettingTrace:
    """The stacks of our frames at every call or return that carries `value` (list of
    lists, in the order they happened; :attr:`stacks`), and at the optimizer's first step
    (:attr:`step_stack`, when :meth:`stop_at_first_step` was used)."""

    def __init__(self, value: Any):
        self.value = value
        self.stacks: list[list[tuple[str, str]]] = []
        self.step_stack: list[tuple[str, str]] | None = None
        self.built = False  # the optimizer and its schedule exist

    def _profile(self, frame, event, arg) -> None:
        if self.built:
            return
        if event == "return" and frame.f_code.co_name == "__init__":
            self.built = isinstance(frame.f_locals.get("self"), LRScheduler)
        if event == "call":
            code = frame.f_code
            n = code.co_argcount + code.co_kwonlyargcount
            local = frame.f_locals
            carried = any(_holds(local.get(name), self.value) for name in code.co_varnames[:n])
        elif event == "return":
            carried = _holds(arg, self.value)
        else:
            return
        if carried:
            stack = _our_stack(frame)
            if stack and stack not in self.stacks:
                self.stacks.append(stack)

    def run(self, fn, *args, **kwargs) -> Any:
        """`fn(*args, **kwargs)` under the hook."""
        sys.setprofile(self._profile)
        try:
            return fn(*args, **kwargs)
        finally:
            sys.setprofile(None)

    def stop_at_first_step(self):
        """A global optimizer-step pre-hook that records the stack and raises
        :class:`Reached`; the caller removes it (the returned handle)."""

        def hook(optimizer, args, kwargs):
            sys.setprofile(None)
            self.step_stack = _our_stack(sys._getframe(1))
            raise Reached

        return register_optimizer_step_pre_hook(hook)


def walk_files(stacks: list[list[tuple[str, str]]]) -> list[str]:
    """The distinct files of `stacks`, in the order they are first entered."""
    return list(dict.fromkeys(f for stack in stacks for f, _ in stack))


def package(path: str) -> str:
    """The package of a walk's file: dnalm.<stage>, or the rules or the scripts folder."""
    parts = Path(path).parts
    if parts[:3] == ("workflow", "scripts", "dnalm"):
        return f"dnalm.{parts[3]}"
    return "/".join(parts[:2])


def reentered(files: list[str]) -> list[str]:
    """The packages that `files` (in order) leave and come back to."""
    runs: list[str] = []
    for p in map(package, files):
        if not runs or runs[-1] != p:
            runs.append(p)
    return sorted({p for p in runs if runs.count(p) > 1})
