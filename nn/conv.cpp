// Convolutional layers (being written: issue 14).
#include "nn/conv.hpp"
