#!/usr/bin/env python3
"""Retrieval quality on questions worded unlike the material (issue 10).

For each dataset, starts the real agentd (AGENTD_BIN, default
build/release/agentd) on a temp data dir and an ephemeral loopback port, with no
Gemini key so every answer comes from the local answerer, creates the dataset's
agent, waits until it is ready, and asks it every original prompt and every
paraphrase of tests/data/paraphrases/. A
question is a hit when the answer text equals the answer of the pair it was
written for (whitespace collapsed): the local backend answers with its best
passage's answer, so this is hit@1 of retrieval.

    bench/quality.py                      one table (markdown), all datasets
    bench/quality.py --json               the figures and every miss as JSON
    bench/quality.py --misses 10          also list up to 10 missed paraphrases
    bench/quality.py --language-field     send `language` (en/pt) on create
    bench/quality.py --shared-server      all agents on one server (today's shared
                                          index lets them change each other's scores)
    bench/quality.py -- --workers 2       extra agentd flags after --

stdlib only; loopback only; every wait is bounded.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "data")

# (agent id, dataset file, paraphrase file, language of the material)
DATASETS = [
    ("ml_expert", "ml_expert_dataset.json", "ml_expert.json", "en"),
    ("python_expert", "python_expert_dataset.json", "python_expert.json", "en"),
    ("pt_expert", "pt_expert_dataset.json", "pt_expert.json", "pt"),
]

START_TIMEOUT_S = 15
STOP_TIMEOUT_S = 15


def die(msg):
    print(f"quality: {msg}", file=sys.stderr)
    sys.exit(1)


def norm(s):
    return re.sub(r"\s+", " ", s or "").strip()


class Conn:
    """One keep-alive connection to agentd; reconnects once on a dropped connection."""

    def __init__(self, port, timeout):
        self.port = port
        self.timeout = timeout
        self.c = None

    def request(self, method, path, body=None):
        payload = None if body is None else json.dumps(body).encode()
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                headers = {"Content-Type": "application/json"} if payload is not None else {}
                self.c.request(method, path, body=payload, headers=headers)
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                try:
                    return r.status, json.loads(data) if data else None
                except ValueError:
                    return r.status, {"raw": data.decode("utf-8", "replace")}
            except (http.client.HTTPException, OSError):
                if self.c is not None:
                    self.c.close()
                self.c = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


class Server:
    """agentd on 127.0.0.1:0 with a fresh data dir and no Gemini key or API key."""

    def __init__(self, binary, tmp, extra_args):
        self.tmp = tmp
        self.log_path = os.path.join(tmp, "agentd.log")
        data = os.path.join(tmp, "data")
        os.makedirs(data)
        # No inherited configuration: a GEMINI_API_KEY would switch the backend,
        # an AGENTD_API_KEY would demand auth, AGENTD_CONFIG would load a file.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AGENTD_", "GEMINI_"))}
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--bind", "127.0.0.1", "--data-dir", data,
             "--log-level", "info"] + extra_args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        self.port = self._wait_port()

    def _wait_port(self):
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                die(f"agentd exited during startup (status {self.proc.returncode}):\n{self.log_tail()}")
            with open(self.log_path, "rb") as f:
                for line in f:
                    if b'"msg":"listening"' in line:
                        m = re.search(rb'"port":\s*(\d+)', line)
                        if m and int(m.group(1)):
                            return int(m.group(1))
            time.sleep(0.05)
        self.stop()
        die(f"agentd logged no \"listening\" line within {START_TIMEOUT_S}s:\n{self.log_tail()}")
        return 0

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def load(name):
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return json.load(f)


def create_agent(c, agent_id, dataset, language, language_field):
    body = {"user_id": agent_id, "dataset": dataset["training_data"]}
    if dataset.get("description"):
        body["description"] = dataset["description"]
    if language_field:
        body["language"] = language
    st, data = c.request("POST", "/api/v1/agents", body)
    if st != 201:
        die(f"creating {agent_id}: HTTP {st} {json.dumps(data)}")


def wait_ready(c, agent_id, timeout):
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        st, data = c.request("GET", f"/api/v1/agents/{agent_id}/status")
        if st != 200:
            die(f"status of {agent_id}: HTTP {st} {json.dumps(data)}")
        status = data.get("status")
        if status == "ready":
            return
        if status == "error":
            die(f"{agent_id} failed: {data.get('error')}")
        time.sleep(0.05)
    die(f"{agent_id} not ready after {timeout}s (status {status})")


def ask(c, agent_id, prompt):
    st, data = c.request("POST", f"/api/v1/agents/{agent_id}/inference", {"prompt": prompt})
    if st != 200:
        die(f"inference on {agent_id} ({prompt!r}): HTTP {st} {json.dumps(data)}")
    if data.get("backend") != "local":
        die(f"inference on {agent_id} answered by backend {data.get('backend')!r}, not local")
    return data


def measure(c, agent_id, pairs, questions):
    """questions: [(source_index, text)]. Returns (hits, misses); a miss says what came back."""
    by_answer = {}
    for i, p in enumerate(pairs):
        by_answer.setdefault(norm(p["answer"]), i)
    hits, misses = 0, []
    for idx, q in questions:
        data = ask(c, agent_id, q)
        got = norm(data.get("response"))
        if got == norm(pairs[idx]["answer"]):
            hits += 1
            continue
        returned = by_answer.get(got)
        misses.append({
            "question": q,
            "expected_index": idx,
            "expected_prompt": pairs[idx]["prompt"],
            "returned_index": returned,
            "returned_prompt": pairs[returned]["prompt"] if returned is not None else None,
            "returned_text": None if returned is not None else got[:200],
            "confidence": data.get("confidence"),
        })
    return hits, misses


def rate(hits, n):
    return round(hits / n, 3) if n else None


def run_group(binary, group, a):
    """Starts one server, creates the group's agents, measures them, stops it."""
    tmp = tempfile.mkdtemp(prefix="agentd-quality.")
    server = Server(binary, tmp, a.agentd_args)
    ok = False
    results = []
    try:
        c = Conn(server.port, timeout=60)
        for agent_id, lang, dataset, _ in group:
            create_agent(c, agent_id, dataset, lang, a.language_field)
        for agent_id, _, _, _ in group:
            wait_ready(c, agent_id, a.ready_timeout)
        for agent_id, lang, dataset, paraphrases in group:
            pairs = dataset["training_data"]
            oh, om = measure(c, agent_id, pairs, [(i, p["prompt"]) for i, p in enumerate(pairs)])
            ph, pm = measure(c, agent_id, pairs, [(p["source_index"], p["paraphrase"]) for p in paraphrases])
            results.append({
                "dataset": agent_id, "language": lang, "pairs": len(pairs),
                "originals": {"n": len(pairs), "hits": oh, "hit_at_1": rate(oh, len(pairs)), "misses": om},
                "paraphrases": {"n": len(paraphrases), "hits": ph, "hit_at_1": rate(ph, len(paraphrases)),
                                "misses": pm},
            })
        ok = True
    finally:
        server.stop()
        if ok and not a.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"quality: data dir and log kept in {tmp}", file=sys.stderr)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("AGENTD_BIN") or os.path.join(ROOT, "build/release/agentd"),
                    help="agentd binary (default: $AGENTD_BIN or build/release/agentd)")
    ap.add_argument("--json", action="store_true", help="print the figures and misses as JSON")
    ap.add_argument("--misses", type=int, default=0, metavar="N",
                    help="after the table, list up to N missed paraphrases per dataset")
    ap.add_argument("--language-field", action="store_true",
                    help="send each dataset's language (en/pt) as `language` on create")
    ap.add_argument("--only", action="append", choices=[d[0] for d in DATASETS],
                    help="measure this dataset only (repeatable)")
    ap.add_argument("--shared-server", action="store_true",
                    help="all agents on one server (default: one server per dataset)")
    ap.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for ready")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the data dir and log")
    ap.add_argument("agentd_args", nargs="*", help="extra agentd flags (after --)")
    a = ap.parse_args()

    binary = a.bin if os.path.isabs(a.bin) else os.path.join(os.getcwd(), a.bin)
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        die(f"agentd binary not found or not executable: {binary} "
            "(run 'make build/release/agentd' or set AGENTD_BIN)")
    sets = [d for d in DATASETS if not a.only or d[0] in a.only]

    loaded = []
    for agent_id, dfile, pfile, lang in sets:
        dataset = load(dfile)
        pairs = dataset["training_data"]
        paraphrases = load(os.path.join("paraphrases", pfile))
        for p in paraphrases:
            i = p["source_index"]
            if not 0 <= i < len(pairs) or pairs[i]["prompt"] != p["prompt"]:
                die(f"{pfile}: paraphrase {p['paraphrase']!r} names pair {i} as {p['prompt']!r}, "
                    "which is not that pair's prompt")
        loaded.append((agent_id, lang, dataset, paraphrases))

    # Today's index shares term statistics across agents, so by default each
    # dataset gets a server of its own: its figure then depends on its data alone.
    groups = [loaded] if a.shared_server else [[d] for d in loaded]
    results = []
    for group in groups:
        results += run_group(binary, group, a)

    on = sum(r["originals"]["n"] for r in results)
    oh = sum(r["originals"]["hits"] for r in results)
    pn = sum(r["paraphrases"]["n"] for r in results)
    ph = sum(r["paraphrases"]["hits"] for r in results)
    total = {"originals": {"n": on, "hits": oh, "hit_at_1": rate(oh, on)},
             "paraphrases": {"n": pn, "hits": ph, "hit_at_1": rate(ph, pn)}}

    if a.json:
        print(json.dumps({"binary": binary, "language_field": a.language_field,
                          "shared_server": a.shared_server,
                          "datasets": results, "all": total}, ensure_ascii=False, indent=2))
        return 0

    print("| dataset | pairs | hit@1 originals | paraphrases | hit@1 paraphrases |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        o, p = r["originals"], r["paraphrases"]
        print(f"| {r['dataset']} ({r['language']}) | {r['pairs']} | {o['hit_at_1']:.3f} ({o['hits']}/{o['n']}) "
              f"| {p['n']} | {p['hit_at_1']:.3f} ({p['hits']}/{p['n']}) |")
    o, p = total["originals"], total["paraphrases"]
    print(f"| all | {o['n']} | {o['hit_at_1']:.3f} ({o['hits']}/{o['n']}) "
          f"| {p['n']} | {p['hit_at_1']:.3f} ({p['hits']}/{p['n']}) |")
    if a.misses > 0 and any(r["paraphrases"]["misses"] for r in results):
        print(f"\nMissed paraphrases (at most {a.misses} per dataset):\n")
        for r in results:
            for m in r["paraphrases"]["misses"][:a.misses]:
                got = (f"pair {m['returned_index']} ({m['returned_prompt']})"
                       if m["returned_index"] is not None else repr(m["returned_text"]))
                print(f"- {r['dataset']}: {m['question']!r} -> expected pair {m['expected_index']} "
                      f"({m['expected_prompt']}), got {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
