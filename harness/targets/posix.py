"""A board that runs the runners as processes under a POSIX shell: the host, or an SBC over SSH.

Written once against the shell protocol (harness.transports), so the local and SSH boards share
every step: the board lock, content-addressed deployment with on-board hash checks, the build,
the facts, job staging, timeouts, retries after a dropped connection, and killing runners.

Layout of a board's work root:
    lock, lock.owner                 the board lock (flock) and who holds it
    runners/<kind>/<hash16>/         runner sources or binaries (c-build/<key>/ for on-board builds)
    models/<hash16>/, data/<hash16>/ the .npy files of a backbone and of a data set
    jobs/<run id>/<job>/             job.json, runner.pid
The board-wide lock (one run per board, whatever its work root) is
~/.skip2bench/board-<SSH server port>.lock (board.lock on the local board), with its .owner.
    tmp/                             uploads and builds in progress (emptied by every prepare)
    .skip2bench-work-root            the marker: only a marked work root is written to or cleared
                                     (harness/targets/work_root.py)
"""
import json
import os
import platform
import secrets
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from harness import runners, stop
from harness.deadline import Deadline
from harness.errors import TargetError
from harness.hashing import sha256_file, sha256_text, sha256_tree
from harness.targets import facts as board_facts
from harness.targets import work_root
from harness.schema import Result
from harness.targets import parse_result, tail
from harness.transports import (BoardSilent, CommandTimeout, Completed, HostKeyRefused, LinkDown, ReplyTooLarge,
                                StreamEnded, last_line, quote)

COMMAND_TIMEOUT_S = 120  # housekeeping commands (probe, hash check, kill); builds get BUILD_TIMEOUT_S
BUILD_TIMEOUT_S = 900
# How long to wait for the board lock: a session that just dropped (ours after a reconnect, or a
# run that just died) takes a moment to release it on the board.
LOCK_WAIT_S, LOCK_RETAKE_WAIT_S = 3, 15
KILL_TIMEOUT_S = 15  # stopping a runner after a timeout: the KILL script takes up to 3 s
# The board-wide lock's path, set in the board's shell: per SSH server port, so that each of
# several SSH servers on one machine (the emulated lab's stand-ins) is a board of its own.
BOARD_LOCK = 'p=${SSH_CONNECTION##* }; b="$HOME/.skip2bench/board${p:+-$p}"; mkdir -p "$HOME/.skip2bench"'

# The start time of a process (field 22 of /proc/PID/stat, counted after the command name).
STARTTIME = "sed 's/.*) //' /proc/%s/stat | cut -d' ' -f20"
# Kills a job's runner by its pid file ("PID STARTTIME"): the whole process group, TERM then KILL,
# but only while that pid is still the live process that wrote it (a pid may have been reused
# since; an exited one may linger as a zombie).
KILL = r"""
dir=%(dir)s; pidfile="$dir/runner.pid"
[ -f "$pidfile" ] || exit 0
read -r pid start < "$pidfile"
fields() { sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null; }
owns() { f=$(fields); [ -n "$start" ] && [ "$(echo "$f" | cut -d' ' -f20)" = "$start" ] && [ "${f%%%% *}" != Z ]; }
if owns; then
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
  i=0; while owns && [ $i -lt 30 ]; do sleep 0.1; i=$((i + 1)); done
  if owns; then kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null; fi
  echo killed
fi
rm -f "$pidfile"
"""
# Stops the runners that earlier runs left in a work root (the lock is held, so none is ours
# now); prints the job folder of each one it stopped. $root is set before it.
SWEEP = """for d in "$root"/jobs/*/*; do
  [ -f "$d/runner.pid" ] || continue
  [ "$( """ + KILL % {"dir": '"$d"'} + """ )" = killed ] && echo "$d"
done; exit 0
"""


class BoardDown(TargetError):
    """The board cannot be used for the rest of the run; every later job is an error at once."""


def _last_line(data: bytes) -> str:
    return last_line(data, "no output")


