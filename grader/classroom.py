"""GitHub Classroom's points, from a grading's JSON report.

    python3 -m grader.classroom reports/grade.json

The students' workflow (.github/workflows/grade.yml) runs this after the
grading. GitHub Classroom reads a run's points from two notices, as its own
autograding reporter writes them: one titled "Autograding complete" saying
`Points X/Y`, one titled "Autograding report" holding
{"totalPoints": X, "maxPoints": Y}. This prints both as workflow commands,
and a table of the checks in the run's summary page ($GITHUB_STEP_SUMMARY).
Challenges are extra credit here too: their points count in X, not in Y.
"""
import json
import os
import sys


def points(data):
    """(points earned, points possible) of a report (report.as_dict)."""
    return data["score"] + data.get("challenge_score", 0), data["max_score"]


def escape(text):
    """A workflow command's message: %, CR and LF escaped as the runner expects."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def notices(total, possible):
    return [
        f"::notice title=Autograding complete::{escape(f'Points {total}/{possible}')}",
        f"::notice title=Autograding report::{escape(json.dumps({'totalPoints': total, 'maxPoints': possible}))}",
    ]


def summary(data):
    """The run's summary page: one row per check."""
    out = ["| lab | check | points |", "|---|---|---|"]
    for st in data["stages"]:
        for c in st["checks"]:
            title = c["title"].replace("|", "\\|")
            pts = f"+{c['score']}/{c['points']}" if c["challenge"] else f"{c['score']}/{c['points']}"
            out.append(f"| {st['lab']} | {title} | {pts} |")
    total, possible = points(data)
    return "\n".join([f"## Points {total}/{possible}", ""] + out) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python3 -m grader.classroom REPORT.json", file=sys.stderr)
        return 2
    try:
        with open(argv[0]) as f:
            data = json.load(f)
        total, possible = points(data)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"::error title=Autograding::no points: the grading left no report ({argv[0]}: {e})")
        return 1
    for line in notices(total, possible):
        print(line)
    where = os.environ.get("GITHUB_STEP_SUMMARY")
    if where:
        with open(where, "a") as f:
            f.write(summary(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
