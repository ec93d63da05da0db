"""Group-relative policy optimisation (GRPO) of a sentiment head, and the features it reads.

The policy is the adapter's sentiment head, a distribution over bearish/neutral/bullish. For
each sample a group of G actions is drawn; an action's reward is read from a payoff tensor the
caller supplies (what the action would have earned on that sample); advantages are the rewards
standardised within the group (no value model); the loss is -advantage * log-probability plus
a KL penalty to the starting head. The loop knows nothing of markets: `quant.text.reward` turns
realised returns into the payoff.
"""

from __future__ import annotations

import copy
import time

import polars as pl
import torch
import torch.nn.functional as F

from llm.errors import ModelError
from llm.infer.prefix import SharedPrefix
from llm.model import adapter as adapters
from llm.model.loaded import LoadedModel
from llm.settings import GrpoSettings, Log
from llm.train.finetune import FinetuneSettings, batches, pooled, prompt_prefix


def features(loaded: LoadedModel, texts: list[str], log: Log, batch_size: int = 64
             ) -> torch.Tensor:
    """Pooled hidden states at the head's layer, in the score prompt (shared prefix)."""
    if loaded.head is None:
        raise ModelError(f"{loaded.model_id} has no sentiment head: load a model with an "
                         "adapter (e.g. default) for the reward stage")
    runner = SharedPrefix(loaded.model, prompt_prefix(loaded.tokenizer))
    data = batches(loaded.tokenizer, pl.DataFrame({"text": texts}),
                   FinetuneSettings(batch_size=batch_size))
    out = torch.zeros(len(texts), loaded.config.hidden_size)
    began = time.perf_counter()
    with torch.no_grad():
        for n, batch in enumerate(data, 1):
            hidden = runner.run(runner.embed(batch.ids), 0, loaded.head_layer)
            out[batch.rows] = pooled(hidden, batch.mask).float()
            if n % 20 == 0:
                log(f"features {n}/{len(data)} batches, "
                    f"{n * batch_size / (time.perf_counter() - began):.1f} posts/s")
    return out


# A group's spread is floored so near-equal rewards do not become huge advantages: the head's
# rewards are returns (continuous, small spreads), reason mode's are a few discrete scores.
HEAD_EPS, REASON_EPS = 1e-6, 1e-4


def group_advantages(rewards: torch.Tensor, eps: float = REASON_EPS) -> torch.Tensor:
    """(samples, group) rewards -> one advantage per sampled action, row by row: the reward
    standardised within its group (0 where the group's rewards are all equal: nothing to
    learn from it). The core both GRPO loops share: the head's here, reason mode's in
    `llm.train.reason_train`."""
    centred = rewards - rewards.mean(1, keepdim=True)
    return (centred / (rewards.std(1, keepdim=True) + eps)).reshape(-1)


def grpo(head: adapters.SentimentHead, x: torch.Tensor, payoff: torch.Tensor,
         settings: GrpoSettings, log: Log) -> tuple[adapters.SentimentHead, list[dict]]:
    """Optimise a copy of `head` on features `x` (N, D) where `payoff` (N, actions) is the
    reward of each action on each sample; returns the policy and a log."""
    generator = torch.Generator().manual_seed(settings.seed)
    policy = copy.deepcopy(head).train()
    for p in policy.parameters():
        p.requires_grad_(True)
    with torch.no_grad():
        reference = head(x).log_softmax(-1)
    optimiser = torch.optim.AdamW(policy.parameters(), lr=settings.lr)
    history = []
    for step in range(1, settings.steps + 1):
        rows = torch.randint(len(x), (settings.batch_size,), generator=generator)
        logp = policy(x[rows]).log_softmax(-1)                               # (B, 3)
        actions = torch.multinomial(logp.exp().detach(), settings.group, replacement=True,
                                    generator=generator)                      # (B, G)
        rewards = payoff[rows].gather(1, actions)                            # (B, G)
        advantage = group_advantages(rewards, HEAD_EPS).view_as(rewards)
        chosen = logp.gather(1, actions)
        kl = F.kl_div(reference[rows], logp, log_target=True, reduction="batchmean")
        loss = -(advantage * chosen).mean() + settings.kl * kl
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 50 == 0 or step == settings.steps:
            entry = {"step": step, "reward": round(float(rewards.mean()), 5),
                     "kl": round(float(kl.detach()), 5)}
            history.append(entry)
            log(f"grpo step {step}: mean reward {entry['reward']:+.4f}, KL {entry['kl']:.4f}")
    return policy.eval(), history
