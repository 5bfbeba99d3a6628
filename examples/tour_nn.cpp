// The README's second tour: a 2-2-1 sigmoid network learns XOR, end to end, then is saved as
// an .npz checkpoint (numpy reads it) and restored. Usage: tour_nn [checkpoint.npz]
#include <iostream>

#include <xtensor/xio.hpp>

#include "xgrad.hpp"

int main(int argc, char** argv) {
    using V = xg::Variable<float>;
    namespace nn = xg::nn;
    nn::manual_seed(1);                                  // reproducible weights
    auto init = nn::LinearOptions{.init = nn::Init::normal(1.0)};
    nn::Sequential<float> net(std::make_shared<nn::Linear<float>>(2, 2, init), std::make_shared<nn::Sigmoid<float>>(),
                              std::make_shared<nn::Linear<float>>(2, 1, init), std::make_shared<nn::Sigmoid<float>>());
    V x(xg::Array<float>{{0, 0}, {0, 1}, {1, 0}, {1, 1}});
    V t(xg::Array<float>{0, 1, 1, 0});
    xg::optim::SGD<float> opt(net.parameters(), {.lr = 2.0});
    for (int step = 1; step <= 5000; ++step) {
        opt.zero_grad();
        V loss = nn::MSELoss<float>()(xg::reshape(net(x), {-1}), t);
        loss.backward();
        opt.step();
        if (step % 1000 == 0) std::cout << "step " << step << "  loss " << loss.item() << "\n";
    }
    std::cout << net << "predictions: " << xg::reshape(net(x), {-1}).data() << "\n";

    const std::string path = argc > 1 ? argv[1] : "xor.npz";
    nn::save(path, net, opt.state_dict());               // np.load(path)["0.weight"]
    nn::Sequential<float> copy(std::make_shared<nn::Linear<float>>(2, 2), std::make_shared<nn::Sigmoid<float>>(),
                               std::make_shared<nn::Linear<float>>(2, 1), std::make_shared<nn::Sigmoid<float>>());
    nn::load(path, copy);
    std::cout << "restored from " << path << ": " << xg::reshape(copy(x), {-1}).data() << "\n";
}
