"""Numeric precision names, in one place. Each consumer accepts the subset it can honour:

- the text encoder (inference) also runs ``fp16`` on GPUs, and ``auto`` measures bf16 against
  fp32 on the texts being encoded (:mod:`fusionrec.encoders.precision`);
- the cross-encoder picks ``auto`` the same way but trains, and fp16 training would need loss
  scaling, so it stops at bf16;
- a training step (``trainer.precision``) is plain fp32 or bf16 autocast; its ``auto`` is bf16
  on a CUDA device that has it and fp32 elsewhere, with no measuring
  (:mod:`fusionrec.training.precision`).

It imports nothing, so every layer may use it.
"""

ENCODER_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
CROSS_ENCODER_PRECISIONS = ("auto", "fp32", "bf16")
TRAINING_PRECISIONS = ("fp32", "bf16", "auto")
