"""train_common.py — what the training benchmark's parts must agree on: the batch and the
optimizer settings. Only the standard library here (the conductor imports it without torch).

The batch: B sequences of exactly T tokens, [CLS] (101), T-2 random ids, [SEP] (102), and a random
label in {0, 1} per sequence, from splitmix64 — the generator bench_train.c implements, so that
both implementations train on the same batch."""

M64 = (1 << 64) - 1
CLS, SEP = 101, 102
SEED = 0
# torch.optim.AdamW / dbt_adamw_cfg: constant lr, Trainer's decay groups, clipping by global norm.
OPTIM = {"lr": 5e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01, "max_grad_norm": 1.0}


def mix(seed, i):
    z = ((i + 1) * 0x9E3779B97F4A7C15 + seed) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def train_batch(batch, seq, seed=SEED):
    """(ids: B lists of T ints, labels: B ints) — bench_train.c's batch_make."""
    ids, labels = [], []
    for b in range(batch):
        row = [1000 + mix(seed, b * seq + t) % 28000 for t in range(seq)]
        row[0], row[-1] = CLS, SEP
        ids.append(row)
        labels.append(mix(seed, (1 << 40) + b) & 1)
    return ids, labels
