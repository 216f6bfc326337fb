#!/usr/bin/env python3
"""Load driver for the agentd bench scenarios (loopback only, every loop bounded).

Subcommands (all print one JSON object on stdout with their figures):

  gentext  --bytes N [--seed S]            deterministic English-like text to stdout
                                           (raw text, not JSON; no trailing newline)
  passages --in FILE --sql OUT [--size 600] split a text file into ~600-byte passages
                                           and write an SQL script that builds an FTS5
                                           index over them in one transaction
  create   --port P --count N [--prefix ID] [--bytes B | --text-file F | --dataset-file F]
           [--concurrency C] [--seed S]     create N agents as fast as possible
           [--wait-ready [--timeout S]]    then wait until these N are ready (agents
                                           stored before the run are not counted)
  wait     --port P --count N [--timeout S] poll the list route until N agents are
                                           ready (or in error); reports the time
  pipeline --port P --text-file F [--user ID] [--timeout S]
                                           POST one agent, poll its status until ready,
                                           report POST->ready and per-stage durations
  get      --port P --path /health --requests N [--concurrency C]
                                           GET the same path N times (driver ceiling,
                                           status reads)
  infer    --port P --agent ID --requests N [--prompts text|python | --prompt-file F]
           [--concurrency C] [--warmup W] [--rotate R]
                                           POST inference requests (prompts rotating;
                                           '{i}' in ID rotates over R agents); reports
                                           per-request latency percentiles
  ready    --port P --count K --bytes B [--prefix ID] [--seed S] [--interval S]
                                           create K agents one after another, each from B
                                           bytes of generated text (seed S+i), and time
                                           each one's POST -> ready; reports the median

create, get and infer take a list of ports, --port P1,P2 (replicas of one
database): the connections are spread over them in turn; the other reads
(the list route, status polls) go to the first.
"""
import argparse
import http.client
import json
import random
import statistics
import sys
import threading
import time

WORDS = """
the of and to in is that for it as was with be by on not he this are or his from at
which but have an they you were their one all we can her has there been if more when
will would who so no she other its may these about into than them only some could
time new two also then any first like now over such our what most after very made
well years many must before see where through back much way should because each
just those people how too little state good world work still between own here both
life being under never day same another know while last might us great old year off
come since against go came right used take three himself few house use during
without again place around however home small found thought went say part once
general high upon school every don't does got united left number course war until
always away something fact though water less public put think almost hand enough far
took head yet government system better set told nothing night end why called didn't
eyes find going look asked later knew point next program city business give group
toward young let room president side social given present several order national
possible rather second face per among form important often things looked early white
case john become large big need four within felt along children saw best church ever
least power development light thought family interest want members mind country area
others done turned although open god service problem certain kind different thus
began door help means sense whole matter perhaps itself york times law human line
above name example action company hands local show whether five history gave today
either act feet across taken past quite anything seen having death experience body
word half really week field money car words already information tell together college
shall sometimes free model data server request agent training passage index query
answer python function memory thread network storage engine latency response client
library module compiler kernel process signal buffer socket parser token language
pipeline stage worker queue version deploy evaluate retrieve score ranking document
""".split()

# Fixed prompts for the inference subcommand. "text" uses gen_text's vocabulary, so
# every prompt matches passages of a generated-text agent; "python" is the set of
# bench/wrk/inference.lua, for the python_expert dataset.
PROMPTS = {
    "text": [
        "How does the server index a query for each agent?",
        "What is the latency of the storage engine under load?",
        "Which training data does the pipeline evaluate first?",
        "Explain the ranking score of a passage in the document",
        "How many people in the city work for the government?",
        "What did the president tell the school about the war?",
        "Where is the house of the family near the water?",
        "Why does the kernel process a signal before the socket buffer?",
    ],
    "python": [
        "How do I create a REST API with Flask?",
        "What is the difference between a list and a tuple in Python?",
        "How should I handle exceptions and errors?",
        "Explain decorators with an example",
        "How can I make database queries faster?",
        "What is the best way to test my code?",
    ],
}


