"""The PyTorch peer benchmark (issue 16): the same work on our CPU backend and on PyTorch, in one run.

    /usr/bin/python3 bench/pytorch/peer_bench.py [--isa default|avx2] [--rows PATTERN,...] [--json FILE]
        [--results bench/RESULTS.md] [--profile FILE]
    /usr/bin/python3 bench/pytorch/peer_bench.py report RUN.json [RUN.json ...] [--results FILE]

Every row of peer_rows.py runs on both sides at once: set-up and warm-up on each, then reps alternating
ours, PyTorch, ours, PyTorch…, min and median per side, and the ratio ours / PyTorch. Our side is a
persistent C# worker (bench/Ddsm.Bench `peer`, JSON lines over stdin/stdout) so that JIT tiering, pools
and packing buffers are warm and never timed, and each side times its own calls (the pipe is not timed).
Both sides get --threads threads (default 2). Model rows use the same weights and input batch on both
sides (our worker writes them, slim_unet.py loads them) and compare a checksum of ε̂.

ISA: --isa avx2 limits both sides to AVX2 (ours: DOTNET_EnableAVX512=0, PyTorch: ATEN_CPU_CAPABILITY=avx2,
ONEDNN_MAX_CPU_ISA=AVX2, OPENBLAS_CORETYPE=Haswell); --ours-isa / --torch-isa set one side (torch also
takes avx512, which forces ATen's AVX-512 kernels where its CPU check declines them). BLAS: Debian's torch
calls whatever libblas.so.3 is; with the reference BLAS (≈ 4 GFLOP/s) its matmuls are no peer, so --blas
auto puts an OpenBLAS found on the machine first on LD_LIBRARY_PATH (`--blas DIR` names one, `system`
keeps the default). Settings that must precede `import torch` re-execute this script once.
"""
import argparse
import datetime
import json
import os
import sys
import time
from fnmatch import fnmatch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_report  # noqa: E402
import peer_sides  # noqa: E402  (imports torch only when a side is built)
from peer_rows import ROWS, DEFAULT  # noqa: E402

OPENBLAS_DIRS = ["/usr/lib/x86_64-linux-gnu/openblas-pthread", "/usr/lib/x86_64-linux-gnu/openblas-openmp"]
TORCH_ISA = {
    "default": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2",
             "OPENBLAS_CORETYPE": "Haswell"},
    "avx512": {"ATEN_CPU_CAPABILITY": "avx512"},
}
# .NET 10 reads EnableAVX512; EnableAVX512F is the .NET 8/9 name (ignored by 10, kept for older runtimes).
OURS_ISA = {"default": {}, "avx2": {"DOTNET_EnableAVX512": "0", "DOTNET_EnableAVX512F": "0"}}


