// Deep Learning from Scratch 6.4.1-6.4.2 (figures 6-20 and 6-21, overfit_weight_decay.py): 300
// training samples, 6 hidden layers of 100 ReLU units, SGD lr 0.01, batch 100, 201 epochs, without
// and with weight decay (loss += 0.5 * lambda * sum ||W||^2 over the weights, lambda 0.1). The book:
// without decay training accuracy reaches 1.0 while test accuracy stays far below; with decay the
// gap shrinks (and training accuracy no longer reaches 1.0).
//
// Writes to --out: accuracy.csv (per run and epoch), summary.csv, accuracy.png. Shared code: overfit.hpp.
#include "overfit.hpp"

int main(int argc, char** argv) {
    return overfit::run(argc, argv,
                        {.program = "overfit_weight_decay",
                         .description = "Overfitting 300 samples, without and with weight decay "
                                        "(Deep Learning from Scratch 6.4.2).",
                         .regulariser = "weight decay",
                         .flag = "weight-decay",
                         .symbol = "lambda",
                         .default_strength = 0.1,
                         .default_epochs = 201,
                         .quick_epochs = 150,
                         .strength_range = {.min = 0, .min_open = true}});
}
