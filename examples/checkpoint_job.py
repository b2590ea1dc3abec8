"""A preemptible job that checkpoints on SIGTERM and resumes (docs/scheduling.md).

Run it alone to see the contract: ACCELPOOL_CHECKPOINT_DIR=/tmp/ck python examples/checkpoint_job.py 20
then `kill -TERM <pid>` while it runs, and start it again: it resumes from the step it saved.
Under accelpool it also reports its steps (job.report_progress), so `accelpool show` counts them.
"""

from __future__ import annotations

import sys
import time

from accelpool import job


def main(total: int) -> None:
    job.checkpoint_requested()  # installs the SIGTERM handler now
    state = job.load_checkpoint() or {"step": 0}
    print(f"starting at step {state['step']} of {total}", flush=True)
    while state["step"] < total:
        time.sleep(0.5)  # one step of work
        state["step"] += 1
        job.report_progress(state["step"])  # cumulative: resumed attempts go on from the saved step
        if job.checkpoint_requested():
            job.save_checkpoint(state)
            print(f"checkpointed at step {state['step']}", flush=True)
            job.checkpoint_done()  # exits 143: stopped on request, not finished
    job.save_checkpoint(state)
    print("done", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
