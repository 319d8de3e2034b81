import torch, torch.nn as nn

pred = torch.tensor([[2.0, 0.5, -1.0]])   # 로짓(logit)
target = torch.tensor([0])                # 정답 레이블

loss_fn = nn.CrossEntropyLoss()
loss = loss_fn(pred, target)
print("CE Loss:", loss.item())
