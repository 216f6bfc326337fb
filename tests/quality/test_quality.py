#!/usr/bin/env python3
"""Checks the quality benchmark's inputs and its script (issue 10).

The paraphrase sets are what the retrieval-quality figure is measured on, so a
broken file (a pair left without paraphrases, a paraphrase pointing at the wrong
pair, a copy of the prompt) would silently change the figure. With AGENTD_BIN
set, also runs bench/quality.py against that binary on one dataset.

    python3 tests/quality/test_quality.py
    AGENTD_BIN=build/release/agentd python3 tests/quality/test_quality.py
"""
import json
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
SETS = {
    "ml_expert": "ml_expert_dataset.json",
    "python_expert": "python_expert_dataset.json",
    "pt_expert": "pt_expert_dataset.json",
}
# Above this share of common words (of all distinct words in either), a
# paraphrase is too close to its prompt to measure anything.
MAX_WORD_OVERLAP = 0.5


def load(*path):
    with open(os.path.join(DATA, *path), encoding="utf-8") as f:
        return json.load(f)


def words(s):
    return set(re.findall(r"\w+", s.casefold()))


class ParaphraseSets(unittest.TestCase):
    def test_every_pair_has_one_or_two_paraphrases(self):
        for name, dfile in SETS.items():
            pairs = load(dfile)["training_data"]
            paraphrases = load("paraphrases", name + ".json")
            counts = [0] * len(pairs)
            for p in paraphrases:
                self.assertEqual(set(p), {"source_index", "prompt", "paraphrase"}, f"{name}: {p}")
                i = p["source_index"]
                self.assertTrue(isinstance(i, int) and 0 <= i < len(pairs), f"{name}: index {i}")
                counts[i] += 1
            for i, n in enumerate(counts):
                self.assertIn(n, (1, 2), f"{name}: pair {i} has {n} paraphrases")

    def test_prompt_is_the_pairs_prompt(self):
        for name, dfile in SETS.items():
            pairs = load(dfile)["training_data"]
            for p in load("paraphrases", name + ".json"):
                self.assertEqual(p["prompt"], pairs[p["source_index"]]["prompt"], f"{name}: {p}")

    def test_paraphrase_is_worded_unlike_the_prompt(self):
        for name in SETS:
            seen = set()
            for p in load("paraphrases", name + ".json"):
                q = p["paraphrase"]
                self.assertTrue(q.strip(), f"{name}: empty paraphrase")
                self.assertNotIn(q.casefold(), seen, f"{name}: duplicate {q!r}")
                seen.add(q.casefold())
                a, b = words(p["prompt"]), words(q)
                overlap = len(a & b) / len(a | b)
                self.assertLessEqual(overlap, MAX_WORD_OVERLAP,
                                     f"{name}: {q!r} shares {overlap:.2f} of its words with {p['prompt']!r}")


class PortugueseDataset(unittest.TestCase):
    def test_shape(self):
        d = load("pt_expert_dataset.json")
        self.assertEqual(d["user_id"], "pt_expert")
        pairs = d["training_data"]
        self.assertGreaterEqual(len(pairs), 60)
        for p in pairs:
            self.assertEqual(set(p), {"prompt", "answer", "category"}, p)
            for k in p:
                self.assertTrue(isinstance(p[k], str) and p[k].strip(), f"{k} of {p}")
        self.assertIn(len({p["category"] for p in pairs}), (3, 4))
        self.assertEqual(len({p["prompt"] for p in pairs}), len(pairs), "repeated prompt")
        self.assertEqual(len({p["answer"] for p in pairs}), len(pairs), "repeated answer")

    def test_written_with_accents(self):
        pairs = load("pt_expert_dataset.json")["training_data"]
        accented = [p for p in pairs if re.search(r"[áâãàéêíóôõúç]", p["answer"], re.I)]
        self.assertGreater(len(accented), len(pairs) * 0.9)


@unittest.skipUnless(os.environ.get("AGENTD_BIN"), "AGENTD_BIN not set")
class QualityScript(unittest.TestCase):
    def test_reports_hit_at_1_from_the_local_answerer(self):
        out = subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "quality.py"), "--json", "--only", "python_expert"],
            capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(out.returncode, 0, out.stderr)
        r = json.loads(out.stdout)
        self.assertEqual([d["dataset"] for d in r["datasets"]], ["python_expert"])
        d = r["datasets"][0]
        self.assertEqual(d["originals"]["n"], 20)
        self.assertEqual(d["paraphrases"]["n"], len(load("paraphrases", "python_expert.json")))
        for part in ("originals", "paraphrases"):
            f = d[part]
            self.assertEqual(f["hits"] + len(f["misses"]), f["n"])
            self.assertAlmostEqual(f["hit_at_1"], round(f["hits"] / f["n"], 3))
        # The local answerer returns a pair's own answer for its own prompt.
        self.assertGreaterEqual(d["originals"]["hit_at_1"], 0.9)


if __name__ == "__main__":
    unittest.main(verbosity=1)
