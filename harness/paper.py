"""`skip2bench paper [TABLE...]`: the Skip2-LoRA paper's tables from one command.

Each table names the runs it needs (an experiment on a lab, RUNS). `paper` runs those its runs
folder lacks (each with its own report), resumes those cut short, and leaves finished ones as
they are; then it writes one
report of every table asked (paper.md, a CSV per table, index.html): the project's figures and,
beside them, the paper's published ones where its abstract gives them (PUBLISHED), with the
settings every run used, each marked as the project's own choice where the paper's is not known.

The host tables (accuracy, time, memory, pareto) run on this host; the emulated ones (aarch64,
mcu) on the emulated lab, whose stand-ins must be up (`skip2bench lab up --lab emulated`),
and take about five minutes here. `--reduced` runs one seed and one repetition of each job: a check
that the command works, not the paper's figures.
"""
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from harness.config import load_experiment, load_lab
from harness.errors import UserError
from harness.plan import expand
from harness.records import RecordLog, record_key
from harness.report import CHARTS, PLOTS, TRADEOFF_PLOTS, html, tables, write_report
from harness.report.load import load_records, ordered, read_manifest

# name -> (experiment, lab): the runs the tables are made of.
RUNS = {
    "paper-fan": ("paper-fan", "local"),
    "paper-har": ("paper-har", "local"),
    "paper-aarch64": ("paper-aarch64", "emulated"),
    "mcu-fan": ("mcu-fan", "emulated"),
}
# What the Skip2-LoRA abstract reports (docs/methods.md names the methods it compares).
PAPER = "Skip2-LoRA (Matsutani et al., arXiv 2410.21073), abstract"
PUBLISHED = {
    "cut_vs_skip-lora": "−90.0 % on average (the counterpart with the same number of trainable parameters)",
    "cut_vs_lora-all": "not given",
    "accuracy": "preserved",
    "mcu_seconds": "a few seconds on the microcontroller board",
}


@dataclass(frozen=True)
class Table:
    title: str
    runs: tuple
    how: str


TABLES = {
    "accuracy": Table("Accuracy after fine-tuning per method and task", ("paper-fan", "paper-har"),
                      "Test accuracy after fine-tuning in %, mean ± std over seeds, the C runner on this host "
                      "(the NumPy runner's agree, as each run's report shows)."),
    "time": Table("Fine-tuning time and Skip2-LoRA's cut per implementation and board",
                  ("paper-fan", "paper-har"),
                  "Mean fine-tuning time per task and method; the cut is 100 × (1 − t(skip2-lora) / t(rival)) "
                  "against lora-all (more trainable parameters) and skip-lora (the same number), then averaged "
                  "over the tasks as the paper does."),
    "memory": Table("Training memory per method", ("paper-fan", "paper-har"),
                    "Trainable parameters and the analytic training memory (weights, gradients, optimizer, "
                    "activations, cache) in KiB, per task."),
    "pareto": Table("The rivals' Pareto pictures", ("paper-fan", "paper-har"),
                    "Accuracy against fine-tuning time and against training memory, a point per method, board and "
                    "seed."),
    "aarch64": Table("Fine-tuning time on the emulated aarch64 board", ("paper-aarch64",),
                     "The C runner cross-compiled for aarch64, run under QEMU user mode on this host: times are "
                     "emulated, not a real board's; the cut as in the time table."),
    "mcu": Table("Fine-tuning on the emulated MCU boards", ("mcu-fan",),
                 "Instructions counted by QEMU (-icount) and seconds at each board's nominal clock from them "
                 "(ft_s = instructions / clock), and, where the lab ran the cycle model, its Cortex-M4 cycle "
                 "estimate and the seconds from that (ft_s_cycles = cycles_est / clock): both emulated "
                 "estimates, not a board's measured time."),
}
HOST_TABLES = ("accuracy", "time", "memory", "pareto")
EMULATED_TABLES = ("aarch64", "mcu")
ENDED = ("ok", "fail", "unsupported")  # a job that ran to its end (an error is run again)


def runs_needed(names: list) -> list:
    return list(dict.fromkeys(run for name in names for run in TABLES[name].runs))


