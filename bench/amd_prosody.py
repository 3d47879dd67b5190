"""Could prosody tell a machine's first sentence from a person's answer? A measurement, not a shipped model.

For every clip whose first decision is ``human`` after a short turn (the cases where a machine is put through to
a volunteer: the first turn and a pause a person would also leave), the first turn's audio — exactly what the
detector had when it decided — gives ten features: its length (log), share of speech frames, level spread,
spectral flatness (recorded/compressed audio is flatter), spectral centroid, log-f0 spread, final f0 slope and
final f0 relative to the mean (the rise of "Hello?"), voiced share, and speech bursts per second (rate).
A logistic regression is trained on the TUNING split only and judged three ways: area under the ROC curve on
tune (in-sample) and held-out; leave-one-voice-out inside the tuning split (each espeak accent, and Allison, left
out in turn: is it the voice it learns?); and the operating point that matters for the detector: if flagged
turns waited longer before "human", flagging at most 3% of tuning people (the p95 delay budget has about that
much room), what share of the machines put through would be flagged, and what share of held-out people.

    python -m bench.amd_prosody [--corpus data/amd-corpus]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.amd import read_wav
from bridge.amd import FRAME_MS, AmdDetector

FEATURES = ("log_turn", "speech_share", "level_sd", "flatness", "centroid", "f0_sd", "f0_slope_end", "f0_end_rise",
            "voiced_share", "bursts_per_s")  # fmt: skip


def _f0(x: np.ndarray, rate: int) -> float:
    """Autocorrelation pitch of one 40 ms window, 70-400 Hz; 0 when unvoiced."""
    x = x - x.mean()
    ac = np.correlate(x, x, "full")[len(x) - 1 :]
    lo, hi = rate // 400, rate // 70
    if ac[0] <= 0:
        return 0.0
    k = lo + int(np.argmax(ac[lo:hi]))
    return rate / k if ac[k] / ac[0] > 0.4 else 0.0


def first_turn_features(pcm: bytes, rate: int) -> dict[str, float] | None:
    """Features of the first turn at the moment of a ``short_turn`` human decision (None for other decisions)."""
    det = AmdDetector(rate)
    step = rate * FRAME_MS // 1000 * 2
    for i in range(0, len(pcm), step):
        det.feed(pcm[i : i + step])
        if det.first_decision is not None:
            break
    fd = det.first_decision
    if fd is None or fd.reason != "short_turn" or det._turn_start is None or det._last_speech_end is None:
        return None
    ts, te = det._turn_start, det._last_speech_end
    seg = np.frombuffer(pcm, "<i2").astype(np.float32)[ts * rate // 1000 : te * rate // 1000] / 32768
    n = rate * FRAME_MS // 1000
    frames = seg[: len(seg) // n * n].reshape(-1, n)
    db = 10 * np.log10((frames**2).mean(1) + 1e-10)
    speech = db > db.max() - 30
    spec = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2 + 1e-12
    flat = np.exp(np.log(spec).mean(1)) / spec.mean(1)
    cent = (spec * np.fft.rfftfreq(n, 1 / rate)).sum(1) / spec.sum(1)
    f0 = np.array([_f0(seg[i : i + 2 * n], rate) for i in range(0, len(seg) - 2 * n, n)])
    voiced = f0 > 0
    lf0 = np.log(f0[voiced]) if voiced.sum() > 3 else np.zeros(4)
    tail = lf0[-8:]
    slope = float(np.polyfit(np.arange(len(tail)), tail, 1)[0]) if len(tail) >= 3 else 0.0
    onsets = int((np.diff(speech.astype(int)) == 1).sum()) + 1
    return {
        "log_turn": float(np.log(te - ts + 50)),
        "speech_share": float(speech.mean()),
        "level_sd": float(db[speech].std()),
        "flatness": float(np.log(flat[speech]).mean()),
        "centroid": float(cent[speech].mean()),
        "f0_sd": float(lf0.std()),
        "f0_slope_end": slope,
        "f0_end_rise": float(lf0[-3:].mean() - lf0.mean()),
        "voiced_share": float(voiced.mean()) if len(voiced) else 0.0,
        "bursts_per_s": onsets / max(0.3, (te - ts) / 1000),
    }


# Hand-written rather than a library: ten features and a few hundred rows need nothing more than gradient
# descent on the log-loss, and the project has no ML dependency to add for a measurement.
def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 3000
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    mu, sd = x.mean(0), x.std(0) + 1e-9
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.5 * (z.T @ (p - y) / len(y) + l2 * w / len(y))
        b -= 0.5 * float((p - y).mean())
    return (lambda xx: 1 / (1 + np.exp(-(((xx - mu) / sd) @ w + b)))), w


def auc(score: np.ndarray, y: np.ndarray) -> float:
    order = np.argsort(score)
    rank = np.empty(len(score))
    rank[order] = np.arange(1, len(score) + 1)
    n1, n0 = y.sum(), len(y) - y.sum()
    return float((rank[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def voice_family(row: dict[str, Any]) -> str:
    return "allison" if row["kind"] == "allison" else row["voice"].split("+")[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/amd-corpus"))
    args = ap.parse_args(argv)
    manifest_path = args.corpus / "manifest.json"
    if not manifest_path.exists():
        print(f"no corpus at {args.corpus}: run python -m bench.amd_corpus first", file=sys.stderr)
        return 2
    rows = []
    for c in json.loads(manifest_path.read_text())["clips"]:
        f = first_turn_features(*read_wav(args.corpus / c["file"]))
        if f is not None:
            rows.append({**c, **f})
    tune = [r for r in rows if r["split"] == "tune"]
    held = [r for r in rows if r["split"] == "held_out"]

    def xy(rs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        return np.array([[r[k] for k in FEATURES] for r in rs]), np.array([r["label"] == "machine" for r in rs], float)

    xt, yt = xy(tune)
    xh, yh = xy(held)
    model, w = fit_logistic(xt, yt)
    st, sh = model(xt), model(xh)
    thr = float(np.quantile(st[yt == 0], 0.97))
    by_len, _ = fit_logistic(xt[:, :1], yt)
    lovo = np.zeros(len(tune))
    for fam in sorted({voice_family(r) for r in tune}):
        out = np.array([voice_family(r) == fam for r in tune])
        if out.all() or not out.any():
            continue
        m, _ = fit_logistic(xt[~out], yt[~out])
        lovo[out] = m(xt[out])
    print(f"short-turn 'human' first decisions: tune {len(tune)} ({int(yt.sum())} machines), "
          f"held-out {len(held)} ({int(yh.sum())} machines)")  # fmt: skip
    print(
        f"AUC, turn length alone:      tune {auc(by_len(xt[:, :1]), yt):.3f}  held-out {auc(by_len(xh[:, :1]), yh):.3f}"
    )
    print(f"AUC, all ten features:       tune {auc(st, yt):.3f}  held-out {auc(sh, yh):.3f}  "
          f"leave-one-voice-out (tune) {auc(lovo, yt):.3f}")  # fmt: skip
    print(
        f"flagging 3% of tuning people: machines flagged tune {100 * (st[yt == 1] > thr).mean():.1f}%  "
        f"held-out {100 * (sh[yh == 1] > thr).mean():.1f}%; "
        f"held-out people flagged {100 * (sh[yh == 0] > thr).mean():.1f}%"
    )
    print("standardised weights: " + ", ".join(f"{k} {v:+.2f}" for k, v in zip(FEATURES, w, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
