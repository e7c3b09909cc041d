"""Turn a run directory into run_dir/report/: tables (Markdown + CSV), plots (PNG), report.md and
index.html (the same report as one self-contained page, html.py)."""
from pathlib import Path

from harness.report import charts, growth, html, overhead, phases, plots, speed, tables
from harness.report.load import ReportError, load_records, read_manifest
from harness.targets.facts import cpu_words

__all__ = ["ReportError", "write_report"]

# name, heading, how to read it, builder, whether mean/std columns merge into "mean ± std",
# what an empty table means
TABLES = [
    ("accuracy", "Accuracy",
     "Test accuracy before and after fine-tuning in %, mean ± std over seeds (repetitions of a job "
     "are averaged first); n counts jobs, fail the records that diverged (scored with their accuracies, where the "
     "runner reported one); infrastructure errors are left out.",
     tables.accuracy, True, "No scored records."),
    ("time", "Fine-tuning time, cost and memory",
     "Means over seeds; fwd/bwd/upd/cache split ft_time_s (the rest is bookkeeping); ft_macs and "
     "trainable_params are exact counts; cache_hit_% is empty when the cache was off; mem_total_KiB "
     "is the analytic sum of weights, gradients, optimizer state, activations and cache.",
     tables.time, False, "No scored records."),
    ("reduction", "Skip2-LoRA reduction",
     "100 × (1 − skip2-lora / rival) for mean fine-tuning time and for MACs; positive means "
     "skip2-lora is cheaper. The Skip2-LoRA abstract reports −90 % time on average against the "
     "counterpart with the same number of trainable parameters.", tables.reduction, False,
     "No scored skip2-lora records."),
    ("agreement", "Cross-implementation agreement",
     "One row per job run by several implementations: the same job must reach the same accuracy "
     "and count the same MACs; flag names what differs.", tables.agreement, False,
     "No job was scored on more than one implementation."),
    ("fit", "MCU boards: what fits, instructions, memory",
     "Per MCU board and method: fine-tuning instructions (QEMU -icount: exact, host transfers left "
     "out) and ft_s = instructions / nominal clock (an emulated estimate), MACs per instruction; "
     "where QEMU ran the cycle model (targets/c/cyclemodel), its estimated Cortex-M4 cycles and "
     "ft_s_cycles = cycles / nominal clock; "
     "RAM used per region (static data from the firmware's ELF, the painted stack's high-water, "
     "the data set, the arena and the cache store where the firmware placed them) against the "
     "region's size, flash (firmware + model image + data set); the arena and the cache store "
     "(apart from the arena when it does not fit beside it) and the regions they sat in; input rows "
     "streamed and their transfer time; for each refused job the board's reason. Measured on the "
     "board, not estimated.", tables.fit, False, None),
    ("speed", "Speed: the C core against NumPy and PyTorch",
     "Per board, task, seed and method, from jobs taken in paired rounds (each round runs every "
     "method once, its impls back to back, then the board's probes): times are medians of ft_time_s, "
     "the fine-tuning loop timed by each runner itself; speed-up = t(other) / t(C); C GFLOP/s = "
     "2 · ft_macs / t(C), against the round's sgemm peak of NumPy's BLAS (a square product and the "
     "model's own products) and the C core's own ceiling (`skip2run --ceiling`). Every ratio is the "
     "median over rounds of the ratio within one round, never a ratio of medians; the NumPy speed-up's "
     "spread is its range over rounds as a percentage of its median (the run's noise). acc spread: the "
     "largest disagreement of accuracy after over all runs, in test samples.",
     speed.speed, False, "No C job finished in this run."),
    ("speed_reduction", "Speed: Skip2-LoRA time reduction per implementation",
     "100 × (1 − t(skip2-lora) / t(rival)) within each round, median over rounds.",
     speed.reduction, False, "No skip2-lora job finished beside a rival."),
    ("epoch_bounds", "Speed: C core epochs against their bounds",
     "An epoch cannot beat its MACs at the core's ceiling (compute) nor the bytes it reads at the read "
     "bandwidth probed for a working set of its size (memory); its bound is the larger, at the probes of "
     "the same round. The first epoch of a cached method also runs the frozen forward over every sample.",
     speed.epoch_bounds, False, "No ceiling probe finished, so there are no bounds."),
    ("probes", "Probes: what each board can do",
     "Each probe's values over the rounds: the C core's ceiling (core, GFLOP/s) and read bandwidth per "
     "working-set bytes (read_BYTES, GB/s); the single-thread sgemm peak of NumPy's BLAS for a square "
     "product and for each model's own products (GFLOP/s).",
     speed.probes, False, "No probe finished."),
    ("growth_fits", "Growth: fine-tuning time over epochs and samples",
     "Per board, task, impl and method, from runs that swept epochs in paired rounds: fixed and per-epoch "
     "cost by least squares through the median times, and the cost per sample of a later epoch (a task "
     "with repeat_finetune holds the same samples, more of them, as a larger set would).",
     growth.fits, False, "No method finished at two epoch counts."),
    ("growth_cuts", "Growth: Skip2-LoRA's cut at each epoch count",
     "100 × (1 − t(skip2-lora) / t(rival)) within each round, median over rounds.",
     growth.cuts, False, "No skip2-lora job finished beside a rival."),
    ("overhead", "Overhead: what each board's transport adds per job",
     "Each job ran on the reference board and on the board back to back, taking turns; added = the "
     "board's wall_s − the reference's wall_s of the same job and round (wall_s: the harness's time "
     "around the whole job: staging, running the runner, reading its result).",
     overhead.overhead, False, "No job finished on both the reference and another board."),
    ("phases", "MCU boards: MACs per instruction by phase",
     "Per MCU board and method: the MACs of the forward, backward and update phases (products m·k·n, "
     "one MAC per trained scalar per SGD step; the frozen prefix over the cache misses when the job "
     "caches it; they add up to ft_macs) against each phase's instructions (QEMU -icount: exact), and "
     "the cache's own instructions.", phases.phases, False, "No MCU job finished."),
    ("products", "MCU boards: the core's products one by one",
     "Per MCU board: each product of one training step of the run's model (the products probe: "
     "operands in the board's RAM, the product timed alone), its MACs m·k·n against its instructions "
     "(QEMU -icount: exact) or its median seconds over rounds (a real board); bits: a hash of the "
     "result's bits, the same on every board when the core gives the same results; then per group "
     "(dense: the layers' forward, dW and dx; rank: x·A, du, dA; adapter: lora-all's other adapter "
     "products; skip: the skip adapters' stacked B) the sums over the products that fit.",
     phases.products, False, "No products probe finished."),
    ("status", "Status",
     "ok = finished; fail = the method diverged (a method result, scored); unsupported = the board "
     "cannot run the job (for example no NumPy), not scored and not retried until the board changes; "
     "error = infrastructure (runner crash, timeout, unreachable board), never scored: fix the cause "
     "and re-run.",
     tables.status, False, None),
]
# What a table's place says when it does not apply to a run; a table not named here is left
# out of such a run's report (the speed tables of a run not taken in rounds).
NOT_APPLICABLE = {
    "agreement": lambda df: f"Only one implementation ({df['impl'].iloc[0]}) ran, so there is nothing to compare.",
    "fit": lambda df: "No MCU board ran in this run.",
}
PLOTS = [
    ("time_breakdown.png", "Fine-tuning time by phase", plots.time_breakdown),
    ("acc_vs_time.png", "Accuracy vs fine-tuning time, Pareto front marked", plots.acc_vs_time),
    ("acc_vs_memory.png", "Accuracy vs training memory, Pareto front marked", plots.acc_vs_memory),
    ("epoch_times.png", "Time per epoch: cached variants run the full forward pass only in epoch 1",
     plots.epoch_times),
    ("growth.png", "Fine-tuning time against epochs", growth.plot),
]
# The accuracy-against-cost pictures (the paper's Pareto section draws them too).
TRADEOFF_PLOTS = ("acc_vs_time.png", "acc_vs_memory.png")
# The plots the HTML page draws interactively (hover a point for its method, board and seed),
# with their captions; the others are inlined as their PNG.
CHARTS = {
    "acc_vs_time.png": ("Accuracy vs fine-tuning time, a point per method, board and seed",
                        lambda df: charts.tradeoff(df, "ft_time_s", "fine-tuning time [s]")),
    "acc_vs_memory.png": ("Accuracy vs training memory, a point per method, board and seed",
                          lambda df: charts.tradeoff(df, "memory_kib", "training memory [KiB]")),
}


