"""No loss at all: only integer bookkeeping."""
import torch

counts = torch.tensor([1, 2, 3])
print(counts.sum().item())
