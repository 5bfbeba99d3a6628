// Deep Learning from Scratch 6.4.3 (figure 6-23, overfit_dropout.py): 300 training samples, 6
// hidden layers of 100 ReLU units, SGD lr 0.01, batch 100, 301 epochs, without and with dropout
// (ratio 0.2 after every hidden activation; inverted dropout, which equals the book's scaling at
// test time). The book: dropout shrinks the gap between training and test accuracy.
//
// Writes to --out: accuracy.csv (per run and epoch), summary.csv, accuracy.png. Shared code: overfit.hpp.
#include "overfit.hpp"

int main(int argc, char** argv) {
    return overfit::run(argc, argv,
                        {.program = "overfit_dropout",
                         .description = "Overfitting 300 samples, without and with dropout "
                                        "(Deep Learning from Scratch 6.4.3).",
                         .regulariser = "dropout",
                         .flag = "dropout",
                         .symbol = "ratio",
                         .default_strength = 0.2,
                         .default_epochs = 301,
                         .quick_epochs = 150,
                         .strength_range = {.min = 0, .max = 1, .min_open = true, .max_open = true}});
}
