"""Training: the trainer and the steps of a run, loss, schedulers, validation, resume, the run
directory, TensorBoard, data parallelism.
"""

from nmt.utils.exports import lazy_exports

EXPORTS = {
    "Trainer": "trainer",
    "TrainerConfig": "trainer",
    "run": "experiment",
    "SmoothedCrossEntropy": "loss",
    "ReduceOnPlateau": "schedulers",
    "InverseSqrt": "schedulers",
    "ExponentialDecay": "schedulers",
    "BudgetDecay": "schedulers",
    "validate": "validation",
    "Progress": "checkpointing",
    "RunCheckpoints": "checkpointing",
    "TrainingState": "checkpointing",
    "RunLayout": "run_layout",
    "Board": "board",
    "Window": "train_log",
    "peak_memory_mb": "train_log",
    "Distributed": "distributed",
    "init_distributed": "distributed",
}
__all__ = sorted(EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)
