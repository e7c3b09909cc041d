"""What a board's transport adds per job: a run whose boards were paired with a reference board
(experiment `reference`, `skip2bench overhead`), each job run on the reference and on the board
back to back. Added = the board's wall_s − the reference's wall_s of the same job and round.
"""
import pandas as pd


# A board's transport should add less than this per job.
TARGET_MS = 30


def _paired(df: pd.DataFrame) -> pd.DataFrame | None:
    """One row per job and round on each board: its wall time and the reference's, in ms."""
    reference = df.attrs.get("reference")
    if not reference:
        return None
    ok = df[df["status"] == "ok"]
    keys = ["job_id", "impl", "repetition"]
    ref = ok[ok["board"] == reference][[*keys, "wall_s", "ft_time_s"]]
    others = ok[ok["board"] != reference][["board", *keys, "wall_s", "ft_time_s"]]
    pairs = others.merge(ref, on=keys, suffixes=("", "_ref"))
    return pairs.assign(board_wall_ms=1e3 * pairs["wall_s"], reference_wall_ms=1e3 * pairs["wall_s_ref"],
                        added_ms=1e3 * (pairs["wall_s"] - pairs["wall_s_ref"]))


def overhead(df: pd.DataFrame) -> pd.DataFrame | None:
    """Per board: the jobs paired, the added wall time per job (median, p10, p90) against the
    target, and the median walls; None for a run without a reference board."""
    pairs = _paired(df)
    if pairs is None:
        return None
    rows = []
    for board, g in pairs.groupby("board", sort=False):
        added = g["added_ms"]
        rows.append({"board": board, "reference": df.attrs["reference"], "jobs": len(g),
                     "median added ms": added.median(), "p10 added ms": added.quantile(0.1),
                     "p90 added ms": added.quantile(0.9),
                     "target": f"{'meets' if added.median() < TARGET_MS else 'misses'} {TARGET_MS} ms",
                     "median wall ms (reference)": g["reference_wall_ms"].median(),
                     "median wall ms (board)": g["board_wall_ms"].median()})
    return pd.DataFrame(rows)


def deployed(df: pd.DataFrame) -> tuple[str, pd.DataFrame] | None:
    """The bytes of runner, model and data files the run sent each board (what it lacked), with
    its caption; None when the records do not say."""
    sent = df.attrs.get("bytes_sent") or {}
    rows = [{"board": board, **kinds, "total bytes": sum(kinds.values())} for board, kinds in sent.items()]
    if not rows:
        return None
    return ("Bytes of runner, model and data files this run sent each board (a board that had them from an earlier "
            "run is sent nothing):", pd.DataFrame(rows).fillna(0))
