"""The HTML form of a report, a comparison and a history: one self-contained page each
(templates/page.html.j2, rendered by Jinja2), its tables sortable and its plots interactive.

Plots are Vega-Lite specs drawn as SVG by Vega-Embed; the script (Vega, Vega-Lite and Vega-Embed,
about 0.9 MB) comes from vl-convert's offline bundle and is inlined, as are PNG figures, so
that a page loads nothing from the network. Vega-Lite rather than Plotly: Plotly's one script
is 4.8 MB (plotly 7.1), nearly all of a page's 5 MB budget, where Vega's is 0.9 MB.
"""
import base64
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harness import paths
from harness.atomic import write_atomically
from harness.report.tables import shown


@dataclass
class Section:
    """A part of a page: a heading, how to read it, then its lines, tables, notes and plots."""
    id: str
    heading: str
    how: str = ""
    lead: list = field(default_factory=list)     # lines above the tables (a verdict)
    tables: list = field(default_factory=list)   # table()'s
    notes: list = field(default_factory=list)    # lines below them (what an empty table means)
    charts: list = field(default_factory=list)   # chart()'s
    images: list = field(default_factory=list)   # image()'s


def table(df: pd.DataFrame, id: str, caption: str = "", merge_mean_std: bool = False, marks=None) -> dict:
    """A table as the page shows it: the report's text cells (tables.shown), each with its sort
    key; `marks`, one per row, colour the rows of a verdict (worse, better, ...). Its element id is
    table-ID (a section's is its own name)."""
    cells, keys, align = shown(df, merge_mean_std)
    rows = [{"cells": [(text, None if _blank(key) else key) for text, key in zip(cells.iloc[i], keys.iloc[i])],
             "mark": None if marks is None else marks[i]} for i in range(len(cells))]
    return {"id": f"table-{id}", "caption": caption, "columns": list(cells.columns), "align": align, "rows": rows}


def _blank(key) -> bool:
    return key is None or (isinstance(key, float) and math.isnan(key))


def chart(id: str, title: str, spec: dict) -> dict:
    """An interactive plot: a Vega-Lite spec, its data inline."""
    return {"id": id, "title": title, "spec": spec}


def image(path: Path, caption: str) -> dict:
    """A PNG figure, inlined (`file`: its name beside the page's Markdown)."""
    return {"caption": caption, "file": path.name,
            "src": "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()}


@functools.cache
def _vega() -> str:
    """The script, built once per vl-convert version into the cache folder (building takes 1.5 s)."""
    import vl_convert
    path = paths.cache_dir() / "report" / f"vega-bundle-{vl_convert.__version__}.js"
    if not path.is_file():
        bundle = vl_convert.javascript_bundle()
        write_atomically(path, lambda f: f.write(bundle.encode()))
    return path.read_text()


@functools.cache
def _templates() -> Environment:
    return Environment(loader=PackageLoader("harness.report", "templates"), autoescape=select_autoescape(["j2"]),
                       undefined=StrictUndefined)


def write(path: Path, title: str, sections: list, subtitle=(), facts=(), facts_heading="Machine",
          counts=()) -> Path:
    """Render a page into `path`: `facts` (label, value) pairs under `facts_heading`, `counts`
    (mark, n) pairs of a verdict under the title."""
    charts = {c["id"]: c["spec"] for s in sections for c in s.charts}
    page = _templates().get_template("page.html.j2").render(
        title=title, subtitle=list(subtitle), facts=list(facts), facts_heading=facts_heading, counts=list(counts),
        sections=sections, charts=charts, vega=_vega() if charts else "")
    path.write_text(page)
    return path