def write_report(run_dir: Path) -> Path:
    """Write the report of one run into run_dir/report/ and return that directory."""
    run_dir = Path(run_dir)
    df = load_records(run_dir)
    manifest = read_manifest(run_dir)
    out = run_dir / "report"
    try:
        out.mkdir(exist_ok=True)
        _write(df, manifest, run_dir, out)
    except OSError as e:
        raise ReportError(f"cannot write the report into {out}: {e.strerror or e}; free space or fix "
                          f"permissions and run `skip2bench report {run_dir}` again") from None
    return out


def _write(df, manifest, run_dir: Path, out: Path):
    """report.md and index.html, from one list of sections; a table's .md and .csv beside them."""
    title = f"skip2bench report — run {_run_id(manifest, df, run_dir)}"
    facts = _machine(manifest, df)
    lines = [f"# {title}", "", "## Machine", "", *[f"- **{k}:** {v}" for k, v in facts]]
    sections = []
    for name, heading, how, build, merge, empty in TABLES:
        table = build(df)
        section = html.Section(name, heading, how)
        head = ["", f"## {heading}", "", f"*How to read:* {how}", ""]
        if table is None:  # the table does not apply to this run
            _remove(out / f"{name}.md", out / f"{name}.csv")
            if name in NOT_APPLICABLE:
                section.notes.append(NOT_APPLICABLE[name](df))
                lines += [*head, *section.notes]
                sections.append(section)
            continue
        table.to_csv(out / f"{name}.csv", index=False)
        section.lead = _summary(name, table)
        if len(table):
            body = tables.markdown(table, merge_mean_std=merge)
            section.tables.append(html.table(table, name, merge_mean_std=merge))
        else:
            body = f"*{empty}*"
            section.notes.append(empty)
        for more_id, caption, more in _more(name, df, out):
            body += "\n\n" + caption + ("" if more is None else "\n\n" + tables.markdown(more))
            if more is None:
                section.notes.append(caption)
            else:
                section.tables.append(html.table(more, more_id, caption))
        (out / f"{name}.md").write_text(body + "\n")
        lines += [*head, *[line for lead in section.lead for line in (lead, "")], body]
        sections.append(section)

    lines += ["", "## Plots"]
    shown = html.Section("plots", "Plots")
    for filename, caption, draw in PLOTS:
        drawn = draw(df, out / filename)
        if not drawn:
            _remove(out / filename)
        if drawn is None:  # the plot does not apply to this run
            continue
        lines += ["", f"![{caption}]({filename})" if drawn else f"*{caption}: no scored records to plot.*"]
        chart_title, make = CHARTS.get(filename, (caption, lambda df: None))
        spec = make(df)
        if spec:
            shown.charts.append(html.chart(filename.removesuffix(".png"), chart_title, spec))
        elif drawn:
            shown.images.append(html.image(out / filename, caption))
        else:
            shown.notes.append(f"{caption}: no scored records to plot.")
    (out / "report.md").write_text("\n".join(lines) + "\n")
    html.write(out / "index.html", title, [*sections, shown], facts=facts)


