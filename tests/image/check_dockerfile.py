#!/usr/bin/env python3
"""Checks the Dockerfile keeps the image's promises (make check runs it; no
container engine needed). Each rule names the failure users met:

- no `# syntax=` directive: BuildKit would fetch a frontend image, and an
  offline or mirrored build fails;
- the configuration comes from ENV only: no flags after the ENTRYPOINT (CMD),
  since `agentd --healthcheck` reads the environment and a `--port` in CMD
  would leave the HEALTHCHECK probing the wrong port;
- the HEALTHCHECK is `agentd --healthcheck` without flags, for the same reason;
- STOPSIGNAL SIGTERM (what agentd drains on) is stated;
- the runtime user is a fixed numeric uid:gid, created with that uid/gid, so a
  bind mount can be chown'ed to it;
- the binary copied into the runtime stage is stripped.

Usage: tests/image/check_dockerfile.py [Dockerfile]
"""

import json
import re
import sys


def instructions(text):
    """(line, KEYWORD, argument) for each instruction, continuations joined."""
    out = []
    pending, start = "", 0
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, arg = full.partition(" ")
        out.append((start, word.upper(), arg.strip()))
    return out


def exec_form(arg):
    try:
        value = json.loads(arg)
    except ValueError:
        return None
    return value if isinstance(value, list) else None


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "Dockerfile"
    text = open(path, encoding="utf-8").read()
    problems = []
    first = text.lstrip().split("\n", 1)[0]
    if re.match(r"#\s*syntax\s*=", first, re.I):
        problems.append("line 1: a `# syntax=` directive makes BuildKit fetch a frontend; stock syntax only")
    ins = instructions(text)
    stages = [i for i, (_, k, _) in enumerate(ins) if k == "FROM"]
    if len(stages) < 2:
        problems.append("expected a build stage and a runtime stage")
        runtime = ins
    else:
        runtime = ins[stages[-1]:]
    build = ins[: stages[-1]] if stages else []
    get = lambda kw, part: [(n, a) for n, k, a in part if k == kw]

    for n, arg in get("CMD", runtime):
        form = exec_form(arg)
        if form is None or any(w.startswith("-") for w in form):
            problems.append(f"line {n}: CMD {arg}: configuration belongs in ENV, not flags "
                            "(the HEALTHCHECK reads the environment)")
    health = get("HEALTHCHECK", runtime)
    if not health:
        problems.append("no HEALTHCHECK")
    for n, arg in health:
        cmd = exec_form(arg.split("CMD", 1)[1].strip()) if "CMD" in arg else None
        if not cmd or cmd[-1] != "--healthcheck" or any(w.startswith("-") for w in cmd[1:-1]):
            problems.append(f"line {n}: the HEALTHCHECK must be `agentd --healthcheck` with no other flags")
    entry = get("ENTRYPOINT", runtime)
    if not entry or exec_form(entry[-1][1]) is None or len(exec_form(entry[-1][1])) != 1:
        problems.append("the ENTRYPOINT must be the exec form of agentd alone (PID 1, no flags)")
    env = " ".join(a for _, a in get("ENV", runtime))
    if "AGENTD_PORT=" not in env:
        problems.append("ENV must set AGENTD_PORT (the one source of the port)")
    if ("STOPSIGNAL", "SIGTERM") not in [(k, a) for _, k, a in runtime]:
        problems.append("no `STOPSIGNAL SIGTERM`")
    users = get("USER", runtime)
    m = re.fullmatch(r"(\d+):(\d+)", users[-1][1]) if users else None
    if not m:
        problems.append("USER must be a fixed numeric uid:gid")
    else:
        runs = " ".join(a for _, a in get("RUN", runtime))
        if f"--uid {m.group(1)}" not in runs or f"--gid {m.group(2)}" not in runs:
            problems.append(f"the user must be created with uid {m.group(1)} and gid {m.group(2)}")
    build_runs = " ".join(a for _, a in get("RUN", build))
    copies = [a for _, a in get("COPY", runtime) if a.startswith("--from=")]
    if not re.search(r"\bstrip\b", build_runs + " " + " ".join(a for _, a in get("RUN", runtime))):
        problems.append("the binary is not stripped")
    if not copies:
        problems.append("the runtime stage copies nothing from the build stage")

    for p in problems:
        print(f"{path}: {p}", file=sys.stderr)
    print(f"dockerfile: {path}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
