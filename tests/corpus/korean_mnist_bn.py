"""A Korean-course-style MNIST lab (lab-10 batch normalisation): layers made one by one, then bn_model = nn.Sequential(linear1, bn1, relu, ...) reusing one ReLU, Xavier init, Adam, a DataLoader with drop_last."""
import torch
import torch.nn as nn

device = "cpu"
torch.manual_seed(1)

learning_rate = 0.01
training_epochs = 2
batch_size = 16

# 8x8 "손글씨" 이미지 (합성 데이터)
mnist_x = torch.rand(64, 8, 8)
mnist_y = torch.randint(0, 10, (64,))
data_loader = torch.utils.data.DataLoader(
    dataset=torch.utils.data.TensorDataset(mnist_x, mnist_y), batch_size=batch_size, shuffle=True, drop_last=True
)

# 모델 정의
linear1 = torch.nn.Linear(64, 16, bias=True)
linear2 = torch.nn.Linear(16, 16, bias=True)
linear3 = torch.nn.Linear(16, 10, bias=True)
relu = torch.nn.ReLU()
bn1 = torch.nn.BatchNorm1d(16)
bn2 = torch.nn.BatchNorm1d(16)

torch.nn.init.xavier_uniform_(linear1.weight)
torch.nn.init.xavier_uniform_(linear2.weight)
torch.nn.init.xavier_uniform_(linear3.weight)

bn_model = torch.nn.Sequential(linear1, bn1, relu, linear2, bn2, relu, linear3).to(device)

criterion = torch.nn.CrossEntropyLoss().to(device)  # 소프트맥스는 비용 함수에 포함
bn_optimizer = torch.optim.Adam(bn_model.parameters(), lr=learning_rate)

total_batch = len(data_loader)
for epoch in range(training_epochs):
    bn_model.train()  # 배치 정규화: 학습 모드
    avg_cost = 0
    for X, Y in data_loader:
        X = X.view(-1, 8 * 8).to(device)
        Y = Y.to(device)
        bn_optimizer.zero_grad()
        bn_prediction = bn_model(X)
        bn_loss = criterion(bn_prediction, Y)
        bn_loss.backward()
        bn_optimizer.step()
        avg_cost += bn_loss / total_batch
    print("Epoch:", "%04d" % (epoch + 1), "cost =", "{:.9f}".format(avg_cost))
print("학습 완료!")
