# %% [markdown]
# # A2S1: Understanding attention
#
# CSE 447/517, Assignment 2, §1. Fill in the cells marked `TODO`, then download this
# notebook as Python (File > Download > Download .py) and submit `A2S1.py`.
#
# Attention in this notebook is *unscaled*: `softmax(q @ K.T) @ V`. An answer within a
# max absolute error of 0.05 of its target gets full credit.

# %%
!pip install -q torch numpy

# %%
import torch
import torch.nn.functional as F

torch.manual_seed(447)

# %% [markdown]
# ## The keys and values
#
# Rows are k_0..k_3 and v_0..v_3 (d = 3, n = 4). Do not change them.

# %%
K = torch.tensor([
    [0.47, 0.65, 0.60],
    [0.64, 0.50, -0.59],
    [-0.03, -0.48, -0.88],
    [0.43, -0.83, 0.35],
])
V = torch.tensor([
    [-0.07, -0.88, 0.47],
    [0.37, -0.93, -0.07],
    [-0.25, -0.75, 0.61],
    [0.94, 0.20, 0.28],
])

# %%
def check_query(query, K, V, target):
    """Print the largest absolute difference between attention(query, K, V) and target."""
    out = F.scaled_dot_product_attention(query, K, V, scale=1)
    error = (out - target).abs().max().item()
    print(f"max abs error: {error:.6f}", "(ok)" if error <= 0.05 else "(too large)")
    return error

# %% [markdown]
# ## 1.2 Selection via attention
#
# ### 1.2.1 A query (shape (1, 3)) that returns v_0

# %%
query121 = None  # TODO
check_query(query121, K, V, V[0:1])

# %% [markdown]
# ### 1.2.2 A query matrix (shape (4, 3)) that returns every value: the identity

# %%
query122 = None  # TODO
check_query(query122, K, V, V)

# %% [markdown]
# ## 1.3 Averaging via attention
#
# ### 1.3.1 A query (shape (1, 3)) that averages all four values

# %%
query131 = None  # TODO
check_query(query131, K, V, V.mean(dim=0, keepdim=True))

# %% [markdown]
# ### 1.3.2 A query (shape (1, 3)) that averages v_0 and v_1

# %%
query132 = None  # TODO
check_query(query132, K, V, V[0:2].mean(dim=0, keepdim=True))

# %% [markdown]
# ## 1.4 Interactions within attention
#
# Keep `query132` and rows 0, 1 and 3 of K unchanged; change only k_2 (row 2).
#
# ### 1.4.1 A new k_2 so that query132 averages v_0, v_1 and v_2

# %%
m_key = None  # TODO: a copy of K with row 2 replaced
check_query(query132, m_key, V, V[0:3].mean(dim=0, keepdim=True))

# %% [markdown]
# ### 1.4.2 A new k_2 of length 1 so that query132 returns v_2

# %%
m_key = None  # TODO: a copy of K with row 2 replaced by a unit vector
check_query(query132, m_key, V, V[2:3])

# %% [markdown]
# ### 1.4.3 Answer in your report: why can changing k_2 change an output that only used the first two tokens?