def run_all(names: list, runs_dir: Path, reduced: bool, data_root, console: Console) -> tuple[dict, int]:
    """Each run the tables need, made or completed in runs_dir/RUN: their folders by name, and
    how many of their jobs ended in error. A run whose every job ended (ok, fail or unsupported)
    is kept as it is."""
    from harness.run import run_experiment
    done, errors = {}, 0
    for run in runs_needed(names):
        experiment, lab = RUNS[run]
        out = runs_dir / run
        shape = _reduce if reduced else None
        if _complete(out, experiment, lab, shape):
            console.print(f"[bold]{run}[/]: complete in {out}, kept")
        else:
            resume = (out / "records.jsonl").is_file()
            console.print(f"[bold]{run}[/]: {'completing' if resume else 'running'} {experiment} on lab {lab}"
                          f"{' (reduced: one seed, one repetition)' if reduced else ''}")
            errors += run_experiment(Path(experiment), Path(lab), out, resume, data_root, console,
                                     shape=shape)[1]["error"]
            write_report(out)  # each run's own report too, as `run` writes it
        done[run] = out
    return done, errors


def _reduce(exp, lab):
    return exp.model_copy(update={"seeds": exp.seeds[:1], "repetitions": 1}), lab


def _complete(out: Path, experiment: str, lab: str, shape) -> bool:
    """Whether the run in `out` has a record that ended for every job of the experiment."""
    if not (out / "records.jsonl").is_file():
        return False
    exp, lab = load_experiment(Path(experiment)), load_lab(Path(lab))
    if shape:
        exp, lab = shape(exp, lab)
    ended = {record_key(r) for r in RecordLog(out / "records.jsonl").read() if r["status"] in ENDED}
    return len(ended) >= len(expand(exp, lab))


def write(names: list, run_dirs: dict, out: Path) -> Path:
    """paper.md, a CSV per table and index.html into `out`, from the runs' records."""
    out.mkdir(parents=True, exist_ok=True)
    frames = {run: load_records(path) for run, path in run_dirs.items()}
    sections, body, claims = [], [], []
    for name in names:
        table = TABLES[name]
        df = pd.concat([frames[run] for run in table.runs], ignore_index=True)
        section = html.Section(name, table.title, how=table.how)
        body += ["", f"## {table.title}", "", f"*How to read:* {table.how}", ""]
        for part, (frame, merge) in BUILDERS[name](df, out, section, claims).items():
            frame.to_csv(out / f"{part}.csv", index=False)
            section.tables.append(html.table(frame, part, merge_mean_std=merge))
            body += [tables.markdown(frame, merge_mean_std=merge), ""]
        body += [f"![{image['caption']}]({image['file']})" for image in section.images]
        sections.append(section)
    claims_table = pd.DataFrame(claims, columns=["claim", "where", "paper", "this project"])
    claims_table.to_csv(out / "published.csv", index=False)
    settings = _settings(run_dirs)
    settings.to_csv(out / "settings.csv", index=False)
    title, source = "skip2bench paper: the Skip2-LoRA paper's tables", f"Published figures: {PAPER}."
    runs = "Runs: " + ", ".join(f"{run} ({path})" for run, path in run_dirs.items()) + "."
    settings_how = "What each run used; the paper's abstract gives none, so each is the project's own choice."
    lines = [f"# {title}", "", source, "", runs, "", "## The paper's figures beside the project's", "",
             tables.markdown(claims_table), "", "## Settings of every run", "", settings_how, "",
             tables.markdown(settings), *body]
    (out / "paper.md").write_text("\n".join(lines) + "\n")
    html.write(out / "index.html", title, [
        html.Section("published", "The paper's figures beside the project's", how=source,
                     tables=[html.table(claims_table, "published")]),
        html.Section("settings", "Settings of every run", how=settings_how, tables=[html.table(settings, "settings")]),
        *sections], subtitle=[runs])
    return out


def _accuracy(df, out, section, claims) -> dict:
    acc = tables.accuracy(df[df["impl"].eq("c")])
    wide = acc.pivot(index="variant", columns="task", values=["acc_after_mean", "acc_after_std"])
    frame = pd.DataFrame({"variant": ordered(wide.index)})
    for task in sorted(acc["task"].unique()):
        for stat in ("mean", "std"):
            frame[f"{task}_{stat}"] = frame["variant"].map(wide[(f"acc_after_{stat}", task)])
    skip2, counterpart = (acc[acc["variant"].eq(v)].set_index("task")["acc_after_mean"] for v in ("skip2-lora",
                                                                                                   "skip-lora"))
    gap = (skip2 - counterpart).dropna()
    claims.append({"claim": "accuracy of skip2-lora against skip-lora", "where": "C on this host, mean over tasks",
                   "paper": PUBLISHED["accuracy"], "this project": f"{gap.mean():+.2f} points "
                   f"({', '.join(f'{t} {v:+.2f}' for t, v in gap.items())})"})
    return {"accuracy": (frame, True)}


