# %% [markdown]
# # A2S1: Understanding attention
#
# CSE 447/517, Assignment 2, §1. Fill in the cells marked `TODO`, then download this
# notebook as Python (File > Download > Download .py) and submit `A2S1.py`.
#
# Attention in this notebook is *unscaled*: `softmax(q @ key.T) @ value`. An answer within
# a max absolute error of 0.05 of its target gets full credit.

# %%
import torch
import torch.nn.functional as F
import matplotlib.pyplot as plt

# %% [markdown]
# ## The keys and values
#
# Four keys and four values of dimension 3 (rows k_0..k_3 and v_0..v_3): seeded random
# draws, normalised to unit length and rounded to two decimals. Do not change this cell.

# %%
torch.manual_seed(447)

key = torch.randn(4, 3)
key /= torch.norm(key, dim=1, keepdim=True)
key.round_(decimals=2)

value = torch.randn(4, 3)
value /= torch.norm(value, dim=1, keepdim=True)
value.round_(decimals=2)

print("key:")
print(key)
print("value:")
print(value)

# %%
def attention(query, key, value):
    """Unscaled attention softmax(query @ key.T) @ value: (n, 3), (4, 3), (4, 3) -> (n, 3)."""
    return F.scaled_dot_product_attention(query, key, value, scale=1)


def check_query(query, target, key=key, value=value, output=False):
    """The largest absolute difference between attention(query, key, value) and target.

    With output=True the attention output is printed as well.
    """
    if output:
        print(attention(query, key, value))
    return (target - attention(query, key, value)).abs().max()

# %% [markdown]
# ## 1.2 Selection via attention
#
# ### 1.2.1 A query (shape (1, 3)) that returns v_0

# %%
query121 = None  # TODO
print(check_query(query121, value[0:1], output=True))

# %% [markdown]
# ### 1.2.2 A query matrix (shape (4, 3)) that returns every value: the identity

# %%
query122 = None  # TODO
print(check_query(query122, value, output=True))

# %% [markdown]
# ## 1.3 Averaging via attention
#
# ### 1.3.1 A query (shape (1, 3)) that averages all four values

# %%
query131 = None  # TODO
print(check_query(query131, value.mean(dim=0, keepdim=True), output=True))

# %% [markdown]
# ### 1.3.2 A query (shape (1, 3)) that averages v_0 and v_1

# %%
query132 = None  # TODO
print(check_query(query132, value[0:2].mean(dim=0, keepdim=True), output=True))

# %% [markdown]
# ## 1.4 Interactions within attention
#
# Keep `query132` and rows 0, 1 and 3 of the keys unchanged; change only k_2 (row 2) in a
# modified copy `m_key`.
#
# ### 1.4.1 A new k_2 so that query132 averages v_0, v_1 and v_2

# %%
m_key = None  # TODO: a copy of key with row 2 replaced
print(check_query(query132, value[0:3].mean(dim=0, keepdim=True), key=m_key, output=True))

# %% [markdown]
# ### 1.4.2 A new k_2 of length 1 so that query132 returns v_2

# %%
m_key = None  # TODO: a copy of key with row 2 replaced by a unit vector
print(check_query(query132, value[2:3], key=m_key, output=True))

# %% [markdown]
# ### 1.4.3 Answer in your report: why can changing k_2 change an output that only used the first two tokens?
