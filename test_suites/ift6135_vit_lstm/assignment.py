"""IFT6135 (UdeM, Winter 2022) Assignment 2: an LSTM language model and a Vision Transformer."""
from autograder.assignment import Assignment, Ban, SubmissionFile

_PRIVATE_LAYERS = ("torch.ops", "torch._C", "torch._refs", "torch._decomp", "torch._prims",
                   "torch._higher_order_ops", "torch._inductor", "torch._dynamo")
# LayerNorm's near-exact stand-ins are banned with it: batch norm over the features of a
# transposed input, RMS norm of the centred input, group norm with one group, instance norm.
_NORMS = ("layer_norm", "group_norm", "instance_norm", "batch_norm", "rms_norm")
_NORM_NAMES = ("torch.nn.LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm",
               "torch.nn.GroupNorm", "torch.nn.functional.group_norm", "torch.group_norm", "torch.native_group_norm",
               "torch.nn.InstanceNorm1d", "torch.nn.InstanceNorm2d", "torch.nn.InstanceNorm3d",
               "torch.nn.LazyInstanceNorm1d", "torch.nn.LazyInstanceNorm2d", "torch.nn.LazyInstanceNorm3d",
               "torch.nn.functional.instance_norm", "torch.instance_norm",
               "torch.nn.BatchNorm1d", "torch.nn.BatchNorm2d", "torch.nn.BatchNorm3d", "torch.nn.SyncBatchNorm",
               "torch.nn.LazyBatchNorm1d", "torch.nn.LazyBatchNorm2d", "torch.nn.LazyBatchNorm3d",
               "torch.nn.functional.batch_norm", "torch.batch_norm", "torch.native_batch_norm",
               "torch.nn.RMSNorm", "torch.nn.functional.rms_norm", "torch.rms_norm")
# Attention's: SDPA and its kernels (flash, memory-efficient, cuDNN), the fused MHA op, flex attention.
_ATTENTION = ("scaled_dot", "multi_head_attention", "flash_attention", "efficient_attention", "cudnn_attention",
              "flex_attention")
_ATTENTION_NAMES = ("torch.nn.MultiheadAttention", "torch.nn.functional.multi_head_attention_forward",
                    "torch.nn.functional.scaled_dot_product_attention", "torch._native_multi_head_attention",
                    "torch.nn.attention", "torch.nn.Transformer", "torch.nn.TransformerEncoder",
                    "torch.nn.TransformerEncoderLayer", "torch.nn.TransformerDecoder", "torch.nn.TransformerDecoderLayer")

ASSIGNMENT = Assignment(
    name="ift6135_vit_lstm",
    title="IFT6135 A2: LSTM and Vision Transformer",
    files=(
        SubmissionFile("vit_solution.py", aliases=("vit_solution_template.py",)),
        SubmissionFile("lstm_solution.py", aliases=("lstm_solution_template.py",)),
    ),
    total_points=37,
    bans=(
        Ban(
            key="layer_norm",
            file="vit_solution.py",
            scope=("LayerNorm",),
            names=_NORM_NAMES + _PRIVATE_LAYERS,
            runtime_ops=_NORMS,
            reason="LayerNorm must be written by hand (no nn.LayerNorm or anything calling torch.layer_norm, "
                   "nor batch, group, instance or RMS norm standing in for it)",
        ),
        Ban(
            key="attention",
            file="vit_solution.py",
            scope=("MultiHeadedAttention",),
            names=_ATTENTION_NAMES + _PRIVATE_LAYERS,
            runtime_ops=_ATTENTION,
            reason="attention must be written by hand (no nn.MultiheadAttention, "
                   "F.multi_head_attention_forward or F.scaled_dot_product_attention)",
        ),
    ),
)


# Edits of the reference that are correct work by the course's rules (``verify --mutants`` sets them
# apart, and reports it as a fidelity bug if the suite ever fails one). The course leaves the
# projections' parametrisation free, so which projection feeds queries, keys or values is a naming:
# forward handing (k, q, v) or (q, v, k) to its own apply_attention is multi-head attention with
# the roles of two of its own projections exchanged.
_RELABELLED = "Q/K/V projections relabelled: the parametrisation is free (spec, MultiHeadedAttention.forward)"
ACCEPTED_MUTANTS = {
    ("vit_solution.py", "MultiHeadedAttention.forward", f"self.apply_attention({args})"): _RELABELLED
    for args in ("k, q, v", "q, v, k", "v, k, q", "k, v, q", "v, q, k")
}
