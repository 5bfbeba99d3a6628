#pragma once
// Progress of a training loop. On a terminal: one bar redrawn in place,
//     [##########..........]  1000/2000  loss 0.4123  acc 0.8710  00:12 < 00:12
// otherwise (a log file, a pipe, the test suite) plain lines every `every` steps, so logs stay
// readable and diffable.
#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

namespace xg::train {

// What the caller knows at a step; unset values are not shown.
struct Metrics {
    std::optional<double> loss = {};
    std::optional<double> accuracy = {};
};

class Progress {
public:
    using Clock = std::function<double()>;  // seconds since some fixed origin

    // `total` steps (> 0); in plain mode a line every `every` steps and at the last one.
    // `clock` is injectable for tests; by default a steady clock.
    Progress(std::ostream& out, bool interactive, long total, std::string label = {}, long every = 100,
             Clock clock = {});
    // Interactive exactly when stdout is a terminal.
    static Progress for_stdout(long total, std::string label = {}, long every = 100);
    // Ends the bar's line so later output starts on a fresh one.
    ~Progress();
    Progress(const Progress&) = delete;
    Progress& operator=(const Progress&) = delete;

    // Step `step` (1-based) is done.
    void update(long step, const Metrics& metrics = {});
    // A line of its own (e.g. an epoch summary) that does not break the bar: the bar is cleared,
    // the line printed, and the bar redrawn at the next update.
    void note(const std::string& line);
    // Clears the bar and prints the final line; called by the destructor if not before.
    void finish();

    double elapsed() const;

    // "mm:ss", or "h:mm:ss" from an hour on.
    static std::string format_duration(double seconds);

private:
    std::string status_line(long step, const Metrics& metrics) const;
    void clear_bar();

    std::ostream& out_;
    bool interactive_;
    long total_;
    std::string label_;
    long every_;
    Clock clock_;
    double start_;
    double last_draw_ = -1;
    long step_ = 0;
    long drawn_step_ = 0;  // the step the visible bar shows
    Metrics metrics_;
    bool bar_visible_ = false;
    bool finished_ = false;
};

}  // namespace xg::train
