"""The interactive plots of the HTML pages, as Vega-Lite specs with their data inline (html.py
draws them): every mark's tooltip names what it is (method, board, seed, revision) and its value."""
import json

import pandas as pd

from harness.report.load import impl_key, ordered, scored, training_memory_kib
from harness.report.plots import WIDE

POINT = {"type": "point", "filled": True, "size": 70, "tooltip": True}


def tradeoff(df: pd.DataFrame, cost: str, title: str) -> dict | None:
    """Accuracy after fine-tuning against a cost (ft_time_s or the training memory), a point per
    method, board and seed (its repetitions averaged), a panel per task and impl on board."""
    rows = scored(df).assign(memory_kib=training_memory_kib(df))
    if rows.empty:
        return None
    points = (rows.groupby(["task", "impl", "board", "variant", "seed"], as_index=False)
              .agg(cost=(cost, "mean"), accuracy=("acc_after", "mean")).dropna())
    if points.empty:
        return None
    points["accuracy"] *= 100
    points["where"] = points["impl"] + " on " + points["board"]
    wide = points["cost"].max() / max(points["cost"][points["cost"] > 0].min(), 1e-300) > WIDE
    methods = ordered(points["variant"])
    return {
        "data": {"values": points.rename(columns={"variant": "method"}).to_dict("records")},
        "facet": {"row": {"field": "task", "title": None},
                  "column": {"field": "where", "title": None,
                             "sort": sorted(points["where"].unique(), key=lambda w: impl_key(w.split(" on ")[0]))}},
        "spec": {"width": 330, "height": 230, "mark": POINT, "encoding": {
            "x": {"field": "cost", "type": "quantitative", "title": title,
                  "scale": {"type": "log"} if wide else {"zero": False}},
            "y": {"field": "accuracy", "type": "quantitative", "title": "accuracy after [%]", "scale": {"zero": False}},
            "color": {"field": "method", "type": "nominal", "sort": methods,
                      "scale": {"scheme": "tableau20" if len(methods) > 10 else "tableau10"}},
            "tooltip": [{"field": "task"}, {"field": "method"}, {"field": "board"}, {"field": "impl"},
                        {"field": "seed"}, {"field": "cost", "title": title, "format": ".4g"},
                        {"field": "accuracy", "title": "accuracy after [%]", "format": ".2f"}]}},
        "resolve": {"scale": {"x": "shared", "y": "independent"}},
    }


def repetitions(values: pd.DataFrame) -> dict:
    """The repetitions of each changed job on both sides of a comparison: columns job, metric,
    side (base or new), value; a panel per job and metric."""
    return {
        "data": {"values": values.to_dict("records")},
        "facet": {"field": "job", "title": None, "type": "nominal"}, "columns": 3,
        "spec": {"width": 220, "height": 160, "mark": {**POINT, "size": 50, "opacity": 0.75}, "encoding": {
            "x": {"field": "side", "type": "nominal", "sort": ["base", "new"], "title": None},
            "xOffset": {"field": "repetition", "type": "nominal"},
            "y": {"field": "value", "type": "quantitative", "scale": {"zero": False}, "title": "as measured"},
            "color": {"field": "side", "type": "nominal", "sort": ["base", "new"]},
            "tooltip": [{"field": "job"}, {"field": "side"}, {"field": "repetition"},
                        {"field": "value", "format": ".4g"}]}},
        "resolve": {"scale": {"y": "independent"}},
    }


def history(values: pd.DataFrame, steps: pd.DataFrame, revisions: list, metric: str) -> dict:
    """The median of `metric` of each series over the runs (values: columns series, run,
    revision, median), a dashed rule before each run where a step starts."""
    order = list(range(len(revisions)))
    labels = json.dumps([r[:16] for r in revisions])
    axis = {"field": "run", "type": "quantitative", "title": "run (revision)",
            "scale": {"domain": [-0.5, len(revisions) - 0.5]},
            "axis": {"values": order, "labelExpr": f"{labels}[datum.value]", "labelAngle": -30}}
    lines = {"data": {"values": values.to_dict("records")},
             "mark": {"type": "line", "point": {"filled": True, "size": 50}, "tooltip": True},
             "encoding": {"x": axis, "y": {"field": "median", "type": "quantitative", "title": metric},
                          "color": {"field": "series", "type": "nominal", "title": None},
                          "tooltip": [{"field": "series"}, {"field": "revision"},
                                      {"field": "median", "title": metric, "format": ".6g"}, {"field": "n"}]}}
    rules = {"data": {"values": [{"at": s["run"] - 0.5, "mark": s["mark"], "series": s["series"]}
                                 for _, s in steps.iterrows()]},
             "mark": {"type": "rule", "strokeDash": [5, 4], "strokeWidth": 1.5},
             "encoding": {"x": {"field": "at", "type": "quantitative"},
                          # red: worse, green: better (a value, not a scale: the lines' colours are the series')
                          "color": {"condition": {"test": "datum.mark === 'worse'", "value": "#c0392b"},
                                    "value": "#27ae60"},
                          "tooltip": [{"field": "series"}, {"field": "mark"}]}}
    return {"width": 900, "height": 320, "layer": [lines, rules] if len(steps) else [lines]}
