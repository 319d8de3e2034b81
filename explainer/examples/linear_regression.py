import torch, torch.nn as nn, torch.optim as optim

# 모델: y = wx + b
model = nn.Linear(1, 1)

criterion = nn.MSELoss()
optimizer = optim.SGD(model.parameters(), lr=0.05)

x = torch.tensor([[1.0], [2.0], [3.0]])
y = torch.tensor([[3.0], [6.0], [9.0]])  # y = 3x

for epoch in range(200):
    pred = model(x)
    loss = criterion(pred, y)

    optimizer.zero_grad()  # ⇤ 필수
    loss.backward()        # ∂L/∂θ
    optimizer.step()       # θ 업데이트

    if (epoch+1) % 20 == 0:
        print(f"Epoch {epoch+1:3d}: Loss={loss.item():.4f}")

print("학습된 w, b:", model.weight.item(), model.bias.item())
