"""The HTML pages (report, compare, history) in a real browser: headless Chromium under selenium.

Each page must load with nothing from the network (the browser's own log), no console error and
no broken image; every table is there with its rows; a click on a column's head sorts it; and a
plot's tooltip, on hovering a point whose values the test computes from the records, shows them.
A screenshot of each page is left in build/screenshots.
"""
import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from browser import browser  # noqa: F401 (a fixture)
from conftest import ROOT
from harness.records import RecordLog
from harness.report import write_report

BENCH = ROOT / "results" / "bench"
PAGE_LIMIT_BYTES = 5 << 20
LOAD_LIMIT_S = 3.0


def copy_run(source, dest):
    """A committed run's records and manifest, without its report."""
    dest.mkdir(parents=True)
    for name in ("records.jsonl", "manifest.json"):
        shutil.copy(source / name, dest / name)
    return dest


def rows(path) -> int:
    with open(path) as f:
        return sum(1 for _ in csv.DictReader(f))


def table_rows(browser, table_id: str) -> int:
    return browser.driver.execute_script(f"return document.getElementById('table-{table_id}').tBodies[0].rows.length")


def column_keys(browser, table_id: str, column: str) -> list:
    """The sort keys of a column of a table, top to bottom."""
    return browser.driver.execute_script(
        "const t = document.getElementById('table-' + arguments[0]);"
        "const i = [...t.tHead.rows[0].cells].findIndex(c => c.textContent === arguments[1]);"
        "return [...t.tBodies[0].rows].map(r => r.cells[i].getAttribute('data-key'))"
        ".filter(k => k !== null).map(parseFloat)", table_id, column)


def sort_by(browser, table_id: str, column: str):
    head = browser.driver.execute_script(
        "return [...document.getElementById('table-' + arguments[0]).tHead.rows[0].cells].find(c => c.textContent === arguments[1])",
        table_id, column)
    head.click()


def hover(browser, chart: str, *parts: str) -> str:
    """Hover the mark of a plot whose accessible label holds every one of `parts`; the tooltip's text."""
    from selenium.webdriver.common.action_chains import ActionChains
    marks = [m for m in browser.driver.find_elements("css selector", f"#{chart} svg path[aria-label]")
             if all(part in (m.get_attribute("aria-label") or "") + ";" for part in parts)]
    assert len(marks) == 1, f"{len(marks)} marks of {chart} labelled {parts}"
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", marks[0])
    ActionChains(browser.driver).move_to_element(marks[0]).perform()
    browser.wait(lambda d: d.find_element("id", "vg-tooltip-element").is_displayed(), what="the tooltip")
    return browser.driver.find_element("id", "vg-tooltip-element").text


def check_loaded(browser, page, name: str) -> float:
    """Open the page and check what every page must be; the seconds it took to load."""
    seconds = browser.open(page)
    asked = browser.requests()
    assert [u for u in asked if not u.startswith("data:")] == [page.resolve().as_uri()], asked
    assert browser.console_errors() == []
    assert browser.broken_images() == []
    print(f"{name}: {page.stat().st_size / 2**20:.2f} MB, loaded in {seconds:.2f} s; "
          f"screenshot {browser.screenshot(name)}")
    return seconds


def every_table_with_its_rows(browser, out):
    """Every table of the report on the page, each with the rows of its CSV."""
    tables = {p.stem for p in out.glob("*.csv")} - ({"status_problems"} if rows(out / "status_problems.csv") == 0 else set())
    ids = browser.driver.execute_script("return [...document.querySelectorAll('table')].map(t => t.id)")
    assert sorted(ids) == sorted(f"table-{name}" for name in tables)
    for name in tables:
        assert table_rows(browser, name) == rows(out / f"{name}.csv"), name


