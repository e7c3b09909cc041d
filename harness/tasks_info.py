"""`skip2bench data`: what each task holds, or where its missing data set is expected."""
from rich.table import Table

from harness import paths
from harness.tasks import TASKS, DataMissingError, expected_location, load_task


def _balance(y, classes) -> str:
    counts = [int((y == c).sum()) for c in range(len(classes))]
    return " / ".join(f"{n}" for n in counts)


def describe_tasks(data_root, console):
    table = Table(title="skip2bench data tasks (class counts in the order of the classes column)")
    for col in ("task", "classes", "features", "pre-train", "fine-tune", "test", "source"):
        table.add_column(col)
    for name, info in TASKS.items():
        try:
            d = load_task(name, data_root=data_root, cache_dir=paths.cache_dir())
        except DataMissingError as e:
            table.add_row(name, "-", "-", "-", "-", "-", f"[red]missing[/]: {e}")
            continue
        table.add_row(name, ", ".join(d.classes), str(d.n_features),
                      *(f"{len(getattr(d, f'y_{s}'))} ({_balance(getattr(d, f'y_{s}'), d.classes)})"
                        for s in ("pre", "ft", "test")),
                      str(expected_location(name, data_root)) if info.needs_files else "built in")
    console.print(table)
