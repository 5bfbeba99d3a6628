#include "train/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <iostream>

#include <fmt/format.h>

#include "graph/error.hpp"

namespace xg::train {

namespace {

constexpr int bar_width = 24;
constexpr double redraw_interval = 0.1;  // seconds: redrawing on every step would cost more than tiny steps

double steady_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

}  // namespace

Progress::Progress(std::ostream& out, bool interactive, long total, std::string label, long every, Clock clock)
    : out_(out),
      interactive_(interactive),
      total_(total),
      label_(std::move(label)),
      every_(every),
      clock_(clock ? std::move(clock) : Clock(steady_seconds)),
      start_(clock_()) {
    if (total <= 0) throw ValueError(fmt::format("Progress: total must be > 0, got {}", total));
    if (every <= 0) throw ValueError(fmt::format("Progress: every must be > 0, got {}", every));
}

Progress Progress::for_stdout(long total, std::string label, long every) {
    return Progress(std::cout, ::isatty(STDOUT_FILENO) != 0, total, std::move(label), every);
}

Progress::~Progress() {
    try {
        finish();
    } catch (...) {  // an ostream that throws must not end the program from a destructor
    }
}

double Progress::elapsed() const { return clock_() - start_; }

std::string Progress::format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "--:--";
    const long s = std::lround(seconds);
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    return fmt::format("{:02}:{:02}", s / 60, s % 60);
}

std::string Progress::status_line(long step, const Metrics& metrics) const {
    const double seconds = elapsed();
    const double eta = step > 0 ? seconds / static_cast<double>(step) * static_cast<double>(total_ - step) : NAN;
    const int digits = static_cast<int>(fmt::format("{}", total_).size());
    std::string line = label_.empty() ? "" : label_ + " ";
    if (interactive_) {
        const auto filled = static_cast<int>(bar_width * step / total_);
        line += fmt::format("[{}{}] ", std::string(filled, '#'), std::string(bar_width - filled, '.'));
    } else {
        line += "step ";
    }
    line += fmt::format("{:>{}}/{}", step, digits, total_);
    if (metrics.loss) line += fmt::format("  loss {:.4f}", *metrics.loss);
    if (metrics.accuracy) line += fmt::format("  acc {:.4f}", *metrics.accuracy);
    line += fmt::format("  {} < {}", format_duration(seconds), format_duration(eta));
    return line;
}

void Progress::clear_bar() {
    if (!bar_visible_) return;
    out_ << "\r\x1b[K";  // carriage return, then erase to the end of the line
    bar_visible_ = false;
}

void Progress::update(long step, const Metrics& metrics) {
    if (finished_) return;
    step_ = step;
    metrics_ = metrics;
    if (interactive_) {
        const double now = clock_();
        if (step < total_ && now - last_draw_ < redraw_interval) return;
        last_draw_ = now;
        out_ << "\r" << status_line(step, metrics) << "\x1b[K" << std::flush;
        bar_visible_ = true;
        drawn_step_ = step;
    } else if (step % every_ == 0 || step == total_) {
        out_ << status_line(step, metrics) << '\n';
    }
}

void Progress::note(const std::string& line) {
    clear_bar();
    out_ << line << '\n' << std::flush;
    last_draw_ = -1;  // the bar comes back at the next update, whatever the interval
}

void Progress::finish() {
    if (finished_) return;
    finished_ = true;
    if (!interactive_) return;  // plain mode printed the last step already (if it was reached)
    if (bar_visible_) {
        // The bar stays on screen as a normal line, redrawn if throttling left it behind.
        if (drawn_step_ != step_) out_ << "\r" << status_line(step_, metrics_) << "\x1b[K";
        out_ << '\n' << std::flush;
        bar_visible_ = false;
    }
}

}  // namespace xg::train
