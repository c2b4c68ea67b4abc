"""The core budget against a fake machine: a fake /proc/stat, /proc/loadavg
and cgroup tree in tmp_path, a fake affinity mask and a fake clock."""

import pytest

from skdigits import _cores


class _Clock:
    """Stands for the ``time`` module: wall and process time set by hand."""

    def __init__(self):
        self.wall, self.cpu = 100.0, 5.0

    def monotonic(self):
        return self.wall

    def process_time(self):
        return self.cpu


def _stat_line(name, busy, idle):
    # user nice system idle iowait irq softirq steal guest guest_nice
    return f"{name} {busy} 0 0 {idle} 0 0 0 0 0 0\n"


class _Machine:
    """An 8-CPU machine whose counters advance by hand; the process may run
    on ``allowed``."""

    def __init__(self, tmp_path, monkeypatch, allowed, n_cpus=8):
        self.stat = tmp_path / "stat"
        self.loadavg = tmp_path / "loadavg"
        self.busy = [0] * n_cpus
        self.idle = [0] * n_cpus
        self.clock = _Clock()
        # raising=False: the same fakes stand in for code without the hooks
        monkeypatch.setattr(_cores, "PROC_STAT", str(self.stat), raising=False)
        monkeypatch.setattr(_cores, "PROC_LOADAVG", str(self.loadavg), raising=False)
        monkeypatch.setattr(_cores, "PROC_SELF_CGROUP", str(tmp_path / "none"),
                            raising=False)
        monkeypatch.setattr(_cores, "time", self.clock)
        # hermetic: an open of the real files in the module reads the fakes
        fakes = {"/proc/stat": self.stat, "/proc/loadavg": self.loadavg,
                 "/proc/self/cgroup": tmp_path / "none"}
        monkeypatch.setattr(
            _cores, "open",
            lambda path, *args, **kwargs: open(fakes.get(path, path), *args, **kwargs),
            raising=False)
        monkeypatch.setattr(_cores, "_CLOCK_TICKS", 100)
        monkeypatch.setattr(_cores.os, "sched_getaffinity",
                            lambda pid: set(allowed), raising=False)
        monkeypatch.setattr(_cores, "process_cores", lambda: len(allowed))
        monkeypatch.setattr(_cores, "effective_n_threads",
                            lambda n_jobs: len(allowed))
        self.loadavg.write_text("0.50 0.50 0.50 1/300 4242\n")
        self.write()

    def write(self):
        total = _stat_line("cpu", sum(self.busy), sum(self.idle))
        lines = [_stat_line(f"cpu{i}", b, d)
                 for i, (b, d) in enumerate(zip(self.busy, self.idle))]
        self.stat.write_text(total + "".join(lines) + "intr 0\nctxt 0\n")

    def advance(self, seconds, busy_cpus, own=0.0):
        """``seconds`` pass with ``busy_cpus`` busy (own: this process's CPU
        seconds, spent on the allowed CPUs)."""
        ticks = int(seconds * 100)
        for cpu in range(len(self.busy)):
            if cpu in busy_cpus:
                self.busy[cpu] += ticks
            else:
                self.idle[cpu] += ticks
        self.clock.wall += seconds
        self.clock.cpu += own
        self.write()


def test_idle_allowed_cpus_on_a_busy_host_give_the_full_budget(tmp_path,
                                                                 monkeypatch):
    # a cpuset of CPUs 0-1 on an 8-CPU host whose other 6 CPUs are busy: the
    # host-wide line says 6 CPUs busy, which left one thread of two
    machine = _Machine(tmp_path, monkeypatch, allowed={0, 1})
    with _cores.CoreShare(None) as share:
        machine.advance(1.0, busy_cpus={2, 3, 4, 5, 6, 7})
        assert share.threads() == 2
        machine.advance(1.0, busy_cpus={2, 3, 4, 5, 6, 7})
        assert share.threads() == 2


