"""How a run must end, for every stage: the final line `[power] off: ok` and
the success exit value, and nothing else counts as a clean end. This is the
kit's protocol between kernel and grader, not a lab's (grade.py grades it
on every stage; a lab's checks reach end_of_run through grader/api.py)."""


def qemu_exit_status(stage, name):
    """The exit status QEMU gives when the kernel writes EXIT_<name> to isa-debug-exit."""
    return (stage.exit_values()[name] << 1) | 1


def end_of_run(run):
    """Why a run did not end cleanly, as a (message, details) pair, or None."""
    last = run.last_lines(3)
    tail = [f"last output: {ln}" for ln in last] or ["the kernel printed nothing at all"]
    if run.output and not run.output.endswith(b"\n") and not (run.outcome and run.outcome.ok):
        tail.append(
            "the last line is cut off: the machine stopped while the UART was still sending "
            "(Bochs models the baud rate), so the line's end says nothing about the code"
        )
    final = [ln for ln in run.lines if ln.startswith("[power] off:")]
    if run.reason == "interrupted":
        return "interrupted (Ctrl-C): the run was stopped", tail
    if run.reason == "start-failed":
        return "the emulator did not start: " + run.stderr.strip()[:200], []
    if run.reason == "flood":
        return (
            f"output flood: more than {run.limits['cap'] // 1024} KiB of serial output "
            "(a print in a loop?); the run was stopped"
        ), tail
    if run.reason == "silent":
        what = "nothing printed at all" if not run.output else "no new output"
        return (
            f"timeout: {what} for {run.limits['progress']:.0f}s (a hang, or a reset loop); the run was stopped"
        ), tail
    if run.reason == "timeout" and run.limits.get("stage"):
        return (
            f"timeout: the stage's time limit ({run.limits['stage']:.0f}s for the build and every boot) "
            "was reached; the run was stopped"
        ), tail
    if run.reason == "timeout":
        return f"timeout: still running after {run.limits['total']:.0f}s; the run was stopped", tail
    if run.reason == "final-line-no-exit":
        return "printed the final line but did not power off (the emulator kept running)", tail
    if run.binary_bytes and run.binary_bytes * 20 > len(run.output):
        return (
            f"the serial output is binary garbage ({run.binary_bytes} of {len(run.output)} bytes "
            "are not text): wrong divisor or line control, or raw memory printed?"
        ), tail
    if run.outcome is not None and not run.outcome.ok:
        extra = [f"final line: {final[-1]}"] if final else []
        return f"{run.outcome.text}, not a clean power-off (ok)", extra + tail
    if not run.output:
        return (
            "the kernel powered off but no byte reached the serial line: the UART may be left in "
            "loopback (MCR bit 4), or with LCR.DLAB set so that writes go to the divisor latch"
        ), []
    if not final or final[-1] != "[power] off: ok":
        return "the run ended without the final line `[power] off: ok`", tail
    return None
