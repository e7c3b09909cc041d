"""`skip2bench data`: what each task holds, where its files come from, and whether they are there."""
from pathlib import Path

from rich.markup import escape

from harness import paths
from harness.hashing import sha256_file
from harness.tasks import TASKS, DataError, default_data_root, expected_location, load_task, sources


def _split(d, split) -> str:
    y = getattr(d, f"y_{split}")
    return f"{len(y)} ({' / '.join(str(int((y == c).sum())) for c in range(len(d.classes)))})"


def _state(path: Path, sha256: str) -> str:
    if not path.exists():
        return "missing"
    return "ok" if sha256_file(path) == sha256 else "[red]differs[/] (not the published file)"


def _sources(spec, root: Path, console) -> None:
    """Where the task's files come from, each with its sha256 and the state of the copy under `root`."""
    origin = sources.origin(spec.kind)
    if origin is None:
        return
    console.print(escape(f"  from {origin}"))
    console.print(escape(f"  files under {root} (sha256, path, state):"))
    for f in sources.files(spec):
        console.print(f"    {f.sha256}  {escape(str(f.path))}  {_state(root / f.path, f.sha256)}")
    console.print(escape(f"  get: {sources.how_to_get(spec.kind, root)}"))


def describe_tasks(data_root, console, experiment=None):
    """The built-in tasks, or the tasks of `experiment` (an Experiment) split as it says."""
    tasks = ({name: experiment.task_spec(name) for name in experiment.tasks} if experiment
             else {name: info.spec for name, info in TASKS.items()})
    root = default_data_root() if data_root is None else Path(data_root)
    console.print("Samples per split, with class counts in the order of the classes; then where each data set "
                  "comes from, and its files' sha256.")
    for name, spec in tasks.items():
        builtin = TASKS.get(name)
        about = builtin.description if builtin and spec == builtin.spec else spec.describe()
        console.print(f"\n[bold]{escape(name)}[/] ({spec.kind}): {escape(about)}")
        try:
            d = load_task(name, data_root=root, cache_dir=paths.cache_dir(), spec=spec)
        except DataError as e:
            console.print(f"  [red]unreadable[/]: {escape(str(e))}")
        else:
            where = expected_location(name, root, spec) or "built in"
            console.print(escape(f"  classes: {', '.join(d.classes)}; {d.n_features} features; source: {where}"))
            console.print(f"  pre-train {_split(d, 'pre')}   fine-tune {_split(d, 'ft')}   test {_split(d, 'test')}")
        _sources(spec, root, console)
