#!/usr/bin/env python3
"""Parses a Prometheus text exposition (stdin) with the Prometheus client's
own parser and prints it as JSON for tests/e2e/metrics.c:

  {"samples": {"name{a=x,b=y}": value, ...},   labels sorted by name
   "types": {"family": "counter" | "gauge" | "histogram", ...}}

A family is named as its TYPE line names it (a counter keeps its _total).
Exits 1, saying why on stderr, when the parser refuses the text, when a
family lacks HELP or TYPE, or when a label value holds a raw agent path
(/api/v1/agents/ followed by anything but a route pattern's '{').
"""
import json
import re
import sys

from prometheus_client.parser import text_string_to_metric_families


def fail(msg):
    print("parse.py: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    text = sys.stdin.read()
    helps, types = set(), {}
    for line in text.splitlines():
        m = re.match(r"# (HELP|TYPE) (\S+) ?(.*)$", line)
        if not m:
            continue
        if m.group(1) == "HELP":
            helps.add(m.group(2))
        else:
            types[m.group(2)] = m.group(3)
    for name in types:
        if name not in helps:
            fail("family %s has TYPE but no HELP" % name)
    for name in helps:
        if name not in types:
            fail("family %s has HELP but no TYPE" % name)
    samples = {}
    try:
        for family in text_string_to_metric_families(text):
            if not family.documentation:
                fail("family %s has no HELP text" % family.name)
            for s in family.samples:
                for k, v in s.labels.items():
                    if re.search(r"/api/v1/agents/[^{]", v):
                        fail("label %s of %s holds a raw path: %s" % (k, s.name, v))
                labels = ",".join("%s=%s" % (k, s.labels[k]) for k in sorted(s.labels))
                key = "%s{%s}" % (s.name, labels) if labels else s.name
                if key in samples:
                    fail("sample %s appears twice" % key)
                samples[key] = s.value
    except ValueError as e:
        fail("the parser refused the text: %s" % e)
    json.dump({"samples": samples, "types": types}, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
