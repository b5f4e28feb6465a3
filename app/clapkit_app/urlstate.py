"""A page's selection in its URL, and links that open a galaxy on another page.

Each dashboard names the parts of its view a link should restore (methods, bin, metric,
galaxy, input set, task, model...) as :class:`UrlField` objects: how to read each as
text and how to apply text from a URL, and which parameters change it. A
:class:`UrlState` then keeps the query string of the browser's address in step with the
widgets (``?a=clap&b=softmax&bin=2&galaxy=1043``), so that a reload or a shared link
shows the same view, and applies the query of the address a page was opened with.

A value a page cannot show (a galaxy the run lacks, a method it does not have) changes
nothing and is said in a warning above the page (:attr:`UrlState.message`), with what
the page does have.

The query is read as text (:func:`urllib.parse.parse_qsl`), not through Panel's
``Location.sync``, which would turn a galaxy id ``007`` into the integer 7.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import panel as pn
import param


@dataclass
class UrlField:
    """One part of a page's view, as a query parameter.

    Attributes
    ----------
    name : str
        The query parameter (``galaxy``).
    read : callable
        ``read()``: the current value as text, None to leave the parameter out.
    write : callable
        ``write(text)``: show the value of the URL; returns None, or a sentence saying
        why it cannot (and what the page has instead).
    watch : sequence of (Parameterized, str)
        The parameters whose change changes the value.
    """

    name: str
    read: Callable[[], str | None]
    write: Callable[[str], str | None]
    watch: Sequence[tuple[param.Parameterized, str]] = field(default_factory=tuple)


def served_location() -> Any | None:
    """The browser location of this server session; None outside one (a notebook)."""
    document = pn.state.curdoc
    if document is None or document.session_context is None:
        return None
    return pn.state.location


class UrlState:
    """Keeps a page's fields and the query string of its address in step.

    Parameters
    ----------
    fields : sequence of UrlField
        Applied in this order (a bin after its variable).
    """

    def __init__(self, fields: Sequence[UrlField]) -> None:
        self.fields = list(fields)
        self.location: Any | None = None
        self._writing = False
        # Not a pn.pane.Alert: the pages' alerts say what a run lacks, this what a link asked.
        self.message = pn.pane.Markdown(
            "",
            visible=False,
            css_classes=["ck-url-message"],
            margin=(0, 10),
            styles={"background": "#fff3cd", "color": "#664d03", "padding": "0 8px"},
        )

    def bind(self, location: Any | None = None) -> None:
        """Apply the query of ``location`` (default: the served session's), then keep it
        in step with the fields. Outside a server session (and without ``location``)
        nothing happens."""
        location = location if location is not None else served_location()
        if location is None:
            return
        self.location = location
        self.apply(query_of(location.search))
        self._write()
        for item in self.fields:
            for owner, name in item.watch:
                owner.param.watch(self._write, name)
        # The browser's back and forward buttons change the query: show that view.
        location.param.watch(self._on_search, "search")

    def apply(self, query: dict[str, str]) -> list[str]:
        """Show the values of ``query`` (parameter -> text); returns the problems, also
        shown in :attr:`message`."""
        problems = []
        with pn.io.hold():
            for item in self.fields:
                if item.name in query:
                    problem = item.write(query[item.name])
                    if problem:
                        problems.append(problem)
        self.message.object = "\n".join(f"- {problem}" for problem in problems)
        self.message.visible = bool(problems)
        return problems

    def query(self) -> dict[str, str]:
        """The fields' current values (those that are not None)."""
        values = {item.name: item.read() for item in self.fields}
        return {name: str(value) for name, value in values.items() if value is not None}

    def _write(self, *events: Any) -> None:
        if self.location is None:
            return
        own = {item.name for item in self.fields}
        # Parameters of other components (or typed by a user) stay as they are.
        kept = {k: v for k, v in query_of(self.location.search).items() if k not in own}
        text = urllib.parse.urlencode({**kept, **self.query()})
        self._writing = True
        try:
            self.location.search = f"?{text}" if text else ""
        finally:
            self._writing = False

    def _on_search(self, event: param.parameterized.Event) -> None:
        if not self._writing:
            self.apply(query_of(event.new))


def query_of(search: str | None) -> dict[str, str]:
    """The parameters of a query string, as text (the last of repeated ones).

    Examples
    --------
    >>> query_of("?galaxy=007&a=clap&note=a%20b")
    {'galaxy': '007', 'a': 'clap', 'note': 'a b'}
    >>> query_of("")
    {}
    """
    return dict(urllib.parse.parse_qsl((search or "").lstrip("?"), keep_blank_values=False))


def choice_field(
    name: str, widget: pn.widgets.Select, what: str, allowed: Sequence[Any] | None = None
) -> UrlField:
    """A field of a select's value (its option's value, as text).

    Parameters
    ----------
    name : str
        The query parameter.
    widget : Select
        The select; its values are compared as text.
    what : str
        What the select chooses, for the message about a value it lacks ("method").
    allowed : sequence, optional
        The values the URL may choose (default: the select's current values).
    """

    def values() -> list[Any]:
        if allowed is not None:
            return list(allowed)
        options = widget.options
        return list(options.values()) if isinstance(options, dict) else list(options)

    def write(text: str) -> str | None:
        for value in values():
            if str(value) == text:
                widget.value = value
                return None
        choices = ", ".join(str(v) for v in values())
        return f"No {what} '{html.escape(text)}' here: the {what}s are {html.escape(choices)}."

    return UrlField(
        name,
        lambda: None if widget.value is None else str(widget.value),
        write,
        [(widget, "value")],
    )


def unknown_id_message(text: str, ids: Sequence[Any] | np.ndarray, where: str) -> str:
    """What to say about a galaxy id ``text`` that is not among ``ids``.

    Examples
    --------
    >>> unknown_id_message("9", np.array([3, 1, 2]), "in this run")
    "No galaxy with id '9' in this run: its 3 galaxies have ids 1 to 3 (first listed: 3, 1, 2)."
    >>> unknown_id_message("x", [], "here")
    "No galaxy with id 'x' here: there are no galaxies."
    """
    ids = np.asarray(ids)
    head = f"No galaxy with id '{html.escape(text)}' {where}"
    if ids.size == 0:
        return f"{head}: there are no galaxies."
    first = ", ".join(html.escape(str(_plain(i))) for i in ids[:3])
    if ids.dtype.kind in "iuf":
        span = f"ids {_plain(ids.min())} to {_plain(ids.max())}"
    else:
        span = "ids such as those"
    return f"{head}: its {ids.size} galaxies have {span} (first listed: {first})."


def galaxy_links(galaxy_id: Any, pages: dict[str, str]) -> str:
    """Markdown links that open ``galaxy_id`` on other pages (``path -> text``).

    Examples
    --------
    >>> galaxy_links(12, {"neighbours": "its neighbours"})
    'Open galaxy 12: [its neighbours](./neighbours?galaxy=12)'
    >>> galaxy_links(12, {})
    ''
    """
    if galaxy_id is None or not pages:
        return ""
    query = urllib.parse.urlencode({"galaxy": str(galaxy_id)})
    links = " · ".join(f"[{text}](./{path}?{query})" for path, text in pages.items())
    return f"Open galaxy {html.escape(str(galaxy_id))}: {links}"


def translation_has(root: Any, galaxy_id: Any) -> bool:
    """Whether the translation page of run ``root`` shows ``galaxy_id`` (some task
    evaluated it); read through the per-process cache of that page's store."""
    from clapkit_app.translation_store import load_translation

    try:
        data = load_translation(root)
    except (OSError, ValueError, KeyError):  # a broken run: its page says why
        return False
    return data.ok and any(task.row_of(galaxy_id) is not None for task in data.tasks.values())


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
