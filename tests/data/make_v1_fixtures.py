import numpy as np
from partitionnet import ConvNet, ConvLayer as L
from partitionnet import io as nio
nets = {
 "convnet_v1_2d": ConvNet((6, 6), 2, [L(3, kernel=3, padding="same", window=2),
        L(2, kernel=2, pooling="lp", window=2, pool_options={"p": 3}, connections=[[0], [1, 2]])], [4, 3],
        activation="tanh", output="softmax", loss="cross_entropy", bias="per_input", rng=7),
 "convnet_v1_1d_subsample": ConvNet((12,), 1, [L(2, kernel=3, stride=1, dilation=2, padding="full", pooling="subsample", window=4,
        pool_options={"retain": "random", "rng": 4})], [2], activation="relu", bias="tied", rng=3),
}
rng = np.random.default_rng(11)
for name, net in nets.items():
    # move the parameters off their initial values so the fixture tests the loaded numbers
    params = net.parameters()
    net.set_parameters({k: v + 0.1 * rng.standard_normal(v.shape) * (v != 0 if k.startswith("conv") else 1) for k, v in params.items()})
    nio.save(net, f"tests/data/{name}.npz")
    x = rng.standard_normal((4, net.in_maps) + net.input_shape)
    np.savez(f"tests/data/{name}_expected.npz", x=x, y=net.forward(x))
    print(name, net.forward(x)[0])
