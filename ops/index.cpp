// Indexing ops (placeholder, filled in below).
#include "ops/ops.hpp"
