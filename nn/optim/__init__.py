"""Optimizers and learning-rate schedulers with PyTorch's names, arguments and update formulas.

    opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = nn.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=1000)
    loss.backward(); opt.step(); sched.step(); opt.zero_grad()
"""

from nn.optim import lr_scheduler, swa_utils
from nn.optim.adadelta import Adadelta
from nn.optim.adagrad import Adagrad
from nn.optim.adam import Adam, AdamW
from nn.optim.adamax import Adamax
from nn.optim.lbfgs import LBFGS
from nn.optim.nadam import NAdam
from nn.optim.optimizer import Optimizer
from nn.optim.radam import RAdam
from nn.optim.rmsprop import RMSprop
from nn.optim.sgd import SGD

__all__ = ["LBFGS", "SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "Optimizer", "RAdam", "RMSprop",
           "lr_scheduler", "swa_utils"]
