"""argparse options and a main() whose tensors are locals."""
import argparse

import torch
import torch.nn as nn


def train(model: nn.Module, lr: float) -> None:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    inputs = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    targets = torch.tensor([[1.0], [0.0]])
    for _ in range(2):
        opt.zero_grad()
        scores = model(inputs)
        loss = nn.functional.mse_loss(scores, targets)
        loss.backward()
        opt.step()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--hidden", type=int, default=3)
    args = parser.parse_args()
    net = nn.Sequential(nn.Linear(2, args.hidden), nn.Sigmoid(), nn.Linear(args.hidden, 1))
    train(net, args.lr)


if __name__ == "__main__":
    main()
