#include "support/plot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fmt/std.h>

#include "graph/atomic_file.hpp"
#include "graph/error.hpp"
#include "train/csv.hpp"

extern char** environ;

namespace xg::support {

namespace {

namespace fs = std::filesystem;

// A gnuplot double-quoted string literal: backslashes and quotes escaped, line breaks as \n
// (which gnuplot honours in titles and labels).
std::string quoted(const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
        if (c == '\\' || c == '"') q += '\\';
        if (c == '\n') {
            q += "\\n";
            continue;
        }
        q += c;
    }
    return q + '"';
}

std::string bound(const std::optional<double>& v) { return v ? fmt::format("{}", *v) : "*"; }

std::string style_clause(Style style) {
    switch (style) {
        case Style::lines: return "with lines";
        case Style::points: return "with points pt 7 ps 0.8";
        case Style::linespoints: return "with linespoints pt 7 ps 0.6";
        case Style::boxes: return "with boxes fill transparent solid 0.5 border";
        case Style::steps: return "with steps";
        case Style::image: return "with image";
    }
    return "with lines";
}

// The y column as a gnuplot expression: rows failing the filter become NaN, which gnuplot skips.
std::string y_expression(const Series& s) {
    if (s.where.empty()) return fmt::format("(column({}))", quoted(s.y));
    std::string condition;
    for (const auto& [column, value] : s.where) {
        if (!condition.empty()) condition += " && ";
        condition += fmt::format("strcol({}) eq {}", quoted(column), quoted(value));
    }
    return fmt::format("({} ? column({}) : NaN)", condition, quoted(s.y));
}

std::string series_clause(const Series& s, const fs::path& script_dir) {
    std::string using_spec = fmt::format("(column({})):{}", quoted(s.x), y_expression(s));
    if (s.style == Style::boxes && s.box_width) using_spec += fmt::format(":({})", *s.box_width);
    if (s.style == Style::image) using_spec += fmt::format(":(column({}))", quoted(s.z));
    std::string clause = fmt::format("{} using {} {}", quoted(fs::relative(fs::absolute(s.csv), script_dir).string()),
                                     using_spec, style_clause(s.style));
    if (s.style != Style::image) clause += fmt::format(" lw {}", s.line_width);
    if (!s.color.empty()) clause += fmt::format(" lc rgb {}", quoted(s.color));
    return clause + " title " + quoted(s.title);
}

void require(bool ok, const std::string& what) {
    if (!ok) throw ValueError("save_png: " + what);
}

void validate(const Figure& figure) {
    require(!figure.panels.empty(), "the figure has no panels");
    require(figure.panels.size() <= figure.rows * figure.cols,
            fmt::format("{} panels do not fit a {}x{} layout", figure.panels.size(), figure.rows, figure.cols));
    require(figure.panels.size() == 1 || !figure.title.empty(), "a figure of several panels needs a title");
    require(figure.width > 0 && figure.height > 0, "the figure size must be positive");
    for (std::size_t i = 0; i < figure.panels.size(); ++i) {
        const Panel& p = figure.panels[i];
        const std::string which = fmt::format("panel {} ('{}')", i, p.title);
        require(!p.title.empty(), which + " has no title");
        require(!p.x.label.empty() && !p.y.label.empty(), which + " needs both axis labels");
        require(!p.series.empty(), which + " has no series");
        for (const Series& s : p.series) {
            require(!s.title.empty(), which + ": every series needs a legend title");
            require(!s.x.empty() && !s.y.empty(), which + ": series '" + s.title + "' needs x and y columns");
            require(s.style != Style::image || !s.z.empty(), which + ": image series '" + s.title + "' needs a z column");
        }
        for (const Contour& c : p.contours) require(!c.levels.empty(), which + ": a contour needs levels");
    }
}

// Every panel starts from gnuplot's defaults, so settings never leak from one panel to the next.
void write_common_settings(std::ostream& gp) {
    gp << "reset\n"
          "set datafile separator comma\n"
          "set grid lc rgb \"gray80\" dt 2\n"
          "set key box opaque width 1 samplen 3\n";
}

// Contour lines are computed before the multiplot into data blocks $contour_<n>, one per distinct
// (file, columns, levels): six panels over the same function share one computation.
// Returns, per panel, the block index of each of its contours.
std::vector<std::vector<std::size_t>> write_contour_tables(std::ostream& gp, const Figure& figure,
                                                           const fs::path& script_dir) {
    std::map<std::string, std::size_t> blocks;
    std::vector<std::vector<std::size_t>> indices(figure.panels.size());
    for (std::size_t i = 0; i < figure.panels.size(); ++i) {
        for (const Contour& c : figure.panels[i].contours) {
            const std::string levels = fmt::format("{}", fmt::join(c.levels, ","));
            const std::string file = quoted(fs::relative(fs::absolute(c.csv), script_dir).string());
            const std::string splot = fmt::format("splot {} using (column({})):(column({})):(column({})) with lines notitle",
                                                  file, quoted(c.x), quoted(c.y), quoted(c.z));
            const auto [it, added] = blocks.try_emplace(splot + " levels " + levels, blocks.size());
            indices[i].push_back(it->second);
            if (!added) continue;
            write_common_settings(gp);
            gp << "set contour base\nunset surface\nset view map\n"
               << "set cntrparam levels discrete " << levels << "\n"
               << "set table $contour_" << it->second << "\n"
               << splot << "\nunset table\n";
        }
    }
    return indices;
}

void write_panel(std::ostream& gp, const Panel& p, const fs::path& script_dir,
                 const std::vector<std::size_t>& contour_blocks) {
    write_common_settings(gp);
    gp << "set title " << quoted(p.title) << "\n"
       << "set xlabel " << quoted(p.x.label) << "\n"
       << "set ylabel " << quoted(p.y.label) << "\n";
    if (p.x.log) gp << "set logscale x\n";
    if (p.y.log) gp << "set logscale y\n";
    gp << "set xrange [" << bound(p.x.min) << ":" << bound(p.x.max) << "]\n"
       << "set yrange [" << bound(p.y.min) << ":" << bound(p.y.max) << "]\n";
    if (p.legend == "off")
        gp << "unset key\n";
    else
        gp << "set key " << p.legend << "\n";
    for (const std::string& command : p.commands) gp << command << "\n";

    std::vector<std::string> clauses;
    for (std::size_t i = 0; i < p.contours.size(); ++i) {
        const Contour& c = p.contours[i];
        // The contour table is whitespace-separated while the CSV separator is a comma, so each
        // table line arrives as one field: take its first two words.
        clauses.push_back(fmt::format("$contour_{} using (word(strcol(1),1)+0):(word(strcol(1),2)+0) with lines "
                                      "lc rgb {} lw 1 {}",
                                      contour_blocks[i], quoted(c.color),
                                      c.title.empty() ? "notitle" : "title " + quoted(c.title)));
    }
    for (const Series& s : p.series) clauses.push_back(series_clause(s, script_dir));
    gp << "plot ";
    for (std::size_t i = 0; i < clauses.size(); ++i) gp << (i ? ", \\\n     " : "") << clauses[i];
    gp << "\n";
}

struct GnuplotRun {
    int exit_status;
    std::string messages;  // stdout and stderr together
};

// Runs `gnuplot args...` in `dir`, its output captured in a temporary file (no shell involved,
// so paths need no quoting).
GnuplotRun run_gnuplot(const std::vector<std::string>& args, const fs::path& dir, const fs::path& script) {
    // A scratch file, never committed: AtomicFile gives it a recognisable name beside the
    // script, removes it on every path out of here, and a killed run's copy on the next run.
    const AtomicFile scratch(fs::absolute(script).replace_extension(".log").string());
    const fs::path log = scratch.temporary();
    std::vector<char*> argv;
    std::vector<std::string> storage = {"gnuplot"};
    storage.insert(storage.end(), args.begin(), args.end());
    for (std::string& a : storage) argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    pid_t pid = 0;
    const int spawn_error = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (spawn_error != 0)
        throw IoError(fmt::format("cannot run gnuplot for {}: {}{}", script, std::strerror(spawn_error),
                                  spawn_error == ENOENT ? " (install gnuplot-nox; scripts/setup does)" : ""));
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::ifstream in(log);
    std::stringstream messages;
    messages << in.rdbuf();
    in.close();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), messages.str()};
}

}  // namespace