def gen_text(nbytes, seed):
    """Sentences of 6..22 words drawn from WORDS with a Zipf-like bias, 3..7 sentences
    per paragraph, deterministic for (nbytes, seed). Exactly nbytes bytes (ASCII)."""
    rng = random.Random(seed)
    n = len(WORDS)
    # Zipf-ish weights: common words first in the list.
    weights = [1.0 / (i + 8) for i in range(n)]
    cum = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    out = []
    size = 0
    while size < nbytes:
        nsent = rng.randint(3, 7)
        para = []
        for _ in range(nsent):
            k = rng.randint(6, 22)
            ws = rng.choices(WORDS, cum_weights=cum, k=k)
            if rng.random() < 0.3:
                ws[rng.randrange(k)] = str(rng.randint(2, 2099))
            s = " ".join(ws)
            s = s[0].upper() + s[1:]
            if rng.random() < 0.25 and k > 8:
                cut = rng.randint(3, k - 3)
                s = " ".join(s.split(" ")[:cut]) + ", " + " ".join(s.split(" ")[cut:])
            s += rng.choice(".....?!")
            para.append(s)
        p = " ".join(para) + "\n\n"
        out.append(p)
        size += len(p)
    return "".join(out)[:nbytes]


def split_passages(text, size):
    """Sentence-aware split into passages of about `size` bytes."""
    passages = []
    cur = []
    cur_len = 0
    for para in text.split("\n\n"):
        for sent in para.replace("? ", "?\x00").replace("! ", "!\x00").replace(". ", ".\x00").split("\x00"):
            sent = sent.strip()
            if not sent:
                continue
            if cur_len + len(sent) + 1 > size and cur:
                passages.append(" ".join(cur))
                cur, cur_len = [], 0
            cur.append(sent)
            cur_len += len(sent) + 1
    if cur:
        passages.append(" ".join(cur))
    return passages


class Conn:
    """One keep-alive connection; reconnects once on a dropped connection."""

    def __init__(self, port, timeout=60):
        self.port = port
        self.timeout = timeout
        self.c = None

    def request(self, method, path, body=None):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                data = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.c.close()
                    self.c = None
                return r.status, data
            except (http.client.HTTPException, ConnectionError, OSError):
                if self.c is not None:
                    self.c.close()
                self.c = None
                if attempt:
                    raise
        raise RuntimeError("unreachable")


def port_list(text):
    """--port: one port, or several separated by commas (replicas)."""
    ports = [int(p) for p in text.split(",") if p]
    if not ports or any(p <= 0 or p > 65535 for p in ports):
        raise argparse.ArgumentTypeError(f"not a port or list of ports: {text!r}")
    return ports


