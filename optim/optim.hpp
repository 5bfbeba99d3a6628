#pragma once
// xgrad's optimizers: update rules, learning-rate schedules and gradient clipping.
#include "optim/adam.hpp"
#include "optim/adaptive.hpp"
#include "optim/factory.hpp"
#include "optim/optimizer.hpp"
#include "optim/scheduler.hpp"
#include "optim/sgd.hpp"
