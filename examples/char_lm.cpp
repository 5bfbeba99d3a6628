// A character-level language model on a real text: Debian's fortunes (every text file of
// /usr/share/games/fortunes, concatenated in name order; scripts/setup installs the package) or
// any UTF-8 or ASCII file (--text FILE), modelled byte by byte (data/text.hpp).
//   --model lstm:        Embedding(V, 64) -> 2-layer LSTM(64 -> 128) -> Linear(128 -> V), trained
//                        by truncated back-propagation through time: the text cut into N
//                        contiguous streams read in chunks of L, the LSTM's state carried from one
//                        chunk to the next and detach()ed in between (gradients flow back L steps);
//   --model transformer: Embedding(V, 128) + learned positions (L, 128) -> 2 pre-norm
//                        TransformerBlocks (4 heads, causal) -> LayerNorm -> Linear(128 -> V),
//                        trained on windows of L characters drawn at random.
// Both: softmax cross entropy on every next character, Adam, gradient clipping (global norm 1),
// learning rate: linear warm-up over the first 100 steps, then a cosine from --lr down to
// --lr / 10 over the run (its progress: the largest of the fractions of --minutes, --epochs and
// --steps done). The validation text is fixed: 10 pieces of 100 spread over the text
// (data::split_text); the unigram and bigram baselines (add-one smoothing, from the training
// text) are computed beside the models.
//
// Writes to --out: metrics.csv (per evaluation: steps, epochs, training minutes, lr, training and
// validation bits per character, the two baselines), bpc.png (the curves), summary.csv,
// sample.txt (--sample N characters at --temperature T after training, also printed) and
// checkpoint.npz (model, Adam, progress; written at every evaluation; --resume continues from it).
// The clock counts training only: evaluations, checkpoints and sampling are outside --minutes.
// Verdicts: the bigram baseline beats the unigram one; the model beats the bigram baseline (the
// LSTM: at most 2.5 bits per character, the target for 10 minutes; --quick: the unigram
// baseline); the checkpoint restores the model exactly (same validation bits per character).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "support/cli.hpp"
#include "support/plot.hpp"
#include "train/csv.hpp"
#include "xgrad.hpp"

namespace data = xg::data;
namespace flag = xg::support::flag;
namespace po = boost::program_options;
namespace fs = std::filesystem;
namespace nn = xg::nn;
namespace support = xg::support;
namespace train = xg::train;

