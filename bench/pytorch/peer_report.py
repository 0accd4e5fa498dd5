"""Markdown for the peer benchmark: one run's table, the header that says how and where it was measured,
and the combined table of several runs (one column group per ISA setting, re-run rows replacing old ones).
"""
import textwrap
from statistics import median

from peer_rows import ROWS


WIDTH = 120  # the repository's column limit (.editorconfig), tables included: rows are named by their ids


def stats(ms):
    return min(ms), median(ms)


def ratios(row):
    (om, od), (tm, td) = stats(row["ours_ms"]), stats(row["torch_ms"])
    return om / tm, od / td


def _ms(v):
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def _pair(ms):
    lo, mid = stats(ms)
    return f"{_ms(lo)} ({_ms(mid)})"


def others(row):
    """The share of the CPU other processes took during the row's reps: median (max)."""
    v = row.get("others_cpu") or [0.0]
    return f"{100 * median(v):.0f} % ({100 * max(v):.0f} %)"


def _rss(row):
    o, t = row["ours_rss_mb"], row["torch_rss_mb"]
    do, dt = o - row["ours_info"].get("rss_start_mb", o), t - row["torch_info"].get("rss_start_mb", t)
    return f"{o:.0f} (+{do:.0f}) / {t:.0f} (+{dt:.0f})"


def config(run):
    """The column a run fills: its label (--label: before / after …) if any, our ISA and PyTorch's."""
    m = run["meta"]
    label = f"{m['label']}: " if m.get("label") else ""
    return f"{label}ours {m['ours_isa']} / PyTorch {m['torch_isa']}"


def header(run):
    m = run["meta"]
    o, t = m["ours"], m["torch"]
    ours_isa = "Vector512 accelerated" if o["vector512_accelerated"] else "Vector512 off (AVX2 paths)"
    return "\n".join(textwrap.fill(p, WIDTH, break_on_hyphens=False, break_long_words=False) for p in [
        f"Command: `{m['command']}`",
        f"Date: {m['date']} UTC. Machine: {m['machine']['cpu']}, {m['machine']['cores']} cores, "
        f"flags {' '.join(m['machine']['cpu_flags'])}, Linux {m['machine']['kernel']}.",
        f"Ours: {o['runtime']}, {o['threads']} threads, {ours_isa} (Avx512F.IsSupported {o['avx512f']}, "
        f"SGEMM/conv path {o.get('sgemm_path', 'AVX2' if o.get('sgemm_avx2_fma') else '?')}); "
        f"setting `{m['ours_isa']}`.",
        f"PyTorch {t['version']}, {t['threads']} threads; ATen CPU capability {t['aten_isa']}; oneDNN "
        f"{t['onednn']}; BLAS {t['blas']['summary']}; setting `{m['torch_isa']}`.",
        f"Clock: {m.get('clock', 'wall')} time. "
        + (f"Interrupted {m['interrupted']}. " if m.get("interrupted") else "") +
        f"Load average (1/5/15 min) at start {m['load_start']}, at end {m['load_end']}. Each row: set-up and "
        f"warm-up on both sides, then {m['reps']} reps ({m['model_reps']} for model rows) alternating ours, "
        f"PyTorch; a rep is k calls (k = 1 for model rows); ms per call, min (median). Others' CPU: the share of "
        f"the machine's CPU time other processes (and steal) took during the reps, from /proc/stat.",
    ])


def run_table(run):
    out = ["| work | ours ms | PyTorch ms | ours/PyTorch min (med) | peak RSS MiB (+ over the row's start) "
           "ours / PyTorch | others' CPU med (max) | load 1-min |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in run["rows"]:
        lo, mid = ratios(r)
        flag = "" if r.get("checksum_agree", True) else " ⚠ outputs differ"
        out.append(f"| {r['id']}{flag} | {_pair(r['ours_ms'])} | {_pair(r['torch_ms'])} | {lo:.2f} ({mid:.2f}) | "
                   f"{_rss(r)} | {others(r)} | {r['load'][0]:.1f}–{r['load'][1]:.1f} |")
    return "\n".join(out)


def combined_table(runs):
    """Rows of every run, one column group per configuration; a later run's row replaces an earlier one's."""
    cols, cells = [], {}
    for run in runs:
        c = config(run)
        if c not in cols:
            cols.append(c)
        for r in run["rows"]:
            cells[(r["id"], c)] = r
    tags = "ABCDEFGH"
    legend = "; ".join(f"[{tags[i]}] {c}" for i, c in enumerate(cols))
    head = "| work | " + " | ".join(f"ours [{t}] | PyTorch [{t}] | ratio [{t}]" for t in tags[:len(cols)])
    # Two column groups fit 120 columns with min (median) everywhere; more show only the minima in ms.
    ms = _pair if len(cols) <= 2 else (lambda v: _ms(min(v)))
    what = "min (median)" if len(cols) <= 2 else "min"
    text = (f"Columns: {legend}. ms per call, {what}; ratio of the minima (of the medians). Rows by id "
            f"(bench/pytorch/peer_rows.py): conv_fwd/c64-32 = 3×3 conv, N32, 64 channels, 32²; gn = GroupNorm16+SiLU, "
            f"N64; attn = attention, N64, heads of 32, T tokens; train, sample = the model rows.")
    out = [textwrap.fill(text, WIDTH), "", head + " |", "|---|" + "---:|---:|---:|" * len(cols)]
    for row in ROWS:
        if not any((row.id, c) in cells for c in cols):
            continue
        line = f"| {row.id} |"
        for c in cols:
            r = cells.get((row.id, c))
            if r is None:
                line += " – | – | – |"
                continue
            lo, mid = ratios(r)
            line += f" {ms(r['ours_ms'])} | {ms(r['torch_ms'])} | **{lo:.2f}** ({mid:.2f}) |"
        out.append(line)
    return "\n".join(out)
