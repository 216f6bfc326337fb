#!/usr/bin/env python3
"""The README runner's parser (run by make check): every curl example is run
or refused, none is dropped by how its block is fenced."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_examples  # noqa: E402


class Parsing(unittest.TestCase):
    def test_sh_block_commands_and_status(self):
        ex = run_examples.examples("```sh\ncurl -s localhost:8080/health  # 200\n{\"status\":\"ok\",\n \"more\": 1}\n```\n")
        self.assertEqual([(e.program, e.status) for e in ex], [("curl", 200)])

    def test_loop_keeps_its_status(self):
        ex = run_examples.examples("```sh\nfor u in a b; do curl -s localhost:8080/x; done  # 201\n```\n")
        self.assertEqual([(e.program, e.status) for e in ex], [("for", 201)])

    def test_indented_block_in_a_list_is_run(self):
        ex = run_examples.examples("- step\n\n   ```sh\n   curl -s localhost:8080/health  # 200\n   ```\n")
        self.assertEqual([(e.program, e.status) for e in ex], [("curl", 200)])

    def test_curl_in_an_unrun_block_is_refused(self):
        for fence in ("```", "```console", "```shell"):
            with self.subTest(fence=fence), self.assertRaisesRegex(ValueError, "not run"):
                run_examples.examples(f"{fence}\ncurl -s localhost:8080/health\n```\n")

    def test_skip_mark_still_skips(self):
        text = f"{run_examples.SKIP_MARK}\n```\ncurl -s localhost:8080/health\n```\n"
        self.assertEqual(run_examples.examples(text), [])


if __name__ == "__main__":
    unittest.main()
