"""python3 docker_like.py COMMAND...: COMMAND as root, confined the way a
container with Docker's default settings is (Gradescope's, for one):

  - only Docker's default capabilities in the bounding set (no
    CAP_SYS_ADMIN, so no mount and no namespace as root), through setpriv;
  - a seccomp filter (Debian's python3-seccomp) that answers EPERM to
    unshare, setns, mount and the new mount calls, to clone with any
    namespace flag, and ENOSYS to clone3 (whose flags a filter cannot read).

Inside, bubblewrap cannot make its namespaces, while switching to another
user still works: the host the kit's user seal is for. The seal's tests
(test_seal_user.py) run the grader and run_autograder in it.
"""
import errno
import os
import shutil
import subprocess
import sys

# Docker's default capability set (moby's defaults, as its documentation lists them).
CAPS = (
    "chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service net_raw sys_chroot mknod "
    "audit_write setfcap"
)
REFUSED = ("unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsmount")
# clone flags that make a namespace: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable  # Debian's, with seccomp
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)


def why_not():
    """Why this machine cannot imitate such a container, or None."""
    if os.geteuid() != 0:
        return "needs root (a container's root)"
    if not shutil.which("setpriv"):
        return "needs setpriv (util-linux)"
    found = subprocess.run([PYTHON, "-c", "import seccomp"], capture_output=True, timeout=60).returncode == 0
    if not found:  # Debian's python3-seccomp: the tests need it, the grader never does
        return "needs Debian's python3-seccomp (python3 -m grader setup --for test installs it)"
    return None


def confine_and_run(argv):
    import seccomp

    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in REFUSED:
        f.add_rule(seccomp.ERRNO(errno.EPERM), name)
    for flag in NAMESPACE_FLAGS:
        f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, flag, flag))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    f.load()
    os.execvp(argv[0], argv)


def command(argv):
    """The command line that runs argv inside the imitation."""
    caps = "-all," + ",".join("+" + c for c in CAPS.split())
    return ["setpriv", "--bounding-set", caps, "--inh-caps", "-all", "--", PYTHON, __file__, "--inside"] + argv


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"]:
        confine_and_run(sys.argv[2:])
    os.execvp("setpriv", command(sys.argv[1:]))