def run_parallel(n, concurrency, ports, job):
    """Runs job(conn, i) for i in 0..n-1 over `concurrency` threads, thread k
    connected to ports[k % len(ports)]; returns (elapsed seconds, list of
    statuses)."""
    statuses = [0] * n
    nxt = [0]
    lock = threading.Lock()

    def worker(port):
        c = Conn(port)
        while True:
            with lock:
                i = nxt[0]
                if i >= n:
                    return
                nxt[0] += 1
            try:
                statuses[i] = job(c, i)
            except Exception as exc:  # noqa: BLE001 - counted as a failure
                print(f"driver: request {i} failed: {exc}", file=sys.stderr)
                statuses[i] = -1

    threads = [threading.Thread(target=worker, args=(ports[k % len(ports)],), daemon=True)
               for k in range(concurrency)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - t0, statuses


def cmd_gentext(a):
    sys.stdout.write(gen_text(a.bytes, a.seed))


def cmd_passages(a):
    with open(a.input, encoding="utf-8") as f:
        text = f.read()
    ps = split_passages(text, a.size)
    with open(a.sql, "w", encoding="utf-8") as f:
        f.write("PRAGMA journal_mode=WAL;\n")
        f.write("CREATE VIRTUAL TABLE t USING fts5(body, tokenize='unicode61 remove_diacritics 2');\n")
        f.write("BEGIN;\n")
        for p in ps:
            f.write("INSERT INTO t(body) VALUES('" + p.replace("'", "''") + "');\n")
        f.write("COMMIT;\n")
    sizes = sorted(len(p) for p in ps)
    print(json.dumps({"passages": len(ps), "median_bytes": sizes[len(sizes) // 2], "max_bytes": sizes[-1]}))


def cmd_create(a):
    if a.dataset_file:
        with open(a.dataset_file, encoding="utf-8") as f:
            ds = json.load(f)
        ds = ds.get("training_data", ds) if isinstance(ds, dict) else ds
        bodies = lambda i: json.dumps({"user_id": f"{a.prefix}{i:05d}", "dataset": ds})  # noqa: E731
    elif a.text_file:
        with open(a.text_file, encoding="utf-8") as f:
            text = f.read()
        bodies = lambda i: json.dumps({"user_id": f"{a.prefix}{i:05d}", "training_data": text})  # noqa: E731
    else:
        # Pre-generate every body so the timed loop only sends.
        pre = [json.dumps({"user_id": f"{a.prefix}{i:05d}",
                           "training_data": gen_text(a.bytes, a.seed + i)}) for i in range(a.count)]
        bodies = lambda i: pre[i]  # noqa: E731
    payload = [bodies(i).encode() for i in range(a.count)]

    def job(c, i):
        st, data = c.request("POST", "/api/v1/agents", payload[i])
        if st != 201:
            print(f"driver: create {i}: HTTP {st}: {data[:200]!r}", file=sys.stderr)
        return st

    # Agents already stored (a neighbour created before the timed run) are counted
    # here and subtracted, so --wait-ready waits for this run's agents only.
    base_ready = base_err = 0
    if a.wait_ready:
        c0 = Conn(a.port)
        base_ready, base_err = list_total(c0, "ready"), list_total(c0, "error")
    t0 = time.monotonic()
    elapsed, sts = run_parallel(a.count, a.concurrency, a.ports, job)
    ok = sum(1 for s in sts if s == 201)
    res = {"created": ok, "failed": a.count - ok, "seconds": round(elapsed, 3),
           "per_s": round(ok / elapsed, 1) if elapsed > 0 else None,
           "body_bytes": len(payload[0]) if payload else 0}
    if a.wait_ready and ok == a.count:
        # Time from the first POST until every agent is ready (or in error).
        c = Conn(a.port)
        deadline = t0 + a.timeout
        ready = err = 0
        while time.monotonic() < deadline:
            ready = list_total(c, "ready") - base_ready
            err = list_total(c, "error") - base_err
            if ready + err >= a.count:
                break
            time.sleep(0.02)
        total = time.monotonic() - t0
        res.update({"ready": ready, "error": err, "already_stored": base_ready + base_err,
                    "all_ready_s": round(total, 3),
                    "trained_per_s": round(ready / total, 1), "timed_out": ready + err < a.count})
        if ready != a.count:
            print(json.dumps(res))
            sys.exit(1)
    print(json.dumps(res))
    if ok != a.count:
        sys.exit(1)


def list_total(c, status):
    st, data = c.request("GET", f"/api/v1/agents?status={status}&limit=1")
    if st != 200:
        raise RuntimeError(f"list {status}: HTTP {st}")
    return int(json.loads(data)["total_users"])


def cmd_wait(a):
    c = Conn(a.port)
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    ready = err = 0
    while time.monotonic() < deadline:
        ready = list_total(c, "ready")
        err = list_total(c, "error")
        if ready + err >= a.count:
            break
        time.sleep(a.interval)
    elapsed = time.monotonic() - t0
    print(json.dumps({"ready": ready, "error": err, "seconds": round(elapsed, 3),
                      "timed_out": ready + err < a.count}))
    if ready < a.count:
        sys.exit(1)


def post_and_wait(c, user, body, timeout, interval):
    """POSTs one agent and polls its status every `interval` s until ready or error
    (or `timeout` s after the POST started). Returns (status, POST seconds,
    POST start -> final status seconds); exits on a non-201 answer."""
    t0 = time.monotonic()
    st, data = c.request("POST", "/api/v1/agents", body)
    t_post = time.monotonic() - t0
    if st != 201:
        print(f"driver: create {user}: HTTP {st}: {data[:300]!r}", file=sys.stderr)
        sys.exit(1)
    status = None
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        st, data = c.request("GET", f"/api/v1/agents/{user}/status")
        status = json.loads(data).get("status")
        if status in ("ready", "error"):
            break
        time.sleep(interval)
    return status, t_post, time.monotonic() - t0


def cmd_pipeline(a):
    with open(a.text_file, encoding="utf-8") as f:
        text = f.read()
    body = json.dumps({"user_id": a.user, "training_data": text}).encode()
    c = Conn(a.port, timeout=a.timeout)
    status, t_post, t_ready = post_and_wait(c, a.user, body, a.timeout, 0.01)
    st, data = c.request("GET", f"/api/v1/agents/{a.user}/pipeline")
    stages = {s["name"]: s.get("duration_ms") for s in json.loads(data).get("stages", [])}
    summaries = {s["name"]: s.get("summary") for s in json.loads(data).get("stages", [])}
    print(json.dumps({"status": status, "post_s": round(t_post, 3), "ready_s": round(t_ready, 3),
                      "text_bytes": len(text.encode()), "body_bytes": len(body),
                      "stages_ms": stages, "summaries": summaries}))
    if status != "ready":
        sys.exit(1)


def cmd_get(a):
    paths = [a.path.replace("{i}", f"{i % a.rotate:05d}") for i in range(a.requests)]

    def job(c, i):
        st, _ = c.request("GET", paths[i])
        return st

    elapsed, sts = run_parallel(a.requests, a.concurrency, a.ports, job)
    ok = sum(1 for s in sts if s == 200)
    print(json.dumps({"ok": ok, "failed": a.requests - ok, "seconds": round(elapsed, 3),
                      "per_s": round(ok / elapsed, 1) if elapsed > 0 else None}))
    if ok != a.requests:
        sys.exit(1)


def percentile(sorted_xs, q):
    """The q-th percentile (0..100) of sorted_xs, nearest rank."""
    if not sorted_xs:
        return None
    k = max(0, min(len(sorted_xs) - 1, -(-len(sorted_xs) * q // 100) - 1))
    return sorted_xs[int(k)]


def cmd_infer(a):
    if a.prompt_file:
        with open(a.prompt_file, encoding="utf-8") as f:
            prompts = [line.strip() for line in f if line.strip()]
    else:
        prompts = PROMPTS[a.prompts]
    total = a.warmup + a.requests
    paths = [f"/api/v1/agents/{a.agent.replace('{i}', f'{i % a.rotate:05d}')}/inference"
             for i in range(total)]
    bodies = [json.dumps({"prompt": prompts[i % len(prompts)]}).encode() for i in range(total)]
    lat = [0.0] * total
    backends = set()
    lock = threading.Lock()

    def job(c, i):
        t = time.perf_counter()
        st, data = c.request("POST", paths[i], bodies[i])
        lat[i] = time.perf_counter() - t
        if st != 200:
            print(f"driver: inference {i}: HTTP {st}: {data[:200]!r}", file=sys.stderr)
        else:
            with lock:
                backends.add(json.loads(data).get("backend"))
        return st

    if a.warmup:
        _, wsts = run_parallel(a.warmup, a.concurrency, a.ports, job)
        if any(s != 200 for s in wsts):
            sys.exit(1)
    # The timed part re-runs job over the indexes after the warm-up.
    offset = a.warmup
    elapsed, sts = run_parallel(a.requests, a.concurrency, a.ports, lambda c, i: job(c, offset + i))
    ok = sum(1 for s in sts if s == 200)
    ms = sorted(x * 1000 for x in lat[offset:])
    res = {"ok": ok, "failed": a.requests - ok, "seconds": round(elapsed, 3),
           "per_s": round(ok / elapsed, 1) if elapsed > 0 else None,
           "p50_ms": round(statistics.median(ms), 3) if ms else None,
           "p90_ms": round(percentile(ms, 90), 3) if ms else None,
           "p99_ms": round(percentile(ms, 99), 3) if ms else None,
           "mean_ms": round(statistics.fmean(ms), 3) if ms else None,
           "prompts": len(prompts), "backends": sorted(b for b in backends if b)}
    print(json.dumps(res))
    if ok != a.requests:
        sys.exit(1)


def cmd_ready(a):
    c = Conn(a.port, timeout=a.timeout)
    times, posts = [], []
    for i in range(a.count):
        user = f"{a.prefix}{i:05d}"
        body = json.dumps({"user_id": user, "training_data": gen_text(a.bytes, a.seed + i)}).encode()
        status, t_post, t_ready = post_and_wait(c, user, body, a.timeout, a.interval)
        if status != "ready":
            print(json.dumps({"user": user, "status": status, "seconds": round(t_ready, 3)}))
            sys.exit(1)
        times.append(t_ready)
        posts.append(t_post)
    print(json.dumps({"count": a.count, "bytes": a.bytes,
                      "median_ready_s": round(statistics.median(times), 4),
                      "median_post_s": round(statistics.median(posts), 4),
                      "ready_s": [round(t, 4) for t in times]}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gentext")
    g.add_argument("--bytes", type=int, required=True)
    g.add_argument("--seed", type=int, default=1)
    g = sub.add_parser("passages")
    g.add_argument("--in", dest="input", required=True)
    g.add_argument("--sql", required=True)
    g.add_argument("--size", type=int, default=600)
    g = sub.add_parser("create")
    g.add_argument("--port", type=port_list, required=True, help="a port, or P1,P2,... (replicas)")
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--prefix", default="agent-")
    g.add_argument("--bytes", type=int, default=200)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--text-file")
    g.add_argument("--dataset-file")
    g.add_argument("--concurrency", type=int, default=8)
    g.add_argument("--wait-ready", action="store_true",
                   help="then poll until all are ready; report first POST -> all ready")
    g.add_argument("--timeout", type=float, default=110)
    g = sub.add_parser("wait")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--timeout", type=float, default=120)
    g.add_argument("--interval", type=float, default=0.05)
    g = sub.add_parser("pipeline")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--text-file", required=True)
    g.add_argument("--user", default="big-agent")
    g.add_argument("--timeout", type=float, default=120)
    g = sub.add_parser("get")
    g.add_argument("--port", type=port_list, required=True, help="a port, or P1,P2,... (replicas)")
    g.add_argument("--path", required=True, help="'{i}' is replaced by i mod --rotate, 5 digits")
    g.add_argument("--rotate", type=int, default=1)
    g.add_argument("--requests", type=int, required=True)
    g.add_argument("--concurrency", type=int, default=8)
    g = sub.add_parser("infer")
    g.add_argument("--port", type=port_list, required=True, help="a port, or P1,P2,... (replicas)")
    g.add_argument("--agent", required=True, help="'{i}' is replaced by i mod --rotate, 5 digits")
    g.add_argument("--rotate", type=int, default=1)
    g.add_argument("--requests", type=int, required=True)
    g.add_argument("--warmup", type=int, default=0, help="requests sent first and not counted")
    g.add_argument("--concurrency", type=int, default=1,
                   help="1 (default): sequential requests, latency without queueing")
    g.add_argument("--prompts", choices=sorted(PROMPTS), default="text")
    g.add_argument("--prompt-file", help="one prompt per line (overrides --prompts)")
    g = sub.add_parser("ready")
    g.add_argument("--port", type=int, required=True)
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--prefix", default="new-")
    g.add_argument("--bytes", type=int, default=20480)
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--interval", type=float, default=0.005, help="status poll interval, s")
    g.add_argument("--timeout", type=float, default=120, help="per agent, s")
    a = p.parse_args()
    if isinstance(getattr(a, "port", None), list):
        a.ports, a.port = a.port, a.port[0]
    {"gentext": cmd_gentext, "passages": cmd_passages, "create": cmd_create, "wait": cmd_wait,
     "pipeline": cmd_pipeline, "get": cmd_get, "infer": cmd_infer, "ready": cmd_ready}[a.cmd](a)


if __name__ == "__main__":
    main()
