// The README's API tour, verbatim (kept compiling by the build).
#include <iostream>
#include "xgrad.hpp"   // installed: #include <xgrad.hpp>, flags from `pkg-config --cflags --libs xgrad`

int main() {
    using V = xg::Variable<double>;              // float and double both work, in one program
    V x(xg::Array<double>{{1.0, -2.0, 3.0}, {0.5, 0.0, -1.5}});          // data: no gradient
    V W(xg::Array<double>{{0.1, 0.2}, {-0.3, 0.4}, {0.5, -0.6}}, true, "W");  // requires_grad
    V b(xg::Array<double>{0.01, -0.02}, true, "b");

    V h = xg::tanh(xg::linear(x, W, b));             // x·W + b, numpy broadcasting everywhere
    V loss = xg::softmax_cross_entropy(h, xg::Labels{0, 1});   // fused and stable; mean over rows
    loss.backward();                                  // reverse mode; W.grad(), b.grad() filled
    std::cout << loss.item() << "\n" << W.grad() << "\n";        // values, shape, dtype, op

    V s = xg::scalar(2.0, true);                      // higher order: d/ds s^3 = 12, d2/ds2 = 12
    V ds = xg::grad(xg::pow(s, 3.0), {s}, {}, {.create_graph = true})[0];
    std::cout << ds.item() << " " << xg::grad(ds, {s})[0].item() << "\n";

    {
        xg::NoGradGuard no_grad;                      // inference: nothing is recorded
        V p = xg::softmax(xg::linear(x, W, b));
    }
    auto report = xg::gradcheck<double>(              // check any function numerically
        [](const std::vector<V>& in) { return xg::sum(xg::sigmoid(in[0]) * in[1]); },
        {V(xg::Array<double>{0.3, -1.0}), V(xg::Array<double>{2.0, 0.5})});
    std::cout << report.str() << "\n";
}
