"""The two sides of the peer benchmark behind one interface (setup / run k calls / profile / teardown), and
what each side runs on: the C# worker (`Ddsm.Bench peer`, a persistent process spoken to in JSON lines)
and PyTorch in this process. Also the machine facts the table records (CPU, load, PyTorch's ISA and BLAS).
"""
import ctypes
import gc
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(v) for v in f.read().split()[:3]]


def _status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _release_memory():
    """Frees what the previous row left: Python garbage, then glibc's free heap back to the OS (without
    malloc_trim the process keeps the largest row's footprint and later rows' peaks mean nothing)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss():
    """Linux: writing 5 to clear_refs resets VmHWM (the peak RSS) to the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _jiffies(pid):
    """utime + stime of a process (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def _machine_jiffies():
    """(busy, total) over all CPUs; busy counts steal (time the hypervisor gave to other guests)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


class CpuMeter:
    """The share of the machine's CPU time that went to other processes (or other guests) between start() and
    share(): load average lags by a minute, this says what competed with the reps just timed."""

    def __init__(self, pids):
        self.pids = pids
        self.start()

    def start(self):
        self.t0 = (_machine_jiffies(), sum(_jiffies(p) for p in self.pids))

    def share(self):
        (b0, t0), own0 = self.t0
        (b1, t1), own1 = _machine_jiffies(), sum(_jiffies(p) for p in self.pids)
        return max(0.0, (b1 - b0) - (own1 - own0)) / max(1, t1 - t0)


def wait_quiet(pids, limit_s, threshold=0.1):
    """Waits (up to limit_s) until a 1-second sample shows under `threshold` of the CPU going to others;
    returns the last sample's share."""
    deadline = time.time() + limit_s
    while True:
        m = CpuMeter(pids)
        time.sleep(1)
        share = m.share()
        if share < threshold or time.time() >= deadline:
            return share


def machine():
    with open("/proc/cpuinfo") as f:
        text = f.read()
    model = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
    flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
    isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return {"cpu": model, "cores": os.cpu_count(), "cpu_flags": isa, "kernel": os.uname().release}


class Ours:
    """The C# worker. Timing happens inside it (Stopwatch around the calls), so the pipe is not timed."""

    def __init__(self, threads, env, build=True, clock="wall"):
        self.clock = clock
        if build:
            subprocess.run(["dotnet", "build", "-c", "Release", "bench/Ddsm.Bench", "-nologo", "-v", "q"],
                           cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        dlls = glob.glob(os.path.join(REPO, "bench/Ddsm.Bench/bin/Release/*/Ddsm.Bench.dll"))
        if not dlls:
            sys.exit("peer_bench: bench/Ddsm.Bench is not built (run without --no-build)")
        self.proc = subprocess.Popen(["dotnet", dlls[0], "peer", f"threads={threads}"], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the C# worker ended (see its stderr above)")
        r = json.loads(line)
        if not r.pop("ok"):
            raise RuntimeError(r["error"])
        return r

    def info(self):
        return self.ask(op="info")

    def setup(self, spec):
        return self.ask(op="setup", **spec)

    def run(self, calls):
        return self.ask(op="run", calls=calls, clock=self.clock)["ms"]

    def profile(self, calls):
        return self.ask(op="profile", calls=calls)["report"]

    def teardown(self):
        return self.ask(op="teardown")["peak_rss_mb"]

    def close(self):
        try:
            self.ask(op="quit")
        finally:
            self.proc.wait(timeout=30)


class Torch:
    """PyTorch in this process, timed with perf_counter (or the process's CPU time) around the calls."""

    def __init__(self, threads, clock="wall"):
        import torch
        self.now = time.process_time if clock == "cpu" else time.perf_counter
        torch.set_num_threads(threads)
        self.torch, self.work = torch, None

    def setup(self, spec):
        import peer_work
        self.work = None
        _release_memory()
        _reset_peak_rss()
        rss0 = _status_mb("VmRSS")
        self.work = peer_work.create(spec)
        return {**getattr(self.work, "info", {}), "rss_start_mb": rss0}

    def run(self, calls):
        t0 = self.now()
        for _ in range(calls):
            self.work.run()
        return (self.now() - t0) * 1e3

    def profile(self, calls):
        with self.torch.autograd.profiler.profile() as prof:
            self.run(calls)
        return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)

    def teardown(self):
        peak = _status_mb("VmHWM")
        self.work = None
        _release_memory()
        return peak

    def info(self):
        torch = self.torch
        show = torch.__config__.show()
        aten = re.search(r"CPU capability usage: (\S+)", show)
        return {"version": torch.__version__, "threads": torch.get_num_threads(),
                "aten_isa": aten.group(1) if aten else "?", "onednn": _onednn_isa(torch), "blas": _blas(torch)}


def _onednn_isa(torch):
    """oneDNN's ISA line and the convolution implementation it picks, from its verbose output."""
    import torch.nn.functional as F
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as f:
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(f.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                F.conv2d(torch.randn(2, 16, 8, 8), torch.randn(16, 16, 3, 3), padding=1)
        finally:
            libc.fflush(None)
            os.dup2(saved, 1)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    isa = re.search(r"isa:([^\n]*)", text)
    impl = re.search(r"exec,cpu,convolution,([^,]*)", text)
    return f"{isa.group(1).strip() if isa else '?'} (conv: {impl.group(1) if impl else '?'})"


def _blas(torch):
    """The BLAS library this process loaded for torch's matmuls, and OpenBLAS's core when it is OpenBLAS."""
    torch.randn(64, 64) @ torch.randn(64, 64)
    with open("/proc/self/maps") as f:
        libs = sorted({m for m in re.findall(r"(/\S*blas\S*\.so\S*)", f.read())})
    core = ""
    for lib in libs:
        try:
            h = ctypes.CDLL(lib)
            h.openblas_get_corename.restype = ctypes.c_char_p
            core = f", OpenBLAS core {h.openblas_get_corename().decode()}"
            break
        except (OSError, AttributeError):
            continue
    reference = any("/blas/libblas" in lib for lib in libs) and not core
    return {"libs": libs, "summary": ("reference BLAS (netlib, slow)" if reference else
                                      "OpenBLAS" if core else ", ".join(libs) or "none") + core,
            "reference": reference}
