#pragma once
// xgrad's training layer: the Trainer, its callbacks and metrics.
#include "train/callbacks.hpp"
#include "train/metrics.hpp"
#include "train/trainer.hpp"
