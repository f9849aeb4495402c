"""IFT6135 (UdeM, Winter 2022) Assignment 2: an LSTM language model and a Vision Transformer."""
from autograder.assignment import Assignment, Ban, SubmissionFile

_PRIVATE_LAYERS = ("torch.ops", "torch._C", "torch._refs", "torch._decomp", "torch._prims")

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
            names=("torch.nn.LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm",
                   "torch.native_layer_norm", "torch.nn.GroupNorm", "torch.nn.functional.group_norm",
                   "torch.group_norm", "torch.nn.functional.instance_norm", *_PRIVATE_LAYERS),
            runtime_ops=("layer_norm", "group_norm", "instance_norm"),
            reason="LayerNorm must be written by hand (no nn.LayerNorm or anything calling torch.layer_norm)",
        ),
        Ban(
            key="attention",
            file="vit_solution.py",
            scope=("MultiHeadedAttention",),
            names=("torch.nn.MultiheadAttention", "torch.nn.functional.multi_head_attention_forward",
                   "torch.nn.functional.scaled_dot_product_attention", *_PRIVATE_LAYERS),
            runtime_ops=("multi_head_attention_forward", "scaled_dot_product"),
            reason="attention must be written by hand (no nn.MultiheadAttention, "
                   "F.multi_head_attention_forward or F.scaled_dot_product_attention)",
        ),
    ),
)
