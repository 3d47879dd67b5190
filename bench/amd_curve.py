"""Trade-off curve of the answering-machine detector: machines caught at the first decision against people kept
and the dead air people hear, as the silence that ends a person's turn grows.

Every end-of-turn silence (``short_silence_ms``, ``long_silence_ms``, ``mid_silence_ms``, ``long_wait_ms``) is
multiplied by one factor, everything else stays at the defaults; each row runs the whole corpus through the
detector exactly as bench/amd.py does (20 ms chunks, same code) and reports the tuning and held-out splits side by
side. The row where the held-out first-decision catch first reaches the target (95%) is marked, if any.

    python -m bench.amd_curve [--corpus data/amd-corpus] [--scales 1,1.25,1.5,...] [--set name=value ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.amd import parse_sets, read_wav, run_ours, summarize
from bridge.amd import AmdParams

SCALED = ("short_silence_ms", "long_silence_ms", "mid_silence_ms", "long_wait_ms")
DEFAULT_SCALES = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0)
FIRST_TARGET = 95.0


def scaled(base: AmdParams, k: float) -> AmdParams:
    return replace(base, **{name: round(getattr(base, name) * k) for name in SCALED})


def curve(corpus: Path, clips: list[dict[str, Any]], base: AmdParams, scales: list[float]) -> list[dict[str, Any]]:
    audio = {c["id"]: read_wav(corpus / c["file"]) for c in clips}
    rows = []
    for k in scales:
        params = scaled(base, k)
        outs = {c["id"]: run_ours(*audio[c["id"]], params) for c in clips}
        row: dict[str, Any] = {"scale": k, **{name: getattr(params, name) for name in SCALED}, "splits": {}}
        for split in ("tune", "held_out"):
            sc = [c for c in clips if c["split"] == split]
            s = summarize(sc, outs)
            longs = [c for c in sc if c["label"] == "human" and c["kind"] == "long"]
            s["long_kept"] = f"{sum(outs[c['id']].decision == 'human' for c in longs)}/{len(longs)}"
            row["splits"][split] = s
        rows.append(row)
        print(f"scale {k}: done", file=sys.stderr, flush=True)
    return rows


def print_curve(rows: list[dict[str, Any]]) -> None:
    print(
        "| wait × | silences short / long / mid / long-wait ms | humans kept % | long greetings kept | "
        "machines caught first % | caught in the end % | human delay p50 / p95 ms |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    reached = False
    for r in rows:
        t, h = r["splits"]["tune"], r["splits"]["held_out"]
        mark = ""
        if not reached and (h["machines_caught_first_pct"] or 0) >= FIRST_TARGET:
            mark, reached = " ← held-out first ≥ 95%", True
        sil = " / ".join(str(r[n]) for n in SCALED)
        print(
            f"| {r['scale']} | {sil} | {t['humans_kept_pct']} / **{h['humans_kept_pct']}** | "
            f"{t['long_kept']}, {h['long_kept']} | {t['machines_caught_first_pct']} / "
            f"**{h['machines_caught_first_pct']}**{mark} | {t['machines_caught_pct']} / {h['machines_caught_pct']} | "
            f"{t['human_delay_p50_ms']} / {t['human_delay_p95_ms']}, "
            f"**{h['human_delay_p50_ms']} / {h['human_delay_p95_ms']}** |"
        )
    if not reached:
        print(f"\nheld-out first-decision catch never reaches {FIRST_TARGET}% on this curve")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/amd-corpus"))
    ap.add_argument("--scales", default=",".join(str(s) for s in DEFAULT_SCALES))
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="override an AmdParams field")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    manifest_path = args.corpus / "manifest.json"
    if not manifest_path.exists():
        print(f"no corpus at {args.corpus}: run python -m bench.amd_corpus first", file=sys.stderr)
        return 2
    clips = json.loads(manifest_path.read_text())["clips"]
    base = replace(AmdParams(), **parse_sets(args.set))
    rows = curve(args.corpus, clips, base, [float(s) for s in args.scales.split(",")])
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_curve(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
