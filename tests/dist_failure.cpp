// A job whose rank 1 fails in the middle of training, for tests/check_dist_failure.sh:
//   dist_failure throw   rank 1 throws (an xg::ValueError) at its 3rd batch
//   dist_failure kill    rank 1 dies of SIGKILL at its 3rd batch
// Rank 0 is meanwhile in the next step's collectives. The job must end, with rank 1's message
// in the first case, instead of rank 0 waiting forever.
#include <csignal>
#include <cstring>
#include <memory>

#include "dist/context.hpp"
#include "fixtures.hpp"
#include "xgrad.hpp"

using namespace xg;

int main(int argc, char** argv) {
    return dist::run(argc, argv, [&](dist::Context& ctx) {
        if (argc != 2 || (std::strcmp(argv[1], "throw") != 0 && std::strcmp(argv[1], "kill") != 0))
            throw ValueError("usage: dist_failure throw|kill");
        const bool kill = std::strcmp(argv[1], "kill") == 0;
        const data::Dataset set = xgt::blobs(600, 1);
        nn::MultiLayerNet<float> net({.input_size = 4, .hidden_sizes = {8}, .output_size = 3, .seed = 1});
        optim::SGD<float> sgd(net.parameters(), {.lr = 0.1});
        train::Trainer trainer(net, sgd, set,
                               [](nn::MultiLayerNet<float>& m, const data::Batch& b) {
                                   return m.loss(Variable<float>(b.x), b.y);
                               },
                               {.epochs = 100, .batch_size = 10, .verbose = false});
        auto fail = std::make_shared<train::LambdaCallback>();
        fail->batch_end = [&](train::TrainerBase&, const train::BatchEnd& b) {
            if (ctx.rank() != 1 || b.iteration != 3) return;
            if (kill) std::raise(SIGKILL);
            throw ValueError("a failure planted on rank 1 at batch 3");
        };
        trainer.add_callback(fail);
        trainer.distribute(ctx);
        trainer.fit();
        return 0;
    });
}
