"""The translation tasks: which image stack becomes which.

A translation *task* names the source and target image stacks (:data:`TASKS`): ``s2s``
maps SDSS images onto a second SDSS exposure of the same galaxies (the control that
measures model error alone: the target differs from the input only by its noise) and
``s2c`` translates SDSS into CFHTLS. No torch here: the dashboards list the tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from clapkit.errors import ValidationError

__all__ = ["TASKS", "Task", "task"]


@dataclass(frozen=True)
class Task:
    """A translation task: which image stack becomes which.

    Examples
    --------
    >>> task("s2c")
    Task(name='s2c', source='sdss', target='cfhtls')
    """

    name: str
    source: str
    target: str


TASKS = {
    # The control's target is a second SDSS exposure (another noise draw of the same
    # galaxies): with the source itself as target the task would be the identity.
    "s2s": Task("s2s", "sdss", "sdss_repeat"),
    "s2c": Task("s2c", "sdss", "cfhtls"),
}


def task(name: str) -> Task:
    """The task called ``name`` (``"s2s"`` or ``"s2c"``); anything else is refused."""
    if name not in TASKS:
        raise ValidationError(f"unknown translation task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]
