// A small graph, back-propagated, its gradients printed (the first program; the main job is train.cpp).
#include <iostream>

#include <fmt/format.h>
#include <xtensor/xio.hpp>

#include "xgrad.hpp"

int main() {
    using V = xg::Variable<double>;
    V x(xg::Array<double>{{1.0, -2.0, 3.0}, {0.5, 0.0, -1.5}}, true, "x");
    V W(xg::Array<double>{{0.1, 0.2}, {-0.3, 0.4}, {0.5, -0.6}}, true, "W");
    V b(xg::Array<double>{0.01, -0.02}, true, "b");

    V h = xg::tanh(xg::linear(x, W, b)).set_name("h");
    V loss = xg::softmax_cross_entropy(h, xg::Labels{0, 1}).set_name("loss");
    loss.backward();

    fmt::print("loss = {:.6f}\n", loss.item());
    std::cout << "dloss/dW =\n" << W.grad().data() << "\ndloss/db = " << b.grad().data()
              << "\ndloss/dx =\n" << x.grad().data() << "\n";

    // Higher order: d/dx of x^3 is 3x^2 = 12 at x = 2; its derivative 6x = 12.
    V s = xg::scalar(2.0, true, "s");
    V y = xg::pow(s, 3.0);
    V dy = xg::grad(y, {s}, {}, {.create_graph = true})[0];
    V d2y = xg::grad(dy, {s})[0];
    fmt::print("y = s^3 at s = 2: dy/ds = {}, d2y/ds2 = {}\n", dy.item(), d2y.item());

    const auto report = xg::gradcheck<double>(
        [](const std::vector<V>& in) { return xg::softmax_cross_entropy(xg::tanh(xg::linear(in[0], in[1], in[2])), xg::Labels{0, 1}); },
        {x, W, b});
    fmt::print("{}\n", report.str());
    return report.ok ? 0 : 1;
}
