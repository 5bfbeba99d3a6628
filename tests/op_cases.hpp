#pragma once
// The one list of differentiable op cases. Every case is gradchecked in float64 and, when
// twice differentiable, gradgradchecked (test_gradcheck.cpp). Adding an op = adding a case.
#include <iosfwd>
#include <string>
#include <vector>

#include "xgrad.hpp"

namespace xgt {

using V = xg::Variable<double>;

// How random inputs are drawn: any sign, or positive (log, sqrt, pow), or away from zero
// (abs, relu: no kink within a finite-difference step).
enum class Domain { any, positive, away_from_zero };

struct OpCase {
    std::string name;
    std::vector<xg::Shape> shapes;
    xg::VariableFn<double> f;
    bool twice_differentiable = true;
    Domain domain = Domain::any;
};

const std::vector<OpCase>& op_cases();
std::vector<V> random_inputs(const OpCase& c, unsigned seed);
std::ostream& operator<<(std::ostream& os, const OpCase& c);

}  // namespace xgt
