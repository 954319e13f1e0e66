"""One rank of ``tensorlib train`` (the arguments after this script's name), with hooks chosen by environment
variables, and a line per rank after training: "rank R: lr LR, weights DIGEST".

- STALL_VALIDATION=1: every validation loss is 1.0 (a plateau, where ReduceLROnPlateau divides the lr).
- STOP_AT=E,B: a stop is requested (as by Ctrl-C) on rank 0 after batch B of the epoch after E completed ones.
"""

import hashlib
import os
import sys

import numpy as np

from nn import cli, parallel
from nn.train import Trainer

if os.environ.get("STALL_VALIDATION"):
    evaluate = Trainer.evaluate

    def stalled(self, loader, num_classes=None):
        return {**evaluate(self, loader, num_classes), "loss": 1.0}

    Trainer.evaluate = stalled

if os.environ.get("STOP_AT"):
    stop_at = tuple(int(part) for part in os.environ["STOP_AT"].split(","))
    init = Trainer.__init__

    def stopping(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(lambda t: t.request_stop() if parallel.get_rank() == 0 and (t.epoch, t.batch) == stop_at
                          else None)

    Trainer.__init__ = stopping

fit = Trainer.fit


def fit_and_report(self, *args, **kwargs):
    history = fit(self, *args, **kwargs)
    digest = hashlib.sha256()
    for name, value in sorted(self.model.state_dict().items()):
        digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
    print(f"rank {parallel.get_rank()}: lr {self.optimizer.param_groups[0]['lr']:.6g}, weights "
          f"{digest.hexdigest()[:16]}", flush=True)
    return history


Trainer.fit = fit_and_report
sys.exit(cli.main(sys.argv[1:]))
