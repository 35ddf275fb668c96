"""End-to-end: two `lcmcoord serve` instances on one PostgreSQL database (a throw-away
cluster from pg_cluster.py): either answers GET and cancel for any coordination, a cancel
taken by one reaches a decision running on the other, one coordination at a time per VNFC
holds across them, and when the instance deciding is killed (SIGKILL) the other finishes
its coordinations as ABORT once the lease has lapsed.
"""

import unittest

from pg_cluster import PgCluster
from serve_harness import Serve, wait_for


class TwoInstances(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = PgCluster()
        cls.pg.start()

    @classmethod
    def tearDownClass(cls):
        cls.pg.stop()

    def test_two_instances_share_get_cancel_exclusivity_and_take_over_after_a_kill(self):
        common = ("--sync-budget", "0.05", "--lease-ttl", "2")
        a = Serve(*common, "--instance-id", "a", store=self.pg.url)
        b = Serve(*common, "--instance-id", "b", store=self.pg.url)
        with a, b:
            slow = a.post({"vnfcInstanceId": "c1", "sleep": 3600})
            self.assertEqual(slow.status, 202, slow)
            slow_id = slow.headers["location"].rsplit("/", 1)[1]
            on_b = b.url + "/lcmcoord/v1/coordinations/"
            self.assertEqual(b.get(on_b + slow_id).status, 202)
            # The same VNFC through the other instance: refused, naming the one running.
            clash = b.post({"vnfcInstanceId": "c1"})
            self.assertEqual(clash.status, 409, clash)
            self.assertIn(slow_id, clash.json()["detail"])
            # A cancel through b reaches the decision running on a (its next heartbeat).
            waiting = a.post({"vnfcInstanceId": "c2", "wait_cancel": True})
            self.assertEqual(waiting.status, 202, waiting)
            waiting_id = waiting.headers["location"].rsplit("/", 1)[1]
            self.assertEqual(b.cancel(on_b + waiting_id).status, 202)
            done = b.wait_done(on_b + waiting_id, timeout=10)
            self.assertEqual(done.json()["coordinationResult"], "CANCELLED")
            # a dies: b ends a's coordination as ABORT once the lease has lapsed.
            a.kill()
            done = b.wait_done(on_b + slow_id, timeout=15)
            self.assertEqual(done.json()["coordinationResult"], "ABORT")
            self.assertIn("lease", done.json()["error"]["detail"])
            # Its VNFC is free again.
            self.assertEqual(b.post({"vnfcInstanceId": "c1"}).status, 201)

    def test_two_instances_on_one_host_without_instance_ids_leave_each_other_alone(self):
        # Each starts by ending its own instance's RUNNING rows (left by a previous process
        # of the same id): with the host name alone as the default id, the second would end
        # the first's live decision as ABORT.
        common = ("--sync-budget", "0.05")
        with Serve(*common, store=self.pg.url) as a:
            slow = a.post({"vnfcInstanceId": "h1", "sleep": 3600})
            self.assertEqual(slow.status, 202, slow)
            with Serve(*common, store=self.pg.url) as b:
                self.assertEqual(b.post({"vnfcInstanceId": "h2"}).status, 201)
                on_b = b.url + "/lcmcoord/v1/coordinations/"
                self.assertEqual(b.get(on_b + slow.headers["location"].rsplit("/", 1)[1])
                                 .status, 202)
            self.assertEqual(a.get(slow.headers["location"]).status, 202)


if __name__ == "__main__":
    unittest.main()