def _cuts(df, claims, where: str) -> dict:
    times = tables.time(df)[["task", "variant", "impl", "board", "ft_time_s", "ft_macs", "trainable_params"]]
    cuts = tables.reduction(df)
    cols = ["task", "impl", "board", "time_red_vs_lora-all_%", "time_red_vs_skip-lora_%"]
    mean = cuts.groupby(["impl", "board"], as_index=False)[cols[3:]].mean().assign(task="mean over tasks")[cols]
    for _, row in mean.iterrows():
        for rival in ("skip-lora", "lora-all"):
            claims.append({"claim": f"fine-tuning time cut against {rival}", "where": f"{row['impl']} on "
                           f"{row['board']}{where}", "paper": PUBLISHED[f"cut_vs_{rival}"],
                           "this project": f"−{row[f'time_red_vs_{rival}_%']:.1f} %"})
    return {"times": (times, False), "cuts": (pd.concat([cuts[cols], mean], ignore_index=True), False)}


def _time(df, out, section, claims) -> dict:
    return _cuts(df, claims, "")


def _aarch64(df, out, section, claims) -> dict:
    return {f"aarch64_{k}": v for k, v in _cuts(df, claims, " (emulated)").items()}


def _memory(df, out, section, claims) -> dict:
    times = tables.time(df[df["impl"].eq("c")])
    return {"memory": (times[["task", "variant", "trainable_params", "mem_total_KiB"]], False)}


def _pareto(df, out, section, claims) -> dict:
    """The report's accuracy-against-cost pictures: the interactive chart and the PNG (for paper.md)."""
    for file in TRADEOFF_PLOTS:
        caption, draw = next((caption, draw) for name, caption, draw in PLOTS if name == file)
        chart_title, make = CHARTS[file]
        spec = make(df)
        if spec:
            section.charts.append(html.chart(file.removesuffix(".png"), chart_title, spec))
        if draw(df, out / file):
            section.images.append(html.image(out / file, caption))
    return {}


def _mcu(df, out, section, claims) -> dict:
    fit = tables.fit(df)
    if fit is None:
        raise UserError("the mcu-fan run holds no MCU board's records; run it on the emulated lab")
    frame = fit[[c for c in ("board", "task", "variant", "status", "instructions", "ft_s", "MACs/instr",
                             "cycles_est", "ft_s_cycles") if c in fit]]
    for _, row in frame[frame["variant"].str.startswith("skip2-lora")].iterrows():
        by_cycles = f" ({row['ft_s_cycles']:.2f} s by the cycle model)" if "ft_s_cycles" in row else ""
        claims.append({"claim": "fine-tuning time on the MCU board", "where": f"{row['variant']} on {row['board']} "
                       f"(emulated, at its nominal clock)", "paper": PUBLISHED["mcu_seconds"],
                       "this project": f"{row['ft_s']:.2f} s{by_cycles}"})
    return {"mcu": (frame, False)}


BUILDERS = {"accuracy": _accuracy, "time": _time, "memory": _memory, "pareto": _pareto, "aarch64": _aarch64,
            "mcu": _mcu}


def _settings(run_dirs: dict) -> pd.DataFrame:
    """The settings the runs used (each manifest's experiment), a row per setting, a column per run."""
    by_run = {}
    for run, path in run_dirs.items():
        exp = read_manifest(path).get("experiment") or {}
        by_run[run] = {"seeds": exp.get("seeds"), "repetitions": exp.get("repetitions"),
                       **{f"{part}.{key}": value for part in ("model", "pretrain", "finetune")
                          for key, value in (exp.get(part) or {}).items() if value not in (None, {}, [])}}
    names = list(dict.fromkeys(key for settings in by_run.values() for key in settings))
    return pd.DataFrame([{"setting": key, **{run: str(by_run[run].get(key, "–")) for run in by_run},
                          "source": "the project's choice (the paper's is not known)"} for key in names])
