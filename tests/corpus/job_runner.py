"""A small batch-job runner with cancellation.

Every job runs its steps in the calling thread; a watcher thread per job waits on the job's
cancellation queue so that an operator can stop a long job from the admin console.
"""

import hashlib
import queue
import random
import threading

JOBS = 400
STEPS = 210


class Job:
    def __init__(self, job_id, seed):
        self.job_id = job_id
        self.seed = seed
        self.cancel_requests = queue.Queue()
        self.cancelled = False

    def _await_cancel(self):
        reason = self.cancel_requests.get()
        self.cancelled = True
        print(f"job {self.job_id} cancelled: {reason}")

    def start_watcher(self):
        name = f"watch-{self.job_id}"
        threading.Thread(target=self._await_cancel, name=name, daemon=True).start()

    def run(self):
        self.start_watcher()
        digest = hashlib.sha256(self.seed)
        rng = random.Random(self.job_id)
        for _ in range(STEPS):
            if self.cancelled:
                return None
            chunk = bytes(rng.getrandbits(8) for _ in range(512))
            digest.update(chunk)
        return digest.hexdigest()


def main():
    results = {}
    for job_id in range(JOBS):
        job = Job(job_id, f"job-{job_id}".encode())
        results[job_id] = job.run()
    done = sum(1 for r in results.values() if r is not None)
    print(f"ran {done} of {JOBS} jobs")


if __name__ == "__main__":
    main()
