"""Remote commands framed by markers of their own, so that whatever a login shell prints around
a command (an `echo` in .bashrc, ~/.ssh/rc, a motd on stderr) is told apart from its output.

A command line becomes

    printf 'M-begin\\n'; printf 'M-begin\\n' >&2; {
    COMMAND
    }; s=$?; printf '\\nM-end %d\\n' $s; printf '\\nM-end %d\\n' $s >&2; exit $s

on both stdout and stderr (a long-running command opened as a stream gets the begin line and an
end line on stdout only). The command runs in the shell itself, not a subshell: a command that
ends in `exec RUNNER` stays the process whose pid is `$$` (the pid files and kills rely on it);
it prints no end marker, but then no shell is left to print anything after it either. The
marker is drawn afresh for every command: no output, and no shell's greeting, can hold it.
"""
import secrets


def marker() -> str:
    return f"skip2-{secrets.token_hex(8)}"


def framed(command: str, mark: str) -> str:
    """`command` with begin and end markers on stdout and stderr, its exit status kept."""
    return (f"printf '{mark}-begin\\n'; printf '{mark}-begin\\n' >&2; {{\n{command}\n}}; s=$?; "
            f"printf '\\n{mark}-end %d\\n' $s; printf '\\n{mark}-end %d\\n' $s >&2; exit $s")


def framed_stream(command: str, mark: str) -> str:
    """A long-running command, line by line: a begin line before its output, an end line after."""
    return f"printf '{mark}-begin\\n'; {{\n{command}\n}}; printf '{mark}-end\\n'"


def unframe(data: bytes, mark: str) -> tuple[bytes, bytes, int | None]:
    """(the command's own output, what the shell printed around it, the exit status the end
    marker gave, or None when the command ended without one: it exec'd or was killed)."""
    begin, end = f"{mark}-begin\n".encode(), f"\n{mark}-end ".encode()
    start = data.find(begin)
    if start < 0:  # the shell never got as far as the command
        return b"", data, None
    body = data[start + len(begin):]
    stop = body.rfind(end)
    if stop < 0:
        return body, data[:start], None
    status, _, after = body[stop + len(end):].partition(b"\n")
    return body[:stop], data[:start] + after, int(status) if status.strip().isdigit() else None
