import torch

from llm.model import adapter as adapters
from llm.train.grpo import GrpoSettings, grpo


def test_grpo_moves_the_policy_toward_the_rewarded_position():
    torch.manual_seed(0)
    head = adapters.SentimentHead(16)
    x = torch.randn(512, 16)
    returns = x[:, 0].sign() * 0.01  # the sign of feature 0 says where the stock goes
    payoff = torch.tensor([-1.0, 0.0, 1.0]) * returns.unsqueeze(1)  # (N, actions)
    settings = GrpoSettings(steps=200, batch_size=64, lr=1e-2, kl=0.01)
    policy, history = grpo(head, x, payoff, settings, log=lambda _: None)
    with torch.no_grad():
        before = head(x).softmax(-1)
        after = policy(x).softmax(-1)

    def agreement(p):
        return float(((p[:, 2] - p[:, 0]) * x[:, 0].sign()).mean())
    assert agreement(after) > agreement(before) + 0.2
    assert history and history[-1]["step"] == 200