@pytest.mark.parametrize("run", ["paper-fan", "paper-har"])
def test_the_page_of_a_committed_paper_run(browser, tmp_path, run):
    out = write_report(copy_run(ROOT / "results" / run, tmp_path / run))
    page = out / "index.html"
    assert page.stat().st_size < PAGE_LIMIT_BYTES
    assert check_loaded(browser, page, f"report-{run}") < LOAD_LIMIT_S
    assert browser.driver.find_element("tag name", "h1").text == f"skip2bench report — run {run}"
    every_table_with_its_rows(browser, out)
    assert browser.driver.find_element("id", "fit").text.endswith("No MCU board ran in this run.")
    # Sorting: by time, up, then down.
    sort_by(browser, "time", "ft_time_s")
    up = column_keys(browser, "time", "ft_time_s")
    assert up == sorted(up) and up != column_keys(browser, "time", "ft_macs")
    sort_by(browser, "time", "ft_time_s")
    assert column_keys(browser, "time", "ft_time_s") == sorted(up, reverse=True)
    # Hover: skip2-lora in C, seed 1, on the first task: its seed's mean time and accuracy.
    recs = [r for r in RecordLog(out.parent / "records.jsonl").read() if r["record_type"] == "job"]
    task = sorted({r["task"] for r in recs})[0]
    mine = [r for r in recs if (r["task"], r["variant"], r["impl"], r["seed"]) == (task, "skip2-lora", "c", 1)]
    seconds, accuracy = np.mean([r["ft_time_s"] for r in mine]), 100 * np.mean([r["acc_after"] for r in mine])
    shown = hover(browser, "acc_vs_time", f"task: {task};", "method: skip2-lora;", "impl: c;", "seed: 1;")
    assert f"{accuracy:.2f}" in shown and "skip2-lora" in shown, shown
    time_line = next(line for line in shown.splitlines() if line.startswith("fine-tuning time"))
    assert float(time_line.split()[-1]) == pytest.approx(seconds, rel=1e-3), shown


def test_the_page_of_an_mcu_run_has_its_fit_table_and_the_reasons_of_its_refusals(browser, tmp_path):
    out = write_report(copy_run(ROOT / "results" / "mcu-rivals", tmp_path / "mcu-rivals"))
    check_loaded(browser, out / "index.html", "report-mcu-rivals")
    every_table_with_its_rows(browser, out)
    refused = browser.driver.find_element("id", "table-status_problems").text
    assert "the job needs 529 KB in sram for its arena" in refused and "unsupported" in refused


@pytest.fixture(scope="module")
def slower(tmp_path_factory):
    """Three sessions of the committed bench run, the last two with C skip-lora 1.6x slower."""
    folder = tmp_path_factory.mktemp("sessions")
    runs = [BENCH]
    for i in (1, 2, 3):
        run = copy_run(BENCH, folder / f"session{i}")
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["created"] += f"+{i}"
        (run / "manifest.json").write_text(json.dumps(manifest))
        recs = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
        for r in recs:
            if r["record_type"] == "job" and (r["variant"], r["impl"]) == ("skip-lora", "c") and i >= 2:
                r["ft_time_s"] *= 1.6
        (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        runs.append(run)
    return runs


def skip2bench(*args, code=0):
    done = subprocess.run([sys.executable, "-m", "harness", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == code, done.stdout + done.stderr
    return done


def test_the_compare_page_puts_the_verdict_first_and_shows_the_repetitions(browser, tmp_path, slower):
    out = tmp_path / "compare"
    skip2bench("compare", slower[0], slower[-1], "-o", out, code=1)
    check_loaded(browser, out / "index.html", "compare")
    assert table_rows(browser, "compare") == rows(out / "compare.csv")
    first = browser.driver.find_element("css selector", "#table-compare tbody tr")
    assert "mark-worse" in first.get_attribute("class") and "skip-lora" in first.text
    assert browser.driver.find_element("css selector", ".count[data-mark='worse']").text == "worse: 1"
    # The evidence: the slowed job's repetitions, base beside new.
    slow = [r for r in RecordLog(slower[-1] / "records.jsonl").read()
            if r["record_type"] == "job" and (r["variant"], r["impl"]) == ("skip-lora", "c")]
    shown = hover(browser, "repetitions", "side: new;", "repetition: 0;")
    assert float(shown.splitlines()[-1].split()[-1]) == pytest.approx(slow[0]["ft_time_s"], rel=1e-3), shown


def test_the_history_page_marks_the_step_on_its_plot(browser, tmp_path, slower):
    out = tmp_path / "history"
    skip2bench("history", *slower, "-o", out)
    check_loaded(browser, out / "index.html", "history")
    assert table_rows(browser, "steps") == rows(out / "steps.csv") == 1
    # The point at the last run farthest from every other job's there (a hover picks the mark on
    # top), its value from values.csv (each job's runs in order).
    runs = {}
    for r in csv.DictReader((out / "values.csv").open()):
        if r["metric"] == "ft_time_s":
            runs.setdefault(f"{r['board']} {r['task']} {r['variant']} {r['impl']}", []).append(float(r["median"]))
    last = {series: values[-1] for series, values in runs.items()}
    apart = max(last, key=lambda a: min(abs(np.log(last[a] / last[b])) for b in last if b != a))
    shown = hover(browser, "history-ft_time_s", f"run (revision): {len(slower) - 1};", f"series: {apart};")
    assert f"{last[apart]:.6g}" in shown, shown
