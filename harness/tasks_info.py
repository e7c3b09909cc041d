"""`skip2bench data`: what each task holds, or where its missing data set is expected."""
from harness import paths
from harness.tasks import TASKS, DataMissingError, expected_location, load_task


def _split(d, split) -> str:
    y = getattr(d, f"y_{split}")
    return f"{len(y)} ({' / '.join(str(int((y == c).sum())) for c in range(len(d.classes)))})"


def describe_tasks(data_root, console):
    console.print("Samples per split, with class counts in the order of the classes.")
    for name, info in TASKS.items():
        console.print(f"\n[bold]{name}[/]: {info.description}")
        try:
            d = load_task(name, data_root=data_root, cache_dir=paths.cache_dir())
        except DataMissingError as e:
            console.print(f"  [red]missing[/]: {e}")
            continue
        where = expected_location(name, data_root) if info.needs_files else "built in"
        console.print(f"  classes: {', '.join(d.classes)}; {d.n_features} features; source: {where}")
        console.print(f"  pre-train {_split(d, 'pre')}   fine-tune {_split(d, 'ft')}   test {_split(d, 'test')}")
