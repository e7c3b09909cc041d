"""Board facts: one POSIX sh probe, the same on every board, and the fingerprint made of them.

The probe prints `key=value` for what it found and `key!=reason` for what it could not; a
missing NumPy is a fact (the NumPy runner is then unsupported), not an error.
"""
import json

from harness.hashing import sha256_text
from harness.transports import words

PROBE = r"""
fact() { printf '%s=%s\n' "$1" "$2"; }
probe() {
  key=$1; shift
  if out=$("$@" 2>&1); then fact "$key" "$(printf '%s\n' "$out" | head -n 1)"
  else printf '%s!=%s\n' "$key" "$(printf '%s\n' "$out" | grep . | tail -n 1)"; fi
}
fact uname "$(uname -srm)"
fact hostname "$(uname -n)"
fact machine "$(uname -m)"
fact cpu "$(grep -m 1 -i -E '^(model name|cpu model|processor)[[:space:]]*:.*[a-z]' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
cpuinfo() { awk -F': *' -v key="$1" '$1 ~ "^" key "[[:space:]]*$" { print $2; exit }' /proc/cpuinfo 2>/dev/null; }
fact cpu_family "$(cpuinfo 'cpu family')$(cpuinfo 'CPU implementer')"
fact cpu_model_id "$(cpuinfo model)$(cpuinfo 'CPU part')"
fact cpu_stepping "$(cpuinfo stepping)$(cpuinfo 'CPU revision')"
vector=""
for flag in $(cpuinfo flags) $(cpuinfo Features); do
  case " $VECTOR_EXTENSIONS " in *" $flag "*) vector="$vector $flag" ;; esac
done
fact cpu_vector "${vector# }"
max_khz=$(cat /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq 2>/dev/null)
fact cpu_mhz "${max_khz:+$((max_khz / 1000))}"
fact board_model "$(tr -d '\0' 2>/dev/null < /proc/device-tree/model)"
fact cores "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc --all)"
fact mem_total_kb "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
fact governor "$(cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null)"
probe python $PYTHON -c 'import platform; print(platform.python_version())'
probe numpy $PYTHON -c 'import numpy; print(numpy.__version__)'
"""
# Probed only when a caller asks: importing PyTorch takes seconds on a small board.
OPTIONAL = {"torch": "probe torch $PYTHON -c 'import torch; print(torch.__version__)'",
            "cc": "probe cc $CC --version",
            "tools": "probe flock flock --version\nprobe sha256sum sha256sum --version"}


# The vector extensions that decide how fast the kernels can be, as /proc/cpuinfo names them
# (x86 flags, Arm features); the others are left out of the facts.
VECTOR_EXTENSIONS = ("sse4_2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 amx_tile "
                     "neon asimd asimdhp asimddp sve sve2 i8mm bf16")


def script(board, extra=()) -> str:
    """The probe for `board`, with the optional parts named in `extra`."""
    text = PROBE + "\n".join(OPTIONAL[k] for k in extra) + "\n"
    # The board's commands go in as quoted words: they may hold several, or spaces in a path.
    return (text.replace("$PYTHON", words(board.python)).replace("$CC", words(board.c_compiler))
            .replace("$VECTOR_EXTENSIONS", VECTOR_EXTENSIONS))


def parse(text: str) -> tuple[dict, dict]:
    """(facts, reasons): values found, and why the others are missing."""
    facts, reasons = {}, {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key.endswith("!"):
            reasons[key[:-1]] = value.strip() or "failed without a message"
            facts[key[:-1]] = None
        else:
            facts[key] = value.strip() or None
    for key in ("cores", "mem_total_kb", "cpu_mhz"):
        if facts.get(key) and facts[key].isdigit():
            facts[key] = int(facts[key])
    return facts, reasons


# How the harness reaches the board, not what the board is: left out of its fingerprint.
NOT_FINGERPRINTED = ("file_transfer",)


def fingerprint(facts: dict) -> str:
    """Everything the board reports, hardware and software, as one short hash: --resume retries
    a job the board could not run once any of it changed."""
    kept = {k: v for k, v in facts.items() if k not in NOT_FINGERPRINTED}
    return sha256_text(json.dumps(kept, sort_keys=True, default=str))[:16]


# The hardware and its OS, as boards of every kind report them: two runs are compared only on
# the same board identity. The other facts (firmware hash, compiler and flags, library
# versions) are the software under test, which a comparison reports as changed.
IDENTITY = ("transport", "uname", "machine", "cpu", "cpu_family", "cpu_model_id", "cpu_stepping", "cpu_vector",
            "cpu_mhz", "board_model", "cores", "mem_total_kb", "governor", "emulated",
            "board", "clock_hz", "ticks_per_second", "flash_bytes", "model_slot_bytes", "ram", "layout", "timer")


def board_identity(facts: dict) -> str:
    """The board's hardware and OS as one short hash (IDENTITY)."""
    kept = {k: facts.get(k) for k in IDENTITY if k in facts}
    return sha256_text(json.dumps(kept, sort_keys=True, default=str))[:16]


def software(facts: dict) -> dict:
    """The facts that are the software under test."""
    return {k: v for k, v in facts.items() if k not in IDENTITY and k not in NOT_FINGERPRINTED}


def cpu_words(facts: dict) -> str | None:
    """The processor precisely, in one line: its name, family/model/stepping (x86) or
    implementer/part/revision (Arm), the vector extensions that matter, and its top clock where
    the OS states one (the clock as measured is the ceiling probe's `clock_mhz`)."""
    if not facts.get("cpu"):
        return None
    ident = "/".join(str(facts[k]) for k in ("cpu_family", "cpu_model_id", "cpu_stepping") if facts.get(k))
    details = [f"id {ident}" if ident else None, facts.get("cpu_vector"),
               f"{facts['cpu_mhz']} MHz" if facts.get("cpu_mhz") else None]
    shown = "; ".join(d for d in details if d)
    return f"{facts['cpu']} ({shown})" if shown else facts["cpu"]
