"""`skip2bench data`: what each task holds, or where its missing data set is expected."""
from rich.markup import escape

from harness import paths
from harness.tasks import TASKS, DataError, expected_location, load_task


def _split(d, split) -> str:
    y = getattr(d, f"y_{split}")
    return f"{len(y)} ({' / '.join(str(int((y == c).sum())) for c in range(len(d.classes)))})"


def describe_tasks(data_root, console, experiment=None):
    """The built-in tasks, or the tasks of `experiment` (an Experiment) split as it says."""
    tasks = ({name: experiment.task_spec(name) for name in experiment.tasks} if experiment
             else {name: info.spec for name, info in TASKS.items()})
    console.print("Samples per split, with class counts in the order of the classes.")
    for name, spec in tasks.items():
        builtin = TASKS.get(name)
        about = builtin.description if builtin and spec == builtin.spec else spec.describe()
        console.print(f"\n[bold]{escape(name)}[/] ({spec.kind}): {escape(about)}")
        try:
            d = load_task(name, data_root=data_root, cache_dir=paths.cache_dir(), spec=spec)
        except DataError as e:
            console.print(f"  [red]unreadable[/]: {escape(str(e))}")
            continue
        where = expected_location(name, data_root, spec) or "built in"
        console.print(escape(f"  classes: {', '.join(d.classes)}; {d.n_features} features; source: {where}"))
        console.print(f"  pre-train {_split(d, 'pre')}   fine-tune {_split(d, 'ft')}   test {_split(d, 'test')}")
