#pragma once
// xgrad's neural-network layer: modules, layers, initialisers, losses, checkpoints.
#include "nn/any_module.hpp"
#include "nn/attention.hpp"
#include "nn/checkpoint.hpp"
#include "nn/conv.hpp"
#include "nn/init.hpp"
#include "nn/layers.hpp"
#include "nn/loss.hpp"
#include "nn/module.hpp"
#include "nn/module_list.hpp"
#include "nn/multilayer_net.hpp"
#include "nn/recurrent.hpp"
#include "nn/sequential.hpp"
