"""A board's work root: the harness writes only in a folder it made and marked, and clears only
inside such a folder.

A work root is the harness's when it holds the marker file. An empty or missing folder, or one
that holds only the harness's layout (a work root from before the marker, the emulated lab's,
results/cache/boards), is adopted: the marker is written. Any other folder is refused, so that no
clean-up ever reaches a user's own files (a work root of `~` once lost the user's ~/tmp).
"""
from harness.errors import TargetError
from harness.transports import board_path, quote

MARKER = ".skip2bench-work-root"
# What the harness keeps in a work root (posix.py's layout).
LAYOUT = ("lock", "lock.owner", "runners", "models", "data", "jobs", "tmp")

# Prints "root PATH", or "foreign PATH" and up to five names that are not the harness's.
CLAIM = r"""
mkdir -p %(root)s && cd %(root)s || exit 1
if [ ! -f %(marker)s ]; then
  foreign=$(ls -A | grep -v -x -F %(layout)s | head -n 5)
  if [ -n "$foreign" ]; then printf 'foreign %%s\n%%s\n' "$(pwd -P)" "$foreign"; exit 0; fi
  echo "made by skip2bench, which removes only what it made here" > %(marker)s || exit 1
fi
echo "root $(pwd -P)"
"""


def claim_script(root: str) -> str:
    """The board-side claim of the lab's `root` (`~` and `~/...` are the board user's home)."""
    return CLAIM % {"root": board_path(root), "marker": MARKER,
                    "layout": " ".join(f"-e {quote(name)}" for name in LAYOUT)}


def claimed(output: str, board: str, root: str) -> str:
    """The work root's absolute path from the claim's output, or TargetError naming the fix."""
    first, *names = output.strip().splitlines() or [""]
    kind, _, path = first.partition(" ")
    if kind == "root" and path:
        return path
    if kind == "foreign":
        raise TargetError(f"board {board}: work root {root} ({path}) holds files skip2bench did not make "
                          f"({', '.join(names)}); it uses only a folder of its own: set work_root in the lab "
                          f"file to a new or empty folder, e.g. \"~/skip2bench\"")
    raise TargetError(f"board {board}: cannot make work root {root}: {first or 'no answer'}")


def clear(root: str, folder: str) -> str:
    """A command that empties `folder` of the work root, only if the root is the harness's."""
    return f"cd {quote(root)} && {{ [ ! -f {MARKER} ] || rm -rf {quote(folder)}; }}"


def remove(root: str) -> str:
    """A command that removes the whole work root, only if it is the harness's."""
    return f"[ ! -f {quote(root + '/' + MARKER)} ] || rm -rf {quote(root)}"
