#!/usr/bin/env python3
"""Runs README.md's shell examples in order against a fresh agentd, so that the
README, followed top to bottom on an empty data dir, keeps working.

Usage: tests/readme/run_examples.py AGENTD_BIN [README.md]   (from the repository root)

What it runs, in README order:
- every ```sh block (also one indented in a list), except one preceded by the
  line <!-- readme-test: skip -->; a `curl` line in any other block that is not
  so marked is an error, so no example goes unrun by its fence;
  in a block, a line that starts a command is shell; lines that start with
  `{`, `[`, `…` or a space (when not continuing a command) are shown output;
- a command that runs curl (alone, in a loop or a pipeline) must state its
  expected status in a trailing comment, `# 201`, and every curl it runs must
  answer that status; `# 200, repeat until "status":"ready"` repeats it (up
  to a minute) until the body contains the quoted text, then checks it;
- any other command must exit 0; `NAME=value` lines set shell variables for
  the commands after them; `[VAR=value ...] make run` (re)starts the server
  with that environment on the same data dir.

The server is the real binary on 127.0.0.1 and an ephemeral port, with a
temporary data dir; `localhost:<port>` in a command becomes that address,
`bin/agentd` the binary under test and `/tmp/` a temporary directory.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SKIP_MARK = "<!-- readme-test: skip -->"
EXPECT = re.compile(r"\s#\s*(\d{3})\b(.*)$")
UNTIL = re.compile(r"until\s+(\S.*?)\s*$")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
STATUS_MARK = "__readme_test_status__:"
POLL_SECONDS = 60
COMMAND_SECONDS = 60


class Example:
    def __init__(self, line, text):
        self.line = line  # README line of the command's first line
        self.text = text  # the command as written (continuations joined by \n)
        self.status = None
        self.until = None
        last = text.split("\n")[-1]
        m = EXPECT.search(last)
        if m and is_complete(text[: len(text) - len(last) + m.start()]):
            self.status = int(m.group(1))
            u = UNTIL.search(m.group(2))
            self.until = u.group(1) if u else None
        words = shell_words(text)
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]
        self.program = words[0] if words else ""
        self.words = words
        self.assignment = bool(shell_words(text)) and not words


def shell_words(text):
    try:
        return shlex.split(text, comments=True)
    except ValueError:
        return []


def is_complete(text):
    """A command is complete when its quotes are closed and it does not end in a backslash."""
    if text.rstrip().endswith("\\"):
        return False
    try:
        shlex.split(text, comments=True)
        return True
    except ValueError:
        return False


def is_output(line):
    return line == "" or line[0] in "{[… \t" or line.startswith("event:") or line.startswith("data:")


CURL_LINE = re.compile(r"^\s*(?:\$\s+)?curl\s")


def examples(readme):
    """The runnable commands of the README, in order; ValueError for a curl
    example in a block that would not run."""
    out = []
    lines = readme.split("\n")
    i = 0
    previous = ""
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"^(\s*)```(\w*)\s*$", line)
        if not fence:
            if line.strip():
                previous = line.strip()
            i += 1
            continue
        indent = len(fence.group(1))
        lang = fence.group(2)
        skip = previous == SKIP_MARK
        body_start = i + 1
        i += 1
        while i < len(lines) and not lines[i].lstrip().startswith("```"):
            i += 1
        block = [b[indent:] if not b[:indent].strip() else b.lstrip() for b in lines[body_start:i]]
        i += 1
        previous = ""
        if skip:
            continue
        if lang not in ("sh", "bash"):
            for k, b in enumerate(block):
                if CURL_LINE.match(b):
                    raise ValueError(f"line {body_start + k + 1}: a curl example in a ```{lang} block is not "
                                     f"run; fence it ```sh, or put {SKIP_MARK} before the block")
            continue
        j = 0
        while j < len(block):
            if is_output(block[j]) or block[j].lstrip().startswith("#"):
                j += 1
                continue
            start = j
            text = block[j]
            while not is_complete(text) and j + 1 < len(block):
                j += 1
                text += "\n" + block[j]
            j += 1
            out.append(Example(body_start + start + 1, text))
    return out


class Server:
    def __init__(self, binary, workdir):
        self.binary = binary
        self.data_dir = os.path.join(workdir, "data")
        self.log_path = os.path.join(workdir, "agentd.log")
        self.proc = None
        self.port = None

    def start(self, extra_env):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTD_", "GEMINI_"))}
        env.update(extra_env)
        offset = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--bind", "127.0.0.1", "--data-dir", self.data_dir],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + 20
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
            m = re.search(r'"msg":"listening".*?"port":(\d+)', text)
            if m:
                self.port = int(m.group(1))
            else:
                if self.proc.poll() is not None:
                    raise RuntimeError("agentd exited during start-up:\n" + text)
                time.sleep(0.02)
        if self.port is None:
            raise RuntimeError("agentd did not start listening")

    def stop(self):
        if not self.proc:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc


def substitute(text, server, binary, tmp):
    """One pass, so that a replacement (a binary under /tmp) is never rewritten again."""
    def replace(m):
        if m.group("addr"):
            return f"127.0.0.1:{server.port}"
        if m.group("bin"):
            return binary
        return tmp + "/"
    pattern = (r"(?P<addr>(?:localhost|127\.0\.0\.1):\d+)"
               r"|(?P<bin>(?<![\w/.])bin/agentd\b)"
               r"|(?P<tmp>(?<![\w.])/tmp/)")
    return re.sub(pattern, replace, text)


def run_shell(prelude, command, timeout):
    script = "set -o pipefail\n" + prelude + "\n" + command + "\n"
    return subprocess.run(["bash", "-c", script], capture_output=True, timeout=timeout, text=True,
                          errors="replace")


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = os.path.abspath(sys.argv[1])
    readme_path = sys.argv[2] if len(sys.argv) > 2 else "README.md"
    with open(readme_path, encoding="utf-8") as f:
        try:
            todo = examples(f.read())
        except ValueError as e:
            print(f"readme: {readme_path}:{e}", file=sys.stderr)
            return 1
    workdir = tempfile.mkdtemp(prefix="agentd-readme-")
    tmp = os.path.join(workdir, "tmp")
    os.makedirs(tmp)
    server = Server(binary, workdir)
    assignments = []
    # Each curl reports its status on stderr, which no pipe or loop of the
    # example swallows.
    curl = f"curl() {{ command curl -w '%{{stderr}}\\n{STATUS_MARK}%{{http_code}}\\n' \"$@\"; }}"
    passed = failed = 0
    try:
        server.start({})
        for ex in todo:
            where = f"{readme_path}:{ex.line}"
            if ex.assignment:
                assignments.append(substitute(ex.text, server, binary, tmp))
                continue
            if ex.words[:2] == ["make", "run"]:
                words = shell_words(ex.text)
                env = dict(w.split("=", 1) for w in words[: words.index("make")])
                rc = server.stop()
                if rc != 0:
                    raise RuntimeError(f"{where}: agentd exited {rc} on SIGTERM")
                server.start(env)
                print(f"readme: {where}: restarted agentd ({' '.join(sorted(env)) or 'no settings'})")
                passed += 1
                continue
            if ex.program == "curl" and ex.status is None:
                print(f"readme: {where}: a curl example needs its expected status as a trailing "
                      f"comment (e.g. `# 200`):\n  {ex.text}", file=sys.stderr)
                failed += 1
                break
            prelude = "\n".join(assignments + [curl])
            command = substitute(ex.text, server, binary, tmp)
            deadline = time.monotonic() + POLL_SECONDS
            while True:
                r = run_shell(prelude, command, COMMAND_SECONDS)
                out = r.stdout
                marks = [int(m) for m in re.findall(re.escape(STATUS_MARK) + r"(\d{3})", r.stderr)]
                got = marks[-1] if marks else None
                body = out.strip()
                if not ex.until or ex.until in body or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            problem = None
            if r.returncode != 0:
                problem = f"exit {r.returncode}"
            elif ex.status is None and marks:
                problem = f"it runs curl (answered {marks}) but states no expected status (e.g. `# 200`)"
            elif ex.status is not None and (not marks or any(m != ex.status for m in marks)):
                problem = f"status {marks or 'none'}, the README says {ex.status}"
            elif ex.until and ex.until not in body:
                problem = f"after {POLL_SECONDS} s the body still lacks {ex.until}"
            if problem:
                print(f"readme: {where}: FAILED: {problem}\n  command: {ex.text}\n  output: {body[:800]}\n"
                      f"  stderr: {r.stderr[:400]}", file=sys.stderr)
                failed += 1
                break
            passed += 1
            shown = f"{got}" if ex.status is not None else "exit 0"
            print(f"readme: {where}: {shown}  {ex.text.splitlines()[0][:90]}")
        rc = server.stop()
        if rc != 0 and failed == 0:
            print(f"readme: agentd exited {rc} on SIGTERM", file=sys.stderr)
            failed += 1
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        print(f"readme: {e}", file=sys.stderr)
        failed += 1
    finally:
        server.stop()
        if failed:
            with open(server.log_path, encoding="utf-8", errors="replace") as f:
                print("readme: agentd's log (last lines):\n" + "".join(f.readlines()[-15:]), file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
    if passed == 0 and failed == 0:
        print("readme: no example found", file=sys.stderr)
        failed = 1
    print(f"readme: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