def _remove(*paths: Path):
    """Drop what an earlier report of the same run wrote but this one does not."""
    for path in paths:
        path.unlink(missing_ok=True)


def _run_id(manifest: dict, df, run_dir: Path) -> str:
    ids = df["run_id"].dropna()
    return manifest.get("run_id") or (ids.iloc[0] if len(ids) else run_dir.name)


def _machine(manifest: dict, df) -> list:
    """Host and provenance facts, (label, value) pairs; every manifest field is optional."""
    host, git, versions = (manifest.get(k) or {} for k in ("host", "git", "versions"))
    mem = host.get("mem_bytes")
    counts = df["status"].value_counts()
    facts = [
        ("Created", manifest.get("created")),
        ("CPU", host.get("cpu")),
        ("Cores", host.get("cores")),
        ("Memory", f"{mem / 2**30:.1f} GiB" if isinstance(mem, (int, float)) else None),
        ("Platform", " ".join(str(v) for v in (host.get("platform"), host.get("machine")) if v) or None),
        ("Python", host.get("python") or versions.get("python")),
        ("NumPy", versions.get("numpy")),
        ("Git", git.get("sha") and f"{git['sha']}{' (dirty)' if git.get('dirty') else ''}"),
        ("Boards", "; ".join(_board(name, (manifest.get("boards") or {}).get(name))
                             for name in sorted(df["board"].astype(str).unique()))),
        ("Records", f"{len(df)} ({', '.join(f'{n} {s}' for s, n in counts.items())})"
                    + (f"; {df.attrs['superseded']} earlier records replaced by retries"
                       if df.attrs.get("superseded") else "")),
    ]
    return [(k, v) for k, v in facts if v not in (None, "")]


def _board(name: str, entry) -> str:
    """A board as the manifest saw it: what it is, and whether it is emulated."""
    facts = (entry or {}).get("facts") if isinstance(entry, dict) else None
    if not facts:
        return name
    shown = [facts.get("transport"), facts.get("machine"), cpu_words(facts), facts.get("emulated")]
    return f"{name} ({', '.join(str(v) for v in shown if v)})"


def _summary(name: str, table) -> list:
    """A one-line verdict above the tables where the rows alone do not say it."""
    if name == "speed" and len(table):
        return [speed.verdict(table)]
    if name == "agreement" and len(table):
        flagged = table["flag"].ne("").sum()
        return [f"{flagged} of {len(table)} jobs disagree between implementations."]
    return []


def _more(name: str, df, out: Path) -> list:
    """A section's further tables: (id, caption, the table or None for a caption alone)."""
    if name == "status":
        problems = tables.problems(df)
        problems.to_csv(out / "status_problems.csv", index=False)
        return [("status_problems", "Every record finished ok.", None) if problems.empty else
                ("status_problems", "Records that did not finish ok (infrastructure errors first):", problems)]
    if name == "overhead":
        return [("overhead_sent", *sent) for sent in [overhead.deployed(df)] if sent]
    return []
