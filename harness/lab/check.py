"""`skip2bench lab check`: reach every board, print its facts and what it can run."""
import shutil
import time

from rich.table import Table

from harness.targets import facts as board_facts
from harness.targets import open_shell
from harness.transports import HostKeyRefused, LinkDown


def _c_column(board, found: dict, reasons: dict) -> str:
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


def probe(board) -> dict:
    """One row: reachable or why not, facts, and per capability the version or the reason."""
    if board.transport == "serial":
        return probe_serial(board)
    shell, t0 = open_shell(board), time.perf_counter()
    try:
        shell.connect()
        extra = ["tools", *([] if board.cross_compiler else ["cc"])]
        done = shell.run(board_facts.script(board, extra), timeout=60)
        found, reasons = board_facts.parse(done.stdout.decode(errors="replace"))
    except (LinkDown, HostKeyRefused, OSError) as e:
        return {"board": board.name, "ok": False, "why": str(e)}
    finally:
        shell.close()
    missing = [t for t in ("flock", "sha256sum") if found.get(t) is None]
    numpy = found.get("numpy") or f"[yellow]{reasons.get('numpy', 'missing')}[/]"
    return {"board": board.name, "ok": not missing, "ms": 1000 * (time.perf_counter() - t0),
            "machine": found.get("machine"), "cpu": found.get("cpu"), "cores": found.get("cores"),
            "mem": f"{found['mem_total_kb'] / 2**20:.1f} GiB" if found.get("mem_total_kb") else None,
            "python": found.get("python") or f"[red]{reasons.get('python')}[/]", "numpy": numpy,
            "c": _c_column(board, found, reasons),
            "why": f"lacks {' and '.join(missing)}" if missing else ""}


def check(lab, console) -> bool:
    """Print the table; True when every board is reachable and usable."""
    rows = [probe(b) for b in lab.boards]
    table = Table(title=f"lab {lab.name}", show_lines=False)
    for column in ("board", "transport", "reachable", "machine", "cpu", "cores", "memory", "python",
                   "numpy", "C compiler", "problem"):
        table.add_column(column, overflow="fold")
    for board, row in zip(lab.boards, rows):
        reach = f"[green]yes[/] ({row['ms']:.0f} ms)" if "ms" in row else "[red]no[/]"
        table.add_row(board.name, board.transport, reach, row.get("machine"), row.get("cpu"),
                      str(row.get("cores") or ""), row.get("mem"), row.get("python"), row.get("numpy"),
                      row.get("c"), f"[red]{row['why']}[/]" if row["why"] else "")
    console.print(table)
    return all(r["ok"] for r in rows)
