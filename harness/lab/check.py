"""`skip2bench lab check`: reach every board, print its facts and what it can run, and prove
on every POSIX board what a run needs: the board lock taken and released, a file put and got
back, each runner deployed and started (the NumPy runner imported by the board's python in its
session, the C runner built or shipped and answering --about)."""
import secrets
import shutil
import time

from rich.markup import escape
from rich.table import Table

from harness import kinds, paths, runners
from harness.errors import TargetError
from harness.targets import facts as board_facts
from harness.transports import CommandTimeout, HostKeyRefused, LinkDown, quote


def _c_column(board, found: dict, reasons: dict, unsupported: dict) -> str:
    if "c" in unsupported:
        return f"[red]{escape(unsupported['c'])}[/]"
    if board.cross_compiler:
        where = shutil.which(board.cross_compiler)
        return (f"cross: {board.cross_compiler}" if where else
                f"[red]cross compiler {board.cross_compiler} not on this host[/]")
    return found.get("cc") or f"[red]{reasons.get('cc', 'no compiler')}[/]"


def probe_serial(board) -> dict:
    """An MCU board's row: its HELLO (board, clock, RAM regions, firmware)."""
    from harness.mcu import firmware, messages
    from harness.targets.mcu import check_hello
    from harness.transports.serial_link import ProtocolError, SerialLink
    t0 = time.perf_counter()
    try:
        link = SerialLink(board.port, board.link_timeout_s, board.link_tries, board.baudrate)
        try:
            hello = check_hello(link.request(messages.HELLO, messages.hello(link.session)), board.name)
        finally:
            link.close()
    except (LinkDown, ProtocolError) as e:
        return {"board": board.name, "ok": False, "why": str(e)}
    current = firmware.source_hash()
    ram = ", ".join(f"{name} {size // 1024} KB" for name, _, size, _ in hello.regions)
    return {"board": board.name, "ok": True, "ms": 1000 * (time.perf_counter() - t0), "machine": hello.board,
            "cpu": f"Cortex-M4F, {hello.clock_hz / 1e6:g} MHz", "mem": ram, "python": "-", "numpy": "-",
            "c": f"firmware {hello.firmware_hash[:12]}" + ("" if hello.firmware_hash == current else
                                                        " [yellow](another build: flashed by the next run)[/]"),
            "why": ""}


def prove(board, shell, cache_dir) -> tuple[str, dict]:
    """Do once what a run needs on the board (then release the lock and the connection): the
    first problem as one line with its fix ("" when none), and the implementations it cannot run
    with their reasons."""
    from harness.targets.posix import PosixTarget
    target = PosixTarget(board, shell, f"lab-check-{secrets.token_hex(4)}", cache_dir)
    try:
        target.prepare(list(board.impls), [])
        if target.down:
            return target.down, target.unsupported
        sample, path = secrets.token_bytes(4096), f"{target.root}/tmp/lab-check-{secrets.token_hex(4)}"
        try:
            shell.run(f"mkdir -p {quote(target.root + '/tmp')}", timeout=60)
            shell.put(sample, path)
            back = shell.get(path)
            shell.run(f"rm -f {quote(path)}", timeout=60)
        except (OSError, CommandTimeout) as e:
            return (f"board {board.name}: cannot put and get a file in {target.root}/tmp "
                    f"({getattr(e, 'strerror', None) or e or 'timed out'}); "
                    f"check that the board user may write there and that its disk has room"), target.unsupported
        if back != sample:
            return (f"board {board.name}: a file put on the board came back different "
                    f"({len(back)} of {len(sample)} bytes); check the board's disk and SSH server"), target.unsupported
        if "numpy" in board.impls and "numpy" not in target.unsupported:
            try:  # the session imports the runner, then ends at once: its stdin is empty
                target.run_script("numpy", "skip2_session.py", "skip2_runner", timeout=120)
            except TargetError as e:
                target.unsupported["numpy"] = (f"the NumPy runner does not start under `{board.python}` ({e}); "
                                               f"the board needs Python {'.'.join(map(str, runners.OLDEST_PYTHON))} or newer "
                                               f"with NumPy")
        return "", target.unsupported
    except (LinkDown, HostKeyRefused, TargetError) as e:
        return str(e), target.unsupported
    finally:
        target.close()


def probe_posix(board, shell, cache_dir) -> dict:
    """A POSIX board's row: reachable or why not, facts, and per capability the version or the reason."""
    t0 = time.perf_counter()
    try:
        shell.connect()
        extra = ["tools", *([] if board.cross_compiler else ["cc"])]
        done = shell.run(board_facts.script(board, extra), timeout=60)
        found, reasons = board_facts.parse(done.stdout.decode(errors="replace"))
    except (LinkDown, HostKeyRefused, OSError, CommandTimeout) as e:
        shell.close()
        why = str(e) if not isinstance(e, CommandTimeout) else "the facts probe timed out after 60 s; is the board overloaded?"
        return {"board": board.name, "ok": False, "why": why}
    ms = 1000 * (time.perf_counter() - t0)
    missing = [t for t in ("flock", "sha256sum") if found.get(t) is None]
    if missing:
        shell.close()
        problem, unsupported = f"lacks {' and '.join(missing)} (install util-linux and coreutils on it)", {}
    else:
        problem, unsupported = prove(board, shell, cache_dir)
    numpy = (f"[yellow]{escape(reasons.get('numpy', 'missing'))}[/]" if not found.get("numpy") else
             f"[yellow]{escape(unsupported['numpy'])}[/]" if "numpy" in unsupported else found["numpy"])
    return {"board": board.name, "ok": not problem, "ms": ms,
            "transport": "/".join(filter(None, [board.transport, shell.facts.get("file_transfer")])),
            "noise": getattr(shell, "noise", None),
            "machine": found.get("machine"), "cpu": found.get("cpu"), "cores": found.get("cores"),
            "mem": f"{found['mem_total_kb'] / 2**20:.1f} GiB" if found.get("mem_total_kb") else None,
            "python": found.get("python") or f"[red]{reasons.get('python')}[/]", "numpy": numpy,
            "c": _c_column(board, found, reasons, unsupported), "why": problem}


def check(lab, console) -> bool:
    """Print the table; True when every board is reachable and usable."""
    rows = [kinds.of(b).probe(b, paths.cache_dir()) for b in lab.boards]
    table = Table(title=f"lab {lab.name}", show_lines=False)
    for column in ("board", "transport", "reachable", "machine", "cpu", "cores", "memory", "python",
                   "numpy", "C compiler", "problem"):
        table.add_column(column, overflow="fold")
    for board, row in zip(lab.boards, rows):
        reach = f"[green]yes[/] ({row['ms']:.0f} ms)" if "ms" in row else "[red]no[/]"
        table.add_row(board.name, row.get("transport", board.transport), reach, row.get("machine"), row.get("cpu"),
                      str(row.get("cores") or ""), row.get("mem"), row.get("python"), row.get("numpy"),
                      row.get("c"), f"[red]{escape(row['why'])}[/]" if row["why"] else "")
    console.print(table)
    for board, row in zip(lab.boards, rows):
        if row.get("noise"):
            console.print(f"[yellow]warning:[/] board {board.name}: its login shell prints text around every "
                          f"command ({escape(repr(row['noise'][:80]))}); skip2bench sets it aside, but quiet it "
                          f"for non-interactive shells (in ~/.bashrc or ~/.ssh/rc) to save it on every command")
    return all(r["ok"] for r in rows)
