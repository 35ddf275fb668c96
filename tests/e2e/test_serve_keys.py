"""End-to-end: the exclusive keys of `lcmcoord serve` (docs/serve.md) stay exact when an id
holds a '/': a VNFC id "a/b" is not the VNFC "a", and an instance id "I/a" is neither the
instance "I" nor its VNFC "a". The server's in-memory check runs here (one serve instance);
the store's check across serve instances is in tests/unit/test_serve_store.c.
"""

import unittest

from serve_harness import Serve


class SlashInIds(unittest.TestCase):
    def test_a_slash_in_an_id_neither_clashes_falsely_nor_forges_a_vnfc(self):
        with Serve("--sync-budget", "0.05") as s:
            first = s.post({"vnfcInstanceId": "a/b", "sleep": 60}, vnfInstanceId="I")
            self.assertEqual(first.status, 202, first)
            first_id = first.headers["location"].rsplit("/", 1)[1]
            vnfc_a = s.post({"vnfcInstanceId": "a"}, vnfInstanceId="I")
            self.assertEqual(vnfc_a.status, 201, vnfc_a)
            forged = s.post({}, vnfInstanceId="I/a")  # a whole instance of its own
            self.assertEqual(forged.status, 201, forged)
            same = s.post({"vnfcInstanceId": "a/b"}, vnfInstanceId="I")
            self.assertEqual(same.status, 409, same)
            self.assertIn(first_id, same.json()["detail"])
            whole = s.post({}, vnfInstanceId="I")
            self.assertEqual(whole.status, 409, whole)


if __name__ == "__main__":
    unittest.main()
