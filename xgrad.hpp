#pragma once
// xgrad: define-by-run reverse-mode autodiff on xtensor arrays. Include this one header.
#include "data/dataset.hpp"
#include "data/idx.hpp"
#include "graph/atomic_file.hpp"
#include "graph/dot.hpp"
#include "graph/error.hpp"
#include "graph/function.hpp"
#include "graph/mode.hpp"
#include "graph/variable.hpp"
#include "ops/gradcheck.hpp"
#include "ops/ops.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