std::string gnuplot_script(const Figure& figure, const fs::path& script_dir, const std::string& png_name) {
    validate(figure);
    std::ostringstream gp;
    gp << "# Written by xgrad (xg::support::save_png). Re-draw with `gnuplot " << fs::path(png_name).stem().string()
       << ".gp` in this directory.\n"
       << "if (!exists(\"output\")) output = " << quoted(png_name) << "\n"
       << "if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
       << fmt::format("    set terminal pngcairo noenhanced size {},{} font \"sans,10\"\n", figure.width, figure.height)
       << "} else {\n"
       << fmt::format("    set terminal png noenhanced size {},{}\n", figure.width, figure.height) << "}\n"
       << "set output output\n";
    const auto contour_blocks = write_contour_tables(gp, figure, script_dir);
    gp << fmt::format("set multiplot layout {},{} title {} font \",14\"\n", figure.rows, figure.cols,
                      quoted(figure.title));
    for (std::size_t i = 0; i < figure.panels.size(); ++i)
        write_panel(gp, figure.panels[i], script_dir, contour_blocks[i]);
    gp << "unset multiplot\nunset output\n";
    return gp.str();
}

void save_png(const Figure& figure, const fs::path& png) {
    const fs::path dir = fs::absolute(png).parent_path();
    const fs::path script = fs::path(png).replace_extension(".gp");
    write_file_atomically(script.string(), gnuplot_script(figure, dir, png.filename().string()));
    AtomicFile image(png.string());  // gnuplot draws into its temporary, published when complete
    const GnuplotRun run = run_gnuplot({"-e", "output = " + quoted(fs::path(image.temporary()).filename().string()),
                                        script.filename().string()},
                                       dir, script);
    std::error_code error;
    if (run.exit_status != 0 || fs::file_size(image.temporary(), error) == 0 || error)
        throw IoError(fmt::format("gnuplot failed on {} (exit status {}) drawing {}:\n{}", script, run.exit_status,
                                  png, run.messages));
    image.commit();
    if (!run.messages.empty()) std::cerr << fmt::format("gnuplot ({}): {}", script, run.messages);
}

void write_grid_csv(const fs::path& path, const std::string& x_name, const std::string& y_name,
                    const std::string& z_name, const std::vector<double>& xs, const std::vector<double>& ys,
                    const std::function<double(double, double)>& f) {
    train::CsvWriter csv(path, {x_name, y_name, z_name});
    for (double x : xs) {
        for (double y : ys) csv.row({x, y, f(x, y)});
        csv.end_block();
    }
    csv.close();
}

}  // namespace xg::support