def test_busy_allowed_cpus_reduce_the_budget(tmp_path, monkeypatch):
    machine = _Machine(tmp_path, monkeypatch, allowed={4, 5, 6, 7})
    with _cores.CoreShare(None) as share:
        machine.advance(1.0, busy_cpus={0, 1, 2, 3})  # only the others busy
        assert share.threads() == 4
        machine.advance(1.0, busy_cpus={5, 6})  # two of ours, by others
        assert share.threads() == 2
        machine.advance(1.0, busy_cpus={5, 6}, own=2.0)  # by this process
        assert share.threads() == 4
    with _cores.CoreShare(4) as share:  # an explicit count is kept
        machine.advance(1.0, busy_cpus={4, 5, 6, 7})
        assert share.threads() == 4


def test_the_meter_subtracts_this_process_only_on_its_cpus(tmp_path, monkeypatch):
    machine = _Machine(tmp_path, monkeypatch, allowed={0, 1, 2})
    meter = _cores._CpuMeter()
    # 1.5 CPUs busy on ours in 1 s, 0.5 CPU-seconds of them ours; CPU 7 (not
    # ours) busy too
    machine.advance(1.0, busy_cpus={0, 7}, own=0.5)
    machine.busy[1] += 50
    machine.idle[1] -= 50
    machine.write()
    assert meter.others() == pytest.approx(1.0)
    assert meter.cpus == 3


def test_a_short_interval_keeps_its_base_and_counts_runnable_tasks_on_own_cpus(
        tmp_path, monkeypatch):
    machine = _Machine(tmp_path, monkeypatch, allowed={0, 1})
    meter = _cores._CpuMeter()
    # 7 runnable tasks (this thread one of them) on an 8-CPU host: the 6
    # others fit on the 6 CPUs that are not ours
    machine.loadavg.write_text("6.0 6.0 6.0 7/300 4242\n")
    machine.advance(0.001, busy_cpus=set())
    assert meter.others() == 0.0
    machine.loadavg.write_text("9.0 9.0 9.0 9/300 4242\n")  # 2 more than fit
    assert meter.others() == 2.0
    # the base stays: 30 ms later, the 31 ms since the first reading count
    machine.advance(0.03, busy_cpus={1})
    assert meter.others() == pytest.approx(0.03 / 0.031)


def _cgroup(tmp_path, monkeypatch, line, files):
    root = tmp_path / "cgroup"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "self_cgroup").write_text(line)
    monkeypatch.setattr(_cores, "CGROUP_ROOT", str(root), raising=False)
    monkeypatch.setattr(_cores, "PROC_SELF_CGROUP", str(tmp_path / "self_cgroup"),
                        raising=False)
    import joblib

    # a host of 8 cores that joblib sees no limit on
    monkeypatch.setattr(joblib, "cpu_count", lambda only_physical_cores=False: 8)


def test_a_v2_quota_of_one_and_a_half_cpus_gives_two_threads(tmp_path,
                                                              monkeypatch):
    # the quota sits on the process's own cgroup, below the mount's root
    # (systemd-run -p CPUQuota=150%), where joblib does not look
    _cgroup(tmp_path, monkeypatch, "0::/system.slice/job.service\n",
            {"cpu.max": "max 100000\n",
             "system.slice/cpu.max": "max 100000\n",
             "system.slice/job.service/cpu.max": "150000 100000\n"})
    assert _cores.process_cores() == 2  # rounded up, as joblib rounds
    with _cores.CoreShare(-1) as share:
        assert share.threads() <= 2


def test_a_parent_cgroups_quota_bounds_the_process(tmp_path, monkeypatch):
    _cgroup(tmp_path, monkeypatch, "0::/kubepods/pod1/app\n",
            {"kubepods/pod1/cpu.max": "50000 100000\n",
             "kubepods/pod1/app/cpu.max": "max 100000\n"})
    assert _cores.process_cores() == 1


def test_a_v1_cfs_quota_bounds_the_cores(tmp_path, monkeypatch):
    _cgroup(tmp_path, monkeypatch, "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n",
            {"cpu/docker/abc/cpu.cfs_quota_us": "300000\n",
             "cpu/docker/abc/cpu.cfs_period_us": "100000\n",
             "cpu/cpu.cfs_quota_us": "-1\n",
             "cpu/cpu.cfs_period_us": "100000\n"})
    assert _cores.process_cores() == 3


def test_no_quota_leaves_joblibs_count(tmp_path, monkeypatch):
    _cgroup(tmp_path, monkeypatch, "0::/\n", {"cpu.max": "max 100000\n"})
    assert _cores.process_cores() == 8