class PosixTarget:
    on_progress = None  # called with "epoch n/N" as a runner session reports each epoch (the run's console)

    def __init__(self, board, shell, run_id: str, cache_dir: Path):
        self.board, self.shell, self.run_id, self.cache_dir = board, shell, run_id, cache_dir
        self.root = None             # absolute work root on the board
        self.down = None             # why the board is unusable for the rest of the run
        self.facts, self.reasons, self.fingerprint = {}, {}, None
        self.unsupported = {}        # impl -> reason the board cannot run it
        self.commands, self.runner_sha256, self.folders = {}, {}, {}
        self.sessions, self.session_commands = {}, {}  # impl -> open runner session, its command
        self.remote_dirs = {}        # local model/data folder -> its folder on the board
        self.sent = Counter()        # bytes of file content put on the board, by kind
        self.repaired = []           # what was found damaged on the board and sent again
        self.retries = getattr(board, "retries", 0)
        self._lock, self._lock_generation = None, None
        self._prepared = False       # prepare() is done: what later repairs find is said at once

    # -- connection and lock --------------------------------------------------------------
    def _session(self):
        """Connected and holding the board lock (re-taken after every reconnect)."""
        generation = self.shell.connect()
        if generation == self._lock_generation:
            return
        if self.root is None:
            self.root = self._resolve_root()
        if self._lock is not None:
            self._lock.close()
        self._lock = self._take_lock(retake=self._lock_generation is not None)
        self._lock_generation = generation
        self._stop_orphans()

    def _stop_orphans(self):
        """Runners left in the work root by a run that died (or by our own cut connection) are
        stopped before anything else runs, and said so."""
        for jobdir in self._run(f"root={quote(self.root)}; {SWEEP}").stdout.decode().split("\n"):
            if jobdir:
                run_id, job = jobdir.split("/")[-2:]
                note = f"stopped a runner that run {run_id} left running on the board (job {job})"
                self.repaired.append(note)
                if self._prepared:
                    print(f"board {self.board.name}: {note}", file=sys.stderr, flush=True)

    def _resolve_root(self) -> str:
        root = self.board.work_root or self.board.default_work_root(self.cache_dir)
        return work_root.claimed(self._run(work_root.claim_script(root)).stdout.decode(), self.board.name, root)

    def _take_lock(self, retake: bool):
        """The work root's lock and, on an exclusive board, the board-wide one; held by a command
        that ends when its stdin does (or the connection goes)."""
        lock = f"{self.root}/lock"
        wait_s = LOCK_RETAKE_WAIT_S if retake else LOCK_WAIT_S
        board_lock = f'flock -w {wait_s} -E 76 "$b.lock" ' if self.board.exclusive else ""
        try:
            held = self.shell.open(f"{BOARD_LOCK} && flock -w {wait_s} -E 75 {quote(lock)} {board_lock}"
                                   f"sh -c 'echo \"locked $0\"; exec cat >/dev/null' \"$b\" || echo \"busy $? $b\"",
                                   Deadline(COMMAND_TIMEOUT_S))
        except CommandTimeout as e:
            raise TargetError(f"board {self.board.name}: cannot take the board lock: {e}") from None
        try:
            answer = held.readline(timeout=2 * wait_s + COMMAND_TIMEOUT_S)
        except StreamEnded:
            answer = ""
        word, _, rest = answer.partition(" ")
        if word == "locked":
            owner = json.dumps({"run_id": self.run_id, "host": platform.node(), "pid": os.getpid(),
                                "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                "work_root": self.root}).encode()
            self._put(owner, f"{lock}.owner")
            if self.board.exclusive:
                self._put(owner, f"{rest}.owner")
            return held
        held.close()
        code, _, board_lock = rest.partition(" ")
        if word == "busy" and code in ("75", "76"):
            try:
                owner = json.loads(self.shell.get(f"{lock}.owner" if code == "75" else f"{board_lock}.owner"))
                who = f"run {owner['run_id']} (from {owner['host']}, pid {owner['pid']}, since {owner['since']})"
                where = f" in work root {owner['work_root']}" if "work_root" in owner else ""
            except (OSError, ValueError, KeyError, TypeError, CommandTimeout):
                who, where = "another run", ""
            if code == "75":
                raise BoardDown(f"board {self.board.name} is in use by {who}; wait for that run to end or "
                                f"stop it (two runs on one board spoil each other's timings)")
            raise BoardDown(f"board {self.board.name} is in use by {who}{where} (board lock {board_lock}.lock); "
                            f"wait for that run to end or stop it (two runs on one board spoil each other's "
                            f"timings), or set exclusive = false for this board in the lab file if it has cores to spare")
        raise BoardDown(f"board {self.board.name}: cannot take the board lock ({answer or 'no answer'}); "
                        f"the board needs flock(1) (util-linux)")

    def _run(self, command: str, timeout: float = COMMAND_TIMEOUT_S, stdin: bytes = b"", check=True):
        try:
            done = self.shell.run(command, Deadline(timeout), stdin)
        except CommandTimeout:
            raise TargetError(f"board {self.board.name}: a command timed out after {timeout:g} s: "
                              f"{command.strip()[:80]}") from None
        if check and done.returncode != 0:
            raise TargetError(f"board {self.board.name}: {_last_line(done.stderr)}", tail(done.stderr.decode()))
        return done

    def _put(self, data: bytes, path: str):
        try:
            self.shell.put(data, path)
        except OSError as e:
            raise TargetError(f"board {self.board.name}: cannot write {path}: {e.strerror or e}") from None
        except CommandTimeout as e:
            raise TargetError(f"board {self.board.name}: cannot write {path}: {e}") from None

    # -- prepare: lock, facts, deploy, build ----------------------------------------------
    def prepare(self, impls, artifacts) -> None:
        """Everything a run needs on the board before its first job. A board that cannot be
        reached or used gets `down` set (its jobs become errors); an implementation it cannot
        run gets an entry in `unsupported` (its jobs are recorded as unsupported)."""
        try:
            self._session()
            self._run(work_root.clear(self.root, "tmp"))
            self._probe(impls)
            for impl in impls:
                self._deploy_runner(impl)
            for art in artifacts:
                for local in (art.model_dir, art.data_dir):
                    kind = "models" if local == art.model_dir else "data"
                    files = {p.name: p for p in sorted(Path(local).glob("*.npy"))}
                    self.remote_dirs[Path(local)] = self._deploy(kind, files)
            self.fingerprint = board_facts.fingerprint(self.facts)
            self._prepared = True
        except (LinkDown, HostKeyRefused, TargetError) as e:
            self.down = str(e)

    def _probe(self, impls):
        extra = [*(["torch"] if "torch" in impls else []), "tools",
                 *(["cc"] if "c" in impls and not self.board.cross_compiler else [])]
        found, self.reasons = board_facts.parse(self._run(board_facts.script(self.board, extra)).stdout.decode())
        missing = [tool for tool in ("flock", "sha256sum") if found.pop(tool, None) is None]
        if missing:
            raise BoardDown(f"board {self.board.name} lacks {' and '.join(missing)} (install coreutils "
                            f"and util-linux on it)")
        self.facts = {"transport": self.board.transport, **found, **self.shell.facts}
        for impl, module in runners.NEEDS.items():
            if impl in impls and found.get(impl) is None:
                self.unsupported[impl] = (f"{module} is not importable by `{self.board.python}` on board "
                                          f"{self.board.name}: {self.reasons.get(impl)}")
            elif impl in impls and (old := runners.python_too_old(found.get("python"))):
                self.unsupported[impl] = (f"`{self.board.python}` on board {self.board.name}: {old}; set python "
                                          f"in the lab file to a newer one")

    def _deploy_runner(self, impl):
        if impl in self.unsupported:
            return
        try:
            spec = runners.spec(impl, self.board, self.cache_dir)
            folder = self._deploy(f"runners/{spec.kind}", spec.files, executable=() if spec.build else
                                  [n for n in spec.files if not spec.python])
            program = self._build(folder) if spec.build else f"{folder}/{spec.entry}"
            self.commands[impl], self.folders[impl] = runners.command(spec, self.board, program), folder
            if impl in runners.SESSIONS:
                self.session_commands[impl] = runners.session_command(spec, self.board, folder, program)
            if spec.python:
                self.runner_sha256[impl] = spec.content_hash()
            elif spec.build:
                self._probe_built(spec, folder, program)
            else:
                self._probe_binary(program)
        except BoardDown:
            raise
        except TargetError as e:
            self.unsupported[impl] = str(e)
        if self.board.cross_compiler and impl == "c":
            self.facts["cross_compiler"] = self.board.cross_compiler

    def _probe_built(self, spec, folder: str, program: str):
        """Probe a C runner built on the board; one that cannot even answer --about is damaged
        (a truncated file, a half-written build): it is built once more, then probed again."""
        try:
            self._probe_binary(program)
        except TargetError as e:
            self._run(f"rm -rf {quote(os.path.dirname(program))}")
            program = self._build(folder)
            self.commands["c"] = runners.command(spec, self.board, program)
            self.repaired.append(f"the C runner failed its probe ({e}); built again")
            self._probe_binary(program)

    def _probe_binary(self, program):
        """The binary's hash, and where it thinks it runs: an emulated board says so here."""
        done = self._run(f"sha256sum {quote(program)} && {self.commands['c']} --about")
        try:
            digest, about = done.stdout.decode().split(maxsplit=1)[0], json.loads(_last_line(done.stdout))
            runtime = {k: about["runtime"][k] for k in ("compiler", "cflags", "machine")}
        except (ValueError, IndexError, KeyError, TypeError, RecursionError):
            raise TargetError(f"the C runner on board {self.board.name} answered --about with no runtime "
                              f"facts: {_last_line(done.stdout)[:200]!r}", tail(done.stdout.decode(errors="replace")))
        self.runner_sha256["c"] = digest
        machine = runtime["machine"]
        self.facts["c_runner"] = runtime
        if machine != self.facts.get("machine"):
            self.facts["emulated"] = f"{machine} runner on a {self.facts.get('machine')} board"

    def _deploy(self, kind: str, files: dict, executable=()) -> str:
        """A folder on the board holding `files` ({name: host path}), uploaded once per content.

        An upload goes to tmp/ and is moved into place only after sha256sum on the board agrees,
        so a cut connection never leaves a damaged folder that a later run would trust."""
        digest = sha256_tree(files)
        final = f"{self.root}/{kind}/{digest[:16]}"
        sums = "".join(f"{sha256_file(p)}  {n}\n" for n, p in files.items()).encode()
        # Verified on every use: a folder damaged on the board since is removed and sent again.
        found = self._run(f"if [ -d {quote(final)} ]; then cd {quote(final)} && sha256sum -c - >/dev/null 2>&1 "
                          f"&& echo ok || {{ rm -rf {quote(final)}; echo damaged; }}; else echo missing; fi",
                          stdin=sums).stdout.decode().strip()
        if found == "ok":
            return final
        if found == "damaged":
            self.repaired.append(f"{kind} folder {final} was damaged on the board; sent again")
        tmp = f"{self.root}/tmp/{digest[:16]}-{secrets.token_hex(4)}"
        subdirs = sorted({f"{tmp}/{os.path.dirname(n)}" for n in files if "/" in n})
        self._run(f"mkdir -p {quote(tmp, *subdirs)}")
        before = self.shell.bytes_sent
        for name, path in files.items():
            self._put(Path(path).read_bytes(), f"{tmp}/{name}")
        self.sent[kind.split("/")[-1]] += self.shell.bytes_sent - before
        chmod = f" && chmod +x {quote(*executable)}" if executable else ""
        done = self._run(f"cd {quote(tmp)} && sha256sum -c - >/dev/null{chmod} && mkdir -p {quote(os.path.dirname(final))}"
                         f" && {{ [ -e {quote(final)} ] || mv {quote(tmp)} {quote(final)}; }}; s=$?; "
                         f"rm -rf {quote(tmp)}; exit $s", stdin=sums, check=False)
        if done.returncode != 0:
            raise TargetError(f"board {self.board.name}: the upload of {kind} failed its sha256 check "
                              f"({_last_line(done.stdout + done.stderr)}) and was discarded")
        return final

    def _build(self, source: str) -> str:
        """The C runner built by the board's compiler, once per sources, compiler and flags."""
        b = self.board
        key = sha256_text(source, b.c_compiler, b.c_flags)[:16]
        final = f"{self.root}/runners/c-build/{key}"
        if self._run(f"test -x {quote(final + '/skip2run')}", check=False).returncode != 0:
            # make cannot build into a path with spaces, so it builds in mktemp's folder.
            # One compiler per core: the linear algebra file alone takes half of a serial build.
            cores = self.facts.get("cores")
            make = quote(*runners.make_args(source, b.c_compiler, b.c_flags), f"-j{cores if isinstance(cores, int) else 1}")
            done = self._run(f't=$(mktemp -d) && {make} "BUILD=$t" >&2 && mkdir -p {quote(os.path.dirname(final))} && {{ [ -e {quote(final)} ] || '
                             f'mv "$t" {quote(final)}; }}; s=$?; rm -rf "$t"; exit $s',
                             timeout=BUILD_TIMEOUT_S, check=False)
            if done.returncode != 0:
                raise TargetError(f"building the C runner on board {b.name} with {b.c_compiler} failed: "
                                  f"{_last_line(done.stderr)}", tail(done.stderr.decode()))
        return f"{final}/skip2run"

    # -- jobs ---------------------------------------------------------------------------------
    def run_job(self, job: dict, impl: str, artifacts, name: str) -> Result:
        """Stage job.json, run the runner, return its result with the runner's hash.

        A connection dropped mid-job is re-made and the job re-run (after killing what the cut
        attempt left running) up to `retries` times; a timeout or an interrupt kills the runner."""
        if self.down:
            raise BoardDown(self.down)
        jobdir = f"{self.root}/jobs/{self.run_id}/{name}"
        staged = dict(job, n_layers=artifacts.n_layers, model_dir=self.remote_dirs[Path(artifacts.model_dir)],
                      data_dir=self.remote_dirs[Path(artifacts.data_dir)])
        what = f"{impl} runner on {self.board.name}"
        for attempt in range(self.retries + 1):
            try:
                self._session()
            except (LinkDown, HostKeyRefused, TargetError) as e:
                self.down = f"{e} (board down since job {name})"
                raise BoardDown(self.down) from None
            # A token drawn for this attempt, which the runner echoes: a reply of another attempt
            # or job (a stale file, a late process) cannot pass as this one's.
            staged["token"] = secrets.token_hex(8)
            try:
                if attempt:
                    self._kill(jobdir)
                started = time.perf_counter()
                done = self._execute(impl, jobdir, staged, Deadline(self.board.timeout_s))
                # A session times its job on the board: the exchange around it is the harness's.
                runner_wall = done.wall_s if done.wall_s is not None else time.perf_counter() - started
                break
            except BoardSilent as e:  # not retried: the connection is gone, the runner may live on
                raise TargetError(f"{what}: {e}; its runner is stopped once the board answers again") from None
            except LinkDown as e:
                lost = e
            except CommandTimeout:
                raise TargetError(f"{what} timed out after {self.board.timeout_s:g} s (raise timeout_s "
                                  f"in the lab file); {self._stop_runner(jobdir)}") from None
            except BaseException:
                self._kill_quietly(jobdir)
                raise
        else:
            raise TargetError(f"{what}: {lost}; gave up after {self.retries + 1} attempts")
        return parse_result(done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"),
                            done.returncode, what, staged, runner_sha256=self.runner_sha256[impl], attempts=attempt + 1,
                            time_kind="device", runner_wall_s=runner_wall)

    def _execute(self, impl: str, jobdir: str, staged: dict, deadline: Deadline) -> Completed:
        """The runner on one job: through the implementation's session (a fork server that paid
        the interpreter's start once), or as a process of its own."""
        if impl not in runners.SESSIONS:
            command = (f"mkdir -p {quote(jobdir)} && cat > {quote(jobdir + '/job.json')} && "
                       f"echo \"$$ $({STARTTIME % '$$'})\" > {quote(jobdir + '/runner.pid')} && "
                       f"exec {self.commands[impl]} {quote(jobdir)}")
            return self.shell.run(command, deadline, json.dumps(staged).encode())
        session = self.sessions.get(impl)
        log = f"{self.root}/jobs/{self.run_id}/{impl}-session.err"
        if session is None:
            session = self.sessions[impl] = self.shell.open(
                f"mkdir -p {quote(os.path.dirname(log))} && {self.session_commands[impl]} 2>>{quote(log)}", deadline)
        try:
            session.write(json.dumps({"dir": jobdir, "job": staged}).encode() + b"\n")
            while True:  # the job's progress lines, then its reply
                line = session.readline(deadline.left())
                if not line:
                    raise CommandTimeout(jobdir)
                reply = json.loads(line)
                if not self._progress(reply, jobdir):
                    break
        except StreamEnded:
            self.sessions.pop(impl).close()
            if self.shell.connect() != self._lock_generation:
                raise  # the connection went: the job is tried again
            # The session itself died, the link is fine: a runner crash, with what it printed.
            return Completed(1, b"", self._run(f"tail -c 2000 {quote(log)}", check=False).stdout)
        except (LinkDown, CommandTimeout):
            self.sessions.pop(impl).close()  # a session out of step is not reused
            raise
        except (ValueError, RecursionError, ReplyTooLarge) as e:
            self.sessions.pop(impl).close()
            raise TargetError(f"{impl} runner session on {self.board.name} gave a reply that is not one: {e}") from None
        if not (isinstance(reply, dict) and reply.get("dir") == jobdir and isinstance(reply.get("returncode"), int)
                and isinstance(reply.get("stdout"), str) and isinstance(reply.get("stderr"), str)):
            self.sessions.pop(impl).close()
            raise TargetError(f"{impl} runner session on {self.board.name} answered with a reply of another job "
                              f"or shape", tail(line))
        wall = reply.get("wall_s")
        return Completed(reply["returncode"], reply["stdout"].encode(), reply["stderr"].encode(),
                         wall if isinstance(wall, (int, float)) and wall >= 0 else None)

    def _progress(self, line, jobdir: str) -> bool:
        """Whether a session's line is a progress line of this job, {"dir", "epoch": n, "of": N}
        with 1 <= n <= N, passed on to on_progress; anything else is taken as the reply."""
        n, of = (line.get("epoch"), line.get("of")) if isinstance(line, dict) and line.get("dir") == jobdir else (0, 0)
        if not (type(n) is int and type(of) is int and 1 <= n <= of):
            return False
        if self.on_progress:
            self.on_progress(f"epoch {n}/{of}")
        return True

    def run_script(self, impl: str, script: str, *args, timeout: float = COMMAND_TIMEOUT_S) -> str:
        """Run another program deployed with a Python runner (the sgemm peak probe); its stdout."""
        python_runner = runners.spec(impl, self.board, self.cache_dir)
        return self._output(runners.command(python_runner, self.board, f"{self.folders[impl]}/{script}"), args,
                            timeout)

    def run_program(self, impl: str, *args, timeout: float = COMMAND_TIMEOUT_S) -> str:
        """Run a deployed runner with other arguments than a job (skip2run --ceiling); its stdout."""
        return self._output(self.commands[impl], args, timeout)

    def _output(self, command: str, args: tuple, timeout: float) -> str:
        if self.down:
            raise BoardDown(self.down)
        self._session()
        return self._run(f"{command} {quote(*args)}", timeout=timeout).stdout.decode()

    def _kill(self, jobdir: str) -> bool:
        """Kill what a job folder's runner left running; True if something was."""
        return b"killed" in self._run(KILL % {"dir": quote(jobdir)}).stdout

    def _stop_runner(self, jobdir: str) -> str:
        """After a timeout: stop the job's runner if the board answers within
        KILL_TIMEOUT_S, on the connection there is (no reconnect here); what became of it, for
        the job's error. A runner left running is stopped after the next connection."""
        try:
            done = self._run(KILL % {"dir": quote(jobdir)}, timeout=KILL_TIMEOUT_S)
        except (LinkDown, TargetError) as e:
            return f"its runner could not be stopped now ({e}); it is stopped once the board answers again"
        return "the runner was killed" if b"killed" in done.stdout else "the runner had ended"

    def _kill_quietly(self, jobdir: str):
        """On an interrupt or an error: kill if the link allows, and say so if it does not."""
        try:
            with stop.unstoppable():  # a stopped run still stops its runner
                self.shell.connect()
                self._kill(jobdir)
        except Exception as e:  # the original exception matters more; this one is reported
            print(f"warning: could not stop the runner in {jobdir} on board {self.board.name}: {e}",
                  file=sys.stderr, flush=True)

    def discard(self):
        """Remove the whole work root (a throwaway one, such as a measurement's)."""
        self._session()
        self._run(work_root.remove(self.root))

    def close(self):
        for session in self.sessions.values():
            session.close()
        self.sessions.clear()
        if self._lock is not None:
            try:
                self._lock.close()
            except Exception as e:
                print(f"warning: releasing the lock of board {self.board.name}: {e}", file=sys.stderr, flush=True)
            self._lock = None
        self.shell.close()

