"""The Slurm recipe of book/91-instructors.md, run as the book prints it on a
one-node cluster started here: Debian's slurm-wlm and munge installed (and
removed afterwards if they were not here before), munged, slurmctld and
slurmd started with a node of one CPU and 2 GiB (a small node: the recipe's
tasks ask for 1 CPU and 1 GiB each), the book's three files written from the
page, submit-grading.sh run on a class of six, and the merged gradebook
compared with an unsharded batch of the same class and seed. Every daemon
it started is stopped.

Opt-in, as root: KIT_SLURM=1 /usr/bin/python3 -m pytest grader/tests -k slurm
(about 3 minutes here, the packages' installation included)."""
import csv
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from grader import labs
from conftest import ROOT

pytestmark = [
    pytest.mark.instructor,
    pytest.mark.skipif(os.environ.get("KIT_SLURM") != "1", reason="opt-in: KIT_SLURM=1 (a Slurm cluster, ~3 min)"),
    pytest.mark.skipif(os.geteuid() != 0, reason="installs packages and starts daemons: needs root"),
]

BOOK = ROOT / "book" / "91-instructors.md"
PACKAGES = ["slurm-wlm", "munge"]
RECIPE = re.compile(r"<!-- recipe: (\S+) -->\n```\w*\n(.*?)\n```", re.S)
LAB = labs.find("01")
IGNORED = ("seconds", "graded_at", "shard")  # what may differ between a sharded and a whole run


def recipe():
    """{file name: text} of the recipe blocks, as the book prints them."""
    return {name: text + "\n" for name, text in RECIPE.findall(BOOK.read_text())}


def installed():
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"], capture_output=True, text=True)
    return {ln.split()[0] for ln in out.stdout.splitlines() if ln.endswith("install ok installed")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CONF = """\
ClusterName=kit-test
SlurmctldHost={host}
AuthType=auth/munge
AuthInfo=socket={d}/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName={host} CPUs=1 RealMemory=2048 State=UNKNOWN
PartitionName=kit Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Cluster:
    """munged, slurmctld and slurmd for one node, in a folder of their own."""

    def __init__(self, d):
        self.d = Path(d)
        for sub in ("state", "spool"):
            (self.d / sub).mkdir(parents=True)
        self.conf = self.d / "slurm.conf"
        self.conf.write_text(
            CONF.format(host=socket.gethostname(), d=self.d, ctld_port=free_port(), slurmd_port=free_port())
        )
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.pids = {}

    def start(self):
        d = self.d
        steps = [
            ("munged", ["/usr/sbin/munged", f"--socket={d}/munge.sock", f"--pid-file={d}/munged.pid",
                        f"--log-file={d}/munged.log", f"--seed-file={d}/munged.seed", "--force"]),
            ("slurmctld", ["/usr/sbin/slurmctld", "-f", str(self.conf)]),
            ("slurmd", ["/usr/sbin/slurmd", "-f", str(self.conf)]),
        ]  # fmt: skip
        for name, cmd in steps:
            subprocess.run(cmd, env=self.env, check=True, timeout=60, capture_output=True)
            pidfile = d / f"{name}.pid"
            for _ in range(100):
                if pidfile.is_file() and pidfile.read_text().strip():
                    break
                time.sleep(0.1)
            self.pids[name] = int(pidfile.read_text().split()[0])
        for _ in range(100):
            r = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True, timeout=30)
            if r.stdout.strip() == "idle":
                return
            time.sleep(0.2)
        raise AssertionError(f"the node never came up: {r.stdout} {r.stderr}")

    def idle(self, timeout=1200):
        """Wait until the queue is empty."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r = subprocess.run(["squeue", "-h"], env=self.env, capture_output=True, text=True, timeout=30)
            if r.returncode == 0 and not r.stdout.strip():
                return
            time.sleep(1)
        raise AssertionError("the jobs did not finish: " + r.stdout)

    def stop(self):
        for name in ("slurmd", "slurmctld", "munged"):
            pid = self.pids.get(name)
            if pid is None:
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)

    def alive(self):
        return [n for n, pid in self.pids.items() if Path(f"/proc/{pid}").exists()]


def make_class(folder):
    sol = {f: (LAB.solution_dir / f).read_text() for f in LAB.student}
    skel = {f: (LAB.dir / f).read_text() for f in LAB.student}
    for i, files in enumerate([sol, sol, skel, sol, dict(sol, **{"mb2.c": "int x = ;\n"}), skel]):
        d = Path(folder) / f"student{i}"
        d.mkdir(parents=True)
        for name, text in files.items():
            (d / name).write_text(text)


def rows(path):
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in IGNORED} for r in csv.DictReader(f)]


def test_the_books_slurm_recipe_on_a_one_node_cluster():
    files = recipe()
    assert sorted(files) == ["grade-merge.sbatch", "grade-shard.sbatch", "submit-grading.sh"]
    assert "#SBATCH --cpus-per-task=1" in files["grade-shard.sbatch"]
    assert '--dependency="afterok:$shards"' in files["submit-grading.sh"]
    before = installed()
    missing = [p for p in PACKAGES if p not in before]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    tmp = Path(tempfile.mkdtemp(prefix="kit-slurm-"))
    cluster = None
    try:
        if missing:
            subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
                           env=env, check=True, capture_output=True, timeout=1200)  # fmt: skip
        cluster = Cluster(tmp / "cluster")
        cluster.start()
        here = tmp / "recipe"
        here.mkdir()
        for name, text in files.items():
            (here / name).write_text(text)
        make_class(tmp / "class")
        job = dict(cluster.env, KIT=str(ROOT), LAB="01", SUBMISSIONS=str(tmp / "class"), GRADES=str(tmp / "grades"),
                   SEED="0x5eed2027", SHARDS="3", TMPDIR=str(tmp))  # fmt: skip
        r = subprocess.run(["bash", str(here / "submit-grading.sh")], env=job, capture_output=True, text=True,
                           timeout=120)  # fmt: skip
        assert r.returncode == 0 and "then merge job" in r.stdout, r.stdout + r.stderr
        cluster.idle()
        logs = "".join(p.read_text() for p in sorted((tmp / "grades").glob("*.log")))
        assert (tmp / "grades/grades.csv").is_file(), logs[-4000:]
        assert "batch-merge: 6 students from 3 gradebooks" in logs
        whole = tmp / "whole.csv"
        r = subprocess.run(
            [sys.executable, "-m", "grader", "batch", "--lab", "01", str(tmp / "class"), "--seed", "0x5eed2027",
             "--csv", str(whole), "-j", "1"],
            cwd=ROOT, env=dict(os.environ, TMPDIR=str(tmp)), capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-2000:]
        merged = rows(tmp / "grades/grades.csv")
        assert merged == rows(whole) and len(merged) == 6
        assert [m["status"] for m in merged].count("full marks") == 3
    finally:
        if cluster is not None:
            cluster.stop()
            assert not cluster.alive(), f"still running: {cluster.alive()}"
        if missing:
            new = sorted(installed() - before)
            subprocess.run(["apt-get", "purge", "-y", "-q", *new], env=env, capture_output=True, timeout=600)
            assert not (installed() - before), "packages the test installed are still there"
        subprocess.run(["rm", "-rf", str(tmp)], timeout=120)