namespace {

using V = xg::Variable<float>;
using Clock = std::chrono::steady_clock;

// Seconds on the clock --clock names: the process's CPU time (all threads) or wall time.
double clock_seconds(bool cpu) {
    if (cpu) {
        timespec t{};
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
    }
    return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

struct Config {
    std::string model;  // "lstm" or "transformer"
    std::size_t vocab = 0, embed = 64, hidden = 128, layers = 2;
    std::size_t d_model = 128, heads = 4, blocks = 2, context = 64;
    std::uint64_t seed = 0;
};

// ---- The models: logits (N, L, V) for ids (N, L) ----

class CharModel : public nn::Module<float> {
public:
    virtual V logits(const xg::IndexArray& ids) = 0;
    // Starts a new text: forgets any carried state (the LSTM's).
    virtual void reset() {}
    // Cuts the carried state from the graph (truncated BPTT), keeping its values.
    virtual void detach_state() {}
};

class LstmLM : public CharModel {
public:
    explicit LstmLM(const Config& c) {
        nn::Generator gen(c.seed);
        embed_ = register_module("embed", std::make_shared<nn::Embedding<float>>(c.vocab, c.embed,
                                                                                  nn::EmbeddingOptions{.generator = &gen}));
        lstm_ = register_module("lstm", std::make_shared<nn::LSTM<float>>(
                                            c.embed, c.hidden,
                                            nn::RecurrentOptions{.num_layers = c.layers, .batch_first = true,
                                                                 .generator = &gen}));
        head_ = register_module("head", std::make_shared<nn::Linear<float>>(
                                            c.hidden, c.vocab,
                                            nn::LinearOptions{.init = nn::Init::xavier(), .generator = &gen}));
    }
    V logits(const xg::IndexArray& ids) override {
        auto [out, state] = lstm_->forward((*embed_)(ids), state_);
        state_ = std::move(state);
        return (*head_)(out);
    }
    void reset() override { state_ = {}; }
    void detach_state() override {
        if (state_.h.defined()) state_ = {state_.h.detach(), state_.c.detach()};
    }
    nn::LSTMState<float>& state() { return state_; }

private:
    std::shared_ptr<nn::Embedding<float>> embed_;
    std::shared_ptr<nn::LSTM<float>> lstm_;
    std::shared_ptr<nn::Linear<float>> head_;
    nn::LSTMState<float> state_;
};

class TransformerLM : public CharModel {
public:
    explicit TransformerLM(const Config& c) : context_(c.context) {
        nn::Generator gen(c.seed);
        embed_ = register_module("embed", std::make_shared<nn::Embedding<float>>(c.vocab, c.d_model,
                                                                                  nn::EmbeddingOptions{.generator = &gen}));
        positions_ = register_module("positions", std::make_shared<nn::Embedding<float>>(
                                                      c.context, c.d_model, nn::EmbeddingOptions{.generator = &gen}));
        blocks_ = register_module("blocks", std::make_shared<nn::ModuleList<float>>());
        for (std::size_t i = 0; i < c.blocks; ++i)
            blocks_->push_back(std::make_shared<nn::TransformerBlock<float>>(
                c.d_model, c.heads, nn::TransformerBlockOptions{.generator = &gen}));
        norm_ = register_module("norm", std::make_shared<nn::LayerNorm<float>>(xg::Shape{c.d_model}));
        head_ = register_module("head", std::make_shared<nn::Linear<float>>(
                                            c.d_model, c.vocab,
                                            nn::LinearOptions{.init = nn::Init::xavier(), .generator = &gen}));
    }
    V logits(const xg::IndexArray& ids) override {
        const std::size_t length = ids.shape(1);
        if (length > context_)
            throw xg::ShapeError(fmt::format("char_lm: {} characters in a window of a transformer with context {}",
                                             length, context_));
        xg::IndexArray pos = xg::IndexArray::from_shape({length});
        for (std::size_t t = 0; t < length; ++t) pos(t) = static_cast<std::int64_t>(t);
        V x = (*embed_)(ids) + (*positions_)(pos);  // (N, L, d) + (L, d)
        for (std::size_t i = 0; i < blocks_->size(); ++i)
            x = blocks_->get<nn::TransformerBlock<float>>(i)->forward(x, true);
        return (*head_)((*norm_)(x));
    }
    std::size_t context() const { return context_; }

private:
    std::size_t context_;
    std::shared_ptr<nn::Embedding<float>> embed_, positions_;
    std::shared_ptr<nn::ModuleList<float>> blocks_;
    std::shared_ptr<nn::LayerNorm<float>> norm_;
    std::shared_ptr<nn::Linear<float>> head_;
};

std::unique_ptr<CharModel> make_model(const Config& c) {
    if (c.model == "lstm") return std::make_unique<LstmLM>(c);
    return std::make_unique<TransformerLM>(c);
}

// Mean cross entropy of a batch's next characters, in nats (differentiable).
V batch_loss(CharModel& m, const data::SequenceBatch& b) {
    const V logits = m.logits(b.x);
    return xg::softmax_cross_entropy(xg::reshape(logits, {-1, static_cast<long>(logits.shape().back())}), b.targets());
}

// Bits per character over the validation text's targets: N streams read in chunks of L, the
// LSTM's state carried through each stream; the transformer sees each chunk alone.
double evaluate(CharModel& m, const std::vector<std::int64_t>& ids, std::size_t n, std::size_t length) {
    const bool was_training = m.is_training();
    m.eval();
    xg::NoGradGuard no_grad;
    const data::StreamBatches chunks(ids, n, length);
    // The training streams' state, put back afterwards.
    auto* lstm = dynamic_cast<LstmLM*>(&m);
    const nn::LSTMState<float> carried = lstm ? lstm->state() : nn::LSTMState<float>{};
    m.reset();
    double nats = 0;
    for (std::size_t k = 0; k < chunks.size(); ++k) {
        const data::SequenceBatch b = chunks[k];
        const V logits = m.logits(b.x);
        nats += xg::softmax_cross_entropy(xg::reshape(logits, {-1, static_cast<long>(logits.shape().back())}),
                                          b.targets(), xg::Reduction::sum)
                    .item();
    }
    if (lstm) lstm->state() = carried;
    m.train(was_training);
    return nats / static_cast<double>(chunks.targets()) / std::log(2.0);
}

// ---- The learning-rate schedule: warm-up, then a cosine to a tenth ----

double scheduled_lr(double base, std::size_t step, std::size_t warmup, double progress) {
    const double warm = warmup ? std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(warmup)) : 1.0;
    const double p = std::clamp(progress, 0.0, 1.0);
    return base * warm * (0.1 + 0.9 * 0.5 * (1.0 + std::cos(std::numbers::pi * p)));
}

// ---- Sampling ----

// A draw from softmax(logits / temperature) with the generator's own bits (the same everywhere).
std::int64_t draw(const float* logits, std::size_t vocab, double temperature, std::mt19937_64& rng) {
    std::vector<double> p(vocab);
    double top = -INFINITY;
    for (std::size_t i = 0; i < vocab; ++i) top = std::max(top, static_cast<double>(logits[i]) / temperature);
    double sum = 0;
    for (std::size_t i = 0; i < vocab; ++i) sum += p[i] = std::exp(static_cast<double>(logits[i]) / temperature - top);
    double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
    for (std::size_t i = 0; i < vocab; ++i) {
        u -= p[i];
        if (u < 0) return static_cast<std::int64_t>(i);
    }
    return static_cast<std::int64_t>(vocab - 1);
}

// `count` characters after `prompt` (whose bytes must be in the vocabulary).
std::string sample(CharModel& m, const data::Vocabulary& vocab, const std::string& prompt, std::size_t count,
                   double temperature, std::size_t context, std::uint64_t seed) {
    m.eval();
    xg::NoGradGuard no_grad;
    std::mt19937_64 rng(seed);
    std::vector<std::int64_t> ids = vocab.encode(prompt);
    const bool recurrent = dynamic_cast<LstmLM*>(&m) != nullptr;
    m.reset();
    std::vector<std::int64_t> feed = ids;  // the LSTM takes what it has not seen yet
    std::string out;
    for (std::size_t i = 0; i < count; ++i) {
        if (!recurrent) {
            const std::size_t start = ids.size() > context ? ids.size() - context : 0;
            feed.assign(ids.begin() + static_cast<long>(start), ids.end());
        }
        xg::IndexArray x = xg::IndexArray::from_shape({std::size_t{1}, feed.size()});
        std::copy(feed.begin(), feed.end(), x.begin());
        const V logits = m.logits(x);  // (1, len, V)
        const float* last = logits.data().data() + (feed.size() - 1) * vocab.size();
        const std::int64_t next = draw(last, vocab.size(), temperature, rng);
        ids.push_back(next);
        feed.assign(1, next);
        out.push_back(static_cast<char>(vocab.symbol(next)));
    }
    m.reset();
    m.train();
    return out;
}

// ---- Progress, history and checkpoints ----

struct Record {
    double step, epoch, minutes, lr, train_bpc, val_bpc;
};
constexpr std::size_t record_fields = 6;

struct Progress {
    std::size_t step = 0;     // optimizer steps done
    std::size_t epoch = 0;    // whole passes done
    std::size_t chunk = 0;    // the next chunk of the current pass (the LSTM's streams)
    double seconds = 0;       // training time so far
    std::vector<Record> history;
};

// A 1-D float array of the given values.
xg::Array<float> float_array(std::initializer_list<double> values) {
    xg::Array<float> a = xg::Array<float>::from_shape({values.size()});
    std::size_t i = 0;
    for (double v : values) a(i++) = static_cast<float>(v);
    return a;
}

void save_checkpoint(const fs::path& path, CharModel& m, const xg::optim::Adam<float>& adam,
                     const data::Vocabulary& vocab, const Progress& p) {
    xg::StateDict<float> all = m.state_dict();
    for (auto& e : nn::to_section("optimizer", adam.state_dict())) all.push_back(std::move(e));
    xg::StateDict<float> own;
    // Counts as two floats each (high and low 24 bits): exact for any count a run reaches.
    const std::pair<const char*, std::size_t> counts[] = {{"step", p.step}, {"epoch", p.epoch}, {"chunk", p.chunk}};
    for (const auto& [name, v] : counts)
        own.emplace_back(name, float_array({static_cast<double>(v >> 24), static_cast<double>(v & 0xffffff)}));
    own.emplace_back("seconds", float_array({p.seconds}));
    xg::Array<float> vocab_bytes = xg::Array<float>::from_shape({vocab.size()});
    for (std::size_t i = 0; i < vocab.size(); ++i) vocab_bytes(i) = static_cast<float>(vocab.symbol(static_cast<long>(i)));
    own.emplace_back("vocabulary", std::move(vocab_bytes));
    xg::Array<float> h = xg::Array<float>::from_shape({p.history.size(), record_fields});
    for (std::size_t i = 0; i < p.history.size(); ++i) {
        const Record& r = p.history[i];
        const double fields[record_fields] = {r.step, r.epoch, r.minutes, r.lr, r.train_bpc, r.val_bpc};
        for (std::size_t j = 0; j < record_fields; ++j) h(i, j) = static_cast<float>(fields[j]);
    }
    if (!p.history.empty()) own.emplace_back("history", std::move(h));
    if (auto* lstm = dynamic_cast<LstmLM*>(&m); lstm && lstm->state().h.defined()) {
        own.emplace_back("h", lstm->state().h.data());
        own.emplace_back("c", lstm->state().c.data());
    }
    for (auto& e : nn::to_section("trainer", own)) all.push_back(std::move(e));
    nn::save_npz(path.string(), all);
}

const xg::Array<float>* find_entry(const xg::StateDict<float>& d, const std::string& name) {
    for (const auto& [n, a] : d)
        if (n == name) return &a;
    return nullptr;
}

// Restores what save_checkpoint wrote into `m` (and `adam` when given); the progress.
Progress load_checkpoint(const fs::path& path, CharModel& m, xg::optim::Adam<float>* adam,
                         const data::Vocabulary& vocab) {
    const xg::StateDict<float> rest = nn::load_with_sections(path.string(), m);
    const xg::StateDict<float> own = nn::from_section("trainer", rest);
    auto need = [&](const std::string& name) -> const xg::Array<float>& {
        const xg::Array<float>* a = find_entry(own, name);
        if (!a) throw xg::IoError(fmt::format("{}: no trainer/{} entry: not a char_lm checkpoint", path.string(), name));
        return *a;
    };
    const xg::Array<float>& bytes = need("vocabulary");
    std::string symbols;
    for (float b : bytes) symbols.push_back(static_cast<char>(static_cast<unsigned char>(b)));
    if (symbols != vocab.symbols())
        throw xg::ValueError(fmt::format("{}: the checkpoint's vocabulary ({} symbols) is not this text's ({}): "
                                         "resume with the same --text",
                                         path.string(), symbols.size(), vocab.size()));
    auto count = [&](const std::string& name) {
        const xg::Array<float>& a = need(name);
        return (static_cast<std::size_t>(a(0)) << 24) + static_cast<std::size_t>(a(1));
    };
    Progress p;
    p.step = count("step");
    p.epoch = count("epoch");
    p.chunk = count("chunk");
    p.seconds = need("seconds")(0);
    if (const xg::Array<float>* h = find_entry(own, "history"))
        for (std::size_t i = 0; i < h->shape(0); ++i)
            p.history.push_back({(*h)(i, 0), (*h)(i, 1), (*h)(i, 2), (*h)(i, 3), (*h)(i, 4), (*h)(i, 5)});
    if (adam) adam->load_state_dict(nn::from_section("optimizer", rest));
    if (auto* lstm = dynamic_cast<LstmLM*>(&m)) {
        const xg::Array<float>* h = find_entry(own, "h");
        const xg::Array<float>* c = find_entry(own, "c");
        lstm->state() = {};
        if (h && c) lstm->state() = {V(*h), V(*c)};
    }
    return p;
}

void write_metrics(const fs::path& out, const Progress& p, double unigram, double bigram) {
    train::CsvWriter csv(out / "metrics.csv",
                         {"step", "epoch", "minutes", "lr", "train_bpc", "val_bpc", "unigram_bpc", "bigram_bpc"});
    for (const Record& r : p.history)
        csv.row({static_cast<std::size_t>(r.step), r.epoch, r.minutes, r.lr, r.train_bpc, r.val_bpc, unigram, bigram});
    csv.close();
}

void plot(const fs::path& out, const std::string& model) {
    const fs::path csv = out / "metrics.csv";
    support::Figure fig{.title = "", .width = 900, .height = 550};
    fig.panels.push_back({.title = fmt::format("char_lm --model {}: bits per character", model),
                          .x = {.label = "training minutes"},
                          .y = {.label = "bits per character"},
                          .series = {{.csv = csv, .x = "minutes", .y = "train_bpc",
                                      .title = "training (mean since the previous point)",
                                      .style = support::Style::linespoints},
                                     {.csv = csv, .x = "minutes", .y = "val_bpc", .title = "validation",
                                      .style = support::Style::linespoints},
                                     {.csv = csv, .x = "minutes", .y = "unigram_bpc",
                                      .title = "unigram baseline (validation)", .color = "gray50"},
                                     {.csv = csv, .x = "minutes", .y = "bigram_bpc",
                                      .title = "bigram baseline (validation)", .color = "dark-red"}},
                          .legend = "top right"});
    support::save_png(fig, out / "bpc.png");
}

int run(int argc, char** argv) {
    support::Cli cli("char_lm", "Trains a character-level language model (LSTM or transformer) on a text.");
    cli.options().add_options()
        ("model", flag::value(flag::Choice{{"lstm", "transformer"}})->default_value("lstm"),
         "lstm (Embedding, 2-layer LSTM, Linear) or transformer (Embedding + positions, TransformerBlocks)")
        ("text", po::value<std::string>(),
         "a UTF-8 or ASCII text file (default: Debian's fortunes, /usr/share/games/fortunes)")
        ("max-chars", flag::value(flag::Integer<std::size_t>{1000, std::size_t{1} << 40}),
         "use only the first N bytes of the text (default all; --quick: 100000)")
        ("minutes", flag::value(flag::Real{.min = 0, .min_open = true}),
         "training time budget in minutes, evaluations excluded (default 10; --quick: none)")
        ("clock", flag::value(flag::Choice{{"cpu", "wall"}})->default_value("cpu"),
         "what --minutes and the reported minutes count: the process's CPU time (fair between runs sharing a busy "
         "machine; run single-threaded: OPENBLAS_NUM_THREADS=1) or wall time")
        ("epochs", flag::value(flag::Integer<std::size_t>{1, 1'000'000}), "stop after N passes over the training text")
        ("steps", flag::value(flag::Integer<std::size_t>{1, 1'000'000'000}),
         "stop after N optimizer steps (--quick: 100)")
        ("batch-size", flag::value(flag::Integer<std::size_t>{1, 100'000}), "streams / windows per batch (default 32; --quick: 16)")
        ("seq-len", flag::value(flag::Integer<std::size_t>{1, 100'000}),
         "characters per chunk (LSTM: back-propagation steps) or context (transformer) (default 64; --quick: 32)")
        ("embed", flag::value(flag::Integer<std::size_t>{1, 100'000}), "LSTM: embedding size (default 64; --quick: 16)")
        ("hidden", flag::value(flag::Integer<std::size_t>{1, 100'000}), "LSTM: hidden size (default 128; --quick: 64)")
        ("layers", flag::value(flag::Integer<std::size_t>{1, 100})->default_value(2), "LSTM: layers")
        ("d-model", flag::value(flag::Integer<std::size_t>{1, 100'000}), "transformer: width (default 128; --quick: 32)")
        ("heads", flag::value(flag::Integer<std::size_t>{1, 1'000}), "transformer: attention heads (default 4; --quick: 2)")
        ("blocks", flag::value(flag::Integer<std::size_t>{1, 1'000})->default_value(2), "transformer: blocks")
        ("lr", flag::value(flag::Real{.min = 0, .min_open = true}), "Adam's peak learning rate (default 0.005 lstm, 0.001 transformer; --quick: 0.02 and 0.01)")
        ("warmup", flag::value(flag::Integer<std::size_t>{0, 1'000'000})->default_value(100), "linear warm-up steps (--quick: 10)")
        ("clip", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(1.0), "gradient clipping: global norm")
        ("eval-every", flag::value(flag::Integer<std::size_t>{1, 1'000'000'000}),
         "evaluate (and checkpoint) every N steps, besides at the end of each pass (default 200; --quick: 25)")
        ("resume", po::bool_switch(),
         "continue from --out's checkpoint.npz (the same flags as the run that wrote it)")
        ("sample", flag::value(flag::Integer<std::size_t>{0, 10'000'000}), "characters sampled after training (default 1000; --quick: 200)")
        ("temperature", flag::value(flag::Real{.min = 0, .min_open = true})->default_value(0.8), "sampling temperature")
        ("prompt", po::value<std::string>()->default_value("The "),
         "the text sampling continues (the default gives way to the text's first byte if the text lacks one of its bytes)");
    const auto common = cli.parse(argc, argv);
    if (!common) return 0;
    const bool quick = common->quick;
    const fs::path out = common->out;
    const fs::path checkpoint = out / "checkpoint.npz";
    if (cli.get<bool>("resume") && !fs::is_regular_file(checkpoint))
        throw xg::ValueError(fmt::format("--resume: no checkpoint {} (a run with the same --out writes it)",
                                         checkpoint.string()));

    // ---- Data ----
    std::string text;
    std::string source;
    if (cli.given("text")) {
        source = cli.get<std::string>("text");
        text = data::read_text_file(source);
    } else {
        source = data::default_fortunes_dir();
        text = data::load_fortunes(source);
    }
    const std::size_t max_chars = cli.get_or<std::size_t>("max-chars", quick ? 100'000 : text.size());
    if (text.size() > max_chars) text.resize(max_chars);
    if (text.size() < 1000)
        throw xg::ValueError(fmt::format("{}: {} bytes; a split and batches need at least 1000", source, text.size()));
    const data::Vocabulary vocab(text);
    std::string prompt = cli.get<std::string>("prompt");
    // The default prompt, "The ", gives way to the text's first byte when the text lacks one of its bytes.
    if (!cli.given("prompt") && std::any_of(prompt.begin(), prompt.end(), [&](char ch) {
            return !vocab.contains(static_cast<unsigned char>(ch));
        }))
        prompt = text.substr(0, 1);
    for (char ch : prompt)
        if (!vocab.contains(static_cast<unsigned char>(ch)))
            throw xg::ValueError(fmt::format("--prompt has a byte the text never holds (\\x{:02x})",
                                             static_cast<unsigned>(static_cast<unsigned char>(ch))));
    if (prompt.empty()) prompt = std::string(1, static_cast<char>(vocab.symbol(0)));
    const data::TextSplit split = data::split_text(vocab.encode(text));
    const data::NgramBaselines baselines(split.train, vocab.size());
    const double unigram = baselines.unigram_bpc(split.validation), bigram = baselines.bigram_bpc(split.validation);
    fmt::print("text: {} ({} bytes, {} symbols): {} training, {} validation characters\n", source, text.size(),
               vocab.size(), split.train.size(), split.validation.size());
    fmt::print("baselines on the validation text: unigram {:.4f}, bigram {:.4f} bits per character (log2 V = {:.4f})\n",
               unigram, bigram, std::log2(static_cast<double>(vocab.size())));

    // ---- Model and optimizer ----
    Config config;
    config.model = cli.get<std::string>("model");
    const bool lstm = config.model == "lstm";
    config.vocab = vocab.size();
    config.embed = cli.get_or<std::size_t>("embed", quick ? 16 : 64);
    config.hidden = cli.get_or<std::size_t>("hidden", quick ? 64 : 128);
    config.layers = cli.get<std::size_t>("layers");
    config.d_model = cli.get_or<std::size_t>("d-model", quick ? 32 : 128);
    config.heads = cli.get_or<std::size_t>("heads", quick ? 2 : 4);
    config.blocks = cli.get<std::size_t>("blocks");
    const std::size_t batch = cli.get_or<std::size_t>("batch-size", quick ? 16 : 32);
    const std::size_t length = cli.get_or<std::size_t>("seq-len", quick ? 32 : 64);
    config.context = length;
    config.seed = common->seed;
    const std::unique_ptr<CharModel> model = make_model(config);
    std::size_t parameters = 0;
    for (const V& p : model->parameters()) parameters += p.size();
    fmt::print("model: {} parameters\n{}", parameters, model->str());

    const double base_lr = cli.get_or<double>("lr", quick ? (lstm ? 0.02 : 0.01) : (lstm ? 0.005 : 0.001));
    xg::optim::Adam<float> adam(model->parameters(), {.lr = base_lr});
    const std::size_t warmup = cli.get_or<std::size_t>("warmup", quick ? 10 : 100);
    const double clip = cli.get<double>("clip");
    const std::size_t eval_every = cli.get_or<std::size_t>("eval-every", quick ? 25 : 200);
    const double budget_seconds =
        cli.given("minutes") ? 60 * cli.get<double>("minutes") : (quick ? INFINITY : 600.0);
    const std::size_t max_steps = cli.get_or<std::size_t>("steps", quick ? 100 : SIZE_MAX);
    const std::size_t max_epochs = cli.get_or<std::size_t>("epochs", SIZE_MAX);
    const bool cpu_clock = cli.get<std::string>("clock") == "cpu";

    // The LSTM reads the training text as `batch` streams; the transformer draws as many windows
    // per pass as the streams hold chunks.
    const data::StreamBatches chunks(split.train, batch, length);
    const std::size_t steps_per_epoch = chunks.size();
    Progress progress;
    if (cli.get<bool>("resume")) {
        progress = load_checkpoint(checkpoint, *model, &adam, vocab);
        fmt::print("resumed from {}: step {}, epoch {}, {:.2f} training minutes\n", checkpoint.string(), progress.step,
                   progress.epoch, progress.seconds / 60);
    }
    auto run_progress = [&] {
        double p = progress.seconds / budget_seconds;
        if (max_steps != SIZE_MAX) p = std::max(p, static_cast<double>(progress.step) / static_cast<double>(max_steps));
        if (max_epochs != SIZE_MAX)
            p = std::max(p, (static_cast<double>(progress.epoch) +
                             static_cast<double>(progress.chunk) / static_cast<double>(steps_per_epoch)) /
                                static_cast<double>(max_epochs));
        return p;
    };
    auto done = [&] {
        return progress.seconds >= budget_seconds || progress.step >= max_steps || progress.epoch >= max_epochs;
    };

    // ---- Training ----
    double period_nats = 0;
    std::size_t period_steps = 0;
    auto evaluate_now = [&] {
        const double val = evaluate(*model, split.validation, batch, length);
        const Record r{static_cast<double>(progress.step),
                       static_cast<double>(progress.epoch) +
                           static_cast<double>(progress.chunk) / static_cast<double>(steps_per_epoch),
                       progress.seconds / 60, adam.lr(),
                       period_steps ? period_nats / static_cast<double>(period_steps) / std::log(2.0) : NAN, val};
        period_nats = 0;
        period_steps = 0;
        if (std::isnan(r.train_bpc)) return;  // nothing trained since the last point
        progress.history.push_back(r);
        fmt::print("step {:6d}  epoch {:6.3f}  {:6.2f} min  lr {:.2e}  train {:.4f}  validation {:.4f} bits per "
                   "character\n",
                   progress.step, r.epoch, r.minutes, r.lr, r.train_bpc, r.val_bpc);
        std::fflush(stdout);  // a long run's progress shows in a redirected log
        write_metrics(out, progress, unigram, bigram);
        save_checkpoint(checkpoint, *model, adam, vocab, progress);
    };
    model->train();
    while (!done()) {
        if (progress.chunk == 0 && lstm) model->reset();
        const double start = clock_seconds(cpu_clock);
        data::SequenceBatch b;
        if (lstm) {
            b = chunks[progress.chunk];
        } else {
            std::mt19937_64 rng(config.seed * 0x9E3779B97F4A7C15ull + progress.step);  // resumable
            b = data::random_windows(split.train, batch, length, rng);
        }
        adam.set_lr(scheduled_lr(base_lr, progress.step, warmup, run_progress()));
        const V loss = batch_loss(*model, b);
        adam.zero_grad();
        loss.backward();
        xg::optim::clip_grad_norm(model->parameters(), clip);
        adam.step();
        model->detach_state();
        const double nats = loss.item();
        if (!std::isfinite(nats))
            throw xg::ValueError(fmt::format("char_lm: the loss is {} at step {}: lower --lr", nats, progress.step));
        period_nats += nats;
        ++period_steps;
        ++progress.step;
        if (++progress.chunk == steps_per_epoch) {
            progress.chunk = 0;
            ++progress.epoch;
        }
        progress.seconds += clock_seconds(cpu_clock) - start;
        if (progress.step % eval_every == 0 || progress.chunk == 0 || done()) evaluate_now();
    }
    if (progress.history.empty()) throw xg::ValueError("char_lm: nothing was trained (the checkpoint's run had ended)");
    const Record& last = progress.history.back();
    double best = INFINITY;
    for (const Record& r : progress.history) best = std::min(best, r.val_bpc);
    plot(out, config.model);
    const double ms_per_step = 1000 * progress.seconds / static_cast<double>(std::max<std::size_t>(progress.step, 1));
    fmt::print("final validation: {:.4f} bits per character (best {:.4f}) after {} steps, {:.3f} epochs, {:.2f} "
               "training minutes ({:.1f} ms per step of {} x {} characters)\n",
               last.val_bpc, best, progress.step, last.epoch, progress.seconds / 60, ms_per_step, batch, length);

    // ---- The checkpoint restores the model ----
    std::unique_ptr<CharModel> restored = make_model({.model = config.model, .vocab = config.vocab, .embed = config.embed,
                                                       .hidden = config.hidden, .layers = config.layers,
                                                       .d_model = config.d_model, .heads = config.heads,
                                                       .blocks = config.blocks, .context = config.context,
                                                       .seed = config.seed + 1});
    load_checkpoint(checkpoint, *restored, nullptr, vocab);
    const double restored_bpc = evaluate(*restored, split.validation, batch, length);

    // ---- Sampling ----
    const std::size_t sample_chars = cli.get_or<std::size_t>("sample", quick ? 200 : 1000);
    const double temperature = cli.get<double>("temperature");
    if (!lstm && prompt.size() > length) prompt = prompt.substr(prompt.size() - length);
    const std::string sampled = sample_chars ? sample(*model, vocab, prompt, sample_chars, temperature, length,
                                                      common->seed) : "";
    {
        std::ofstream f(out / "sample.txt", std::ios::binary);
        f << prompt << sampled << '\n';
        if (!f) throw xg::IoError(fmt::format("char_lm: cannot write {}", (out / "sample.txt").string()));
    }
    fmt::print("sample ({} characters at temperature {}):\n----\n{}{}\n----\n", sample_chars, temperature, prompt,
               sampled);

    train::CsvWriter summary(out / "summary.csv",
                             {"model", "parameters", "steps", "epochs", "training_minutes", "clock", "ms_per_step", "batch",
                              "seq_len", "val_bpc", "best_val_bpc", "unigram_bpc", "bigram_bpc", "restored_val_bpc"});
    summary.row({config.model, parameters, progress.step, last.epoch, progress.seconds / 60,
                 cpu_clock ? "cpu" : "wall", ms_per_step, batch, length,
                 last.val_bpc, best, unigram, bigram, restored_bpc});
    summary.close();

    support::verdict("the bigram baseline (add-one smoothing) predicts the validation text better than the unigram one",
                     fmt::format("bigram {:.4f}, unigram {:.4f} bits per character", bigram, unigram),
                     bigram < unigram);
    if (quick)
        support::verdict("a few seconds of training beat the unigram baseline on the validation text",
                         fmt::format("{:.4f} bits per character after {} steps, unigram {:.4f}", last.val_bpc,
                                     progress.step, unigram),
                         last.val_bpc < unigram);
    else if (lstm)
        support::verdict("the LSTM reaches at most 2.5 bits per character on the validation text (within 10 minutes)",
                         fmt::format("{:.4f} after {:.2f} training minutes ({} steps); bigram {:.4f}", last.val_bpc,
                                     progress.seconds / 60, progress.step, bigram),
                         last.val_bpc <= 2.5);
    else
        support::verdict("the transformer beats the bigram baseline on the validation text",
                         fmt::format("{:.4f} after {:.2f} training minutes ({} steps); bigram {:.4f}", last.val_bpc,
                                     progress.seconds / 60, progress.step, bigram),
                         last.val_bpc < bigram);
    support::verdict("the checkpoint restores the model: a fresh model loaded from it gives the same validation bits "
                     "per character",
                     fmt::format("{:.6f} trained, {:.6f} restored", last.val_bpc, restored_bpc),
                     std::abs(restored_bpc - last.val_bpc) <= 1e-9 * std::max(1.0, last.val_bpc));
    fmt::print("wrote metrics.csv, bpc.png, summary.csv, sample.txt and checkpoint.npz in {}\n", out.string());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    return support::guarded_main("char_lm", [&] { return run(argc, argv); });
}