def parse(argv):
    if argv[:1] == ["report"]:
        p = argparse.ArgumentParser(prog="peer_bench.py report")
        p.add_argument("runs", nargs="+", help="JSON files written with --json")
        p.add_argument("--results", help="append the combined table to this markdown file")
        return p.parse_args(argv[1:]), True
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", default="", help="comma-separated ids or patterns (default: all but sandwich/*)")
    p.add_argument("--list", action="store_true", help="list the rows and exit")
    p.add_argument("--isa", choices=["default", "avx2"], default="default", help="both sides' ISA")
    p.add_argument("--ours-isa", choices=list(OURS_ISA), help="our side's ISA (overrides --isa)")
    p.add_argument("--torch-isa", choices=list(TORCH_ISA), help="PyTorch's ISA (overrides --isa)")
    p.add_argument("--blas", default="auto", help="auto | system | a directory holding an OpenBLAS libblas.so.3")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=7, help="reps per side of a kernel row")
    p.add_argument("--model-reps", type=int, default=5, help="reps per side of a model row")
    p.add_argument("--target-ms", type=float, default=100, help="a kernel rep's length: calls per rep chosen so")
    p.add_argument("--gap", type=float, default=0.15,
                   help="idle seconds before each rep: the other side's spinning threads (OpenBLAS ≈ 0.1 s) sleep")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before each row wait up to S seconds for other processes to use < 10%% of the CPU")
    p.add_argument("--json", help="write every rep and the machine facts here (for `report`)")
    p.add_argument("--results", help="append the table with command, machine, date and load to this file")
    p.add_argument("--profile", help="append each row's op profile of both sides to this file")
    p.add_argument("--no-build", action="store_true", help="use the Ddsm.Bench already built")
    p.add_argument("--label", help="names the run's column in `report` (e.g. before, after)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="cpu: each side times its process's CPU time, not wall time (with --threads 1, a measure "
                        "that other processes' load disturbs far less; not the issue's 2-thread wall time)")
    a = p.parse_args(argv)
    a.ours_isa = a.ours_isa or a.isa
    a.torch_isa = a.torch_isa or a.isa
    return a, False


def torch_env(args):
    """The environment PyTorch must start with: ISA limits and the BLAS to load."""
    env = {k: v for k, v in os.environ.items() if k not in {k for d in TORCH_ISA.values() for k in d}}
    env.update(TORCH_ISA[args.torch_isa])
    env["OPENBLAS_NUM_THREADS"] = str(args.threads)
    blas = args.blas
    if blas == "auto":
        system = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
        found = [d for d in [os.environ.get("PEER_OPENBLAS_DIR", "")] + OPENBLAS_DIRS
                 if d and os.path.exists(os.path.join(d, "libblas.so.3"))]
        blas = found[0] if "openblas" not in system and found else "system"
    if blas != "system":
        paths = [blas] + [p for p in os.environ.get("LD_LIBRARY_PATH", "").split(":") if p and p != blas]
        env["LD_LIBRARY_PATH"] = ":".join(paths)
    return env


def select(patterns):
    if not patterns:
        return DEFAULT
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    rows = [r for r in ROWS if any(fnmatch(r.id, p) or r.id.startswith(p.rstrip("/*") + "/") for p in pats)]
    if not rows:
        sys.exit(f"peer_bench: no row matches {patterns!r} (--list shows them)")
    return rows


def warm(side, model):
    """Calls until JIT, pools and caches have settled (≥ 2 calls for a model, ≥ 3 calls and 0.5 s for a kernel,
    in growing batches); returns the last batch's ms per call."""
    calls, total, k = 0, 0.0, 1
    while True:
        ms = side.run(k)
        calls, total = calls + k, total + ms
        if (model and calls >= 2) or (not model and calls >= 3 and total >= 500):
            return ms / k
        if ms < 50:
            k *= 2


def checksums_agree(a, b):
    """Mean and mean |ε̂| of the two sides within 1e-3 of mean |ε̂| (float32 sums in different orders)."""
    return abs(a[0] - b[0]) <= 1e-3 * b[1] and abs(a[1] - b[1]) <= 1e-3 * b[1]


def run_row(row, ours, torch_side, args, tmp):
    spec = dict(row.spec)
    if row.model:
        spec["weights"] = os.path.join(tmp, "peer-weights.safetensors")
    pids = [os.getpid(), ours.proc.pid]
    quiet = peer_sides.wait_quiet(pids, args.wait_quiet) if args.wait_quiet > 0 else None
    load0 = peer_sides.loadavg()[0]
    oi, ti = ours.setup(spec), torch_side.setup(spec)
    per_call = max(warm(ours, row.model), warm(torch_side, row.model))
    k = 1 if row.model else max(1, round(args.target_ms / per_call))
    o_ms, t_ms, others = [], [], []
    for _ in range(args.model_reps if row.model else args.reps):
        meter = peer_sides.CpuMeter(pids)
        time.sleep(args.gap)
        o_ms.append(ours.run(k) / k)
        time.sleep(args.gap)
        t_ms.append(torch_side.run(k) / k)
        others.append(meter.share())
    r = {"id": row.id, "label": row.label, "spec": row.spec, "calls_per_rep": k, "ours_ms": o_ms, "torch_ms": t_ms,
         "others_cpu": others, "quiet_before": quiet, "ours_info": oi, "torch_info": ti}
    if "checksum" in oi and "checksum" in ti:
        r["checksum_agree"] = checksums_agree(oi["checksum"], ti["checksum"])
    if args.profile:
        with open(args.profile, "a") as f:
            f.write(f"\n## {row.label} ({k} calls)\n\nours:\n```\n{ours.profile(k)}```\n\n"
                    f"PyTorch:\n```\n{torch_side.profile(k)}\n```\n")
    r["ours_rss_mb"], r["torch_rss_mb"] = ours.teardown(), torch_side.teardown()
    r["load"] = [load0, peer_sides.loadavg()[0]]
    return r


def bench(args):
    import tempfile
    rows = select(args.rows)
    ours_env = {k: v for k, v in os.environ.items() if not k.startswith("DOTNET_EnableAVX512")}
    ours_env.update(OURS_ISA[args.ours_isa])
    ours = peer_sides.Ours(args.threads, ours_env, build=not args.no_build, clock=args.clock)
    torch_side = peer_sides.Torch(args.threads, clock=args.clock)
    meta = {"command": " ".join([sys.executable] + [a if " " not in a else repr(a) for a in sys.argv]),
            "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"), "machine": peer_sides.machine(),
            "ours_isa": args.ours_isa, "torch_isa": args.torch_isa, "ours": ours.info(), "torch": torch_side.info(),
            "reps": args.reps, "model_reps": args.model_reps, "load_start": peer_sides.loadavg(),
            "clock": args.clock, "label": args.label}
    ours_512 = meta["ours"]["vector512_accelerated"] or meta["ours"].get("sgemm_path") == "Avx512"
    if args.ours_isa == "avx2" and ours_512:
        sys.exit("peer_bench: DOTNET_EnableAVX512=0 did not turn Vector512 off in the worker")
    if meta["torch"]["blas"]["reference"]:
        print("peer_bench: WARNING: PyTorch runs its matmuls on the reference BLAS (no OpenBLAS found): "
              "attention and linear rows are not a fair peer", file=sys.stderr)
    print(peer_report.header({"meta": {**meta, "load_end": "…"}}), file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory(prefix="peer-bench-") as tmp:
        try:
            for row in rows:
                r = run_row(row, ours, torch_side, args, tmp)
                results.append(r)
                lo, mid = peer_report.ratios(r)
                print(f"{row.id:28} ours {peer_report._pair(r['ours_ms']):>16} ms  torch "
                      f"{peer_report._pair(r['torch_ms']):>16} ms  ratio {lo:.2f} ({mid:.2f})  others' CPU "
                      f"{peer_report.others(r)}  load {r['load'][0]:.1f}-{r['load'][1]:.1f}"
                      f"{'' if r.get('checksum_agree', True) else '  OUTPUTS DIFFER'}", file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            # Ctrl-C / kill -INT: keep the rows measured so far (the JSON and table say the run was cut short).
            meta["interrupted"] = f"after {len(results)} of {len(rows)} rows"
            print(f"peer_bench: interrupted {meta['interrupted']}", file=sys.stderr)
        finally:
            ours.close()
    meta["load_end"] = peer_sides.loadavg()
    return {"meta": meta, "rows": results}


def main(argv):
    args, is_report = parse(argv)
    if is_report:
        runs = [json.load(open(p)) for p in args.runs]
        text = "\n\n".join(peer_report.header(r) for r in runs) + "\n\n" + peer_report.combined_table(runs)
    else:
        if args.list:
            for r in ROWS:
                print(f"{r.id:28} {r.label}{'' if r in DEFAULT else '   (not in the default set)'}")
            return
        env = torch_env(args)
        if env != dict(os.environ) and os.environ.get("PEER_BENCH_REEXEC") != "1":
            os.execve(sys.executable, [sys.executable] + sys.argv, {**env, "PEER_BENCH_REEXEC": "1"})
        run = bench(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(run, f, indent=1)
        text = peer_report.header(run) + "\n\n" + peer_report.run_table(run)
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
