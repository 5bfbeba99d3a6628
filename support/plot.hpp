#pragma once
// Figures drawn by gnuplot from the CSV files an experiment writes. A Figure is a grid of
// panels; save_png() writes "<name>.gp" beside "<name>.png" and runs gnuplot on it, so every
// plot can be re-drawn (or restyled) by hand: `cd out/example && gnuplot name.gp`.
//
//     xg::support::Figure fig{.title = "Paths", .rows = 1, .cols = 2};
//     fig.panels.push_back({.title = "SGD", .x = {.label = "x"}, .y = {.label = "y"},
//                           .series = {{.csv = "paths.csv", .x = "x", .y = "y", .title = "SGD",
//                                       .style = xg::support::Style::linespoints,
//                                       .where = {{"optimizer", "SGD"}}}}});
//     xg::support::save_png(fig, out / "paths.png");
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace xg::support {

// image: a raster from x, y and the grey level in column z, one cell per (x, y) pair on an integer
// grid (NaN cells stay blank); with a gray palette and "set size ratio -1" in the panel's commands
// it shows pictures (a grid of filters or of digits drawn as one mosaic).
enum class Style { lines, points, linespoints, boxes, steps, image };

// Selects the rows of a CSV file whose columns equal the given strings, e.g.
// {{"optimizer", "SGD"}, {"layer", "3"}}: one tidy CSV can feed many series.
using Filter = std::vector<std::pair<std::string, std::string>>;

// One curve (or set of boxes) read from columns of a CSV file with a header row.
struct Series {
    std::filesystem::path csv;
    std::string x;            // column names
    std::string y;
    std::string title;        // legend entry (required)
    Style style = Style::lines;
    Filter where = {};
    std::string color = {};   // gnuplot colour ("#1f77b4", "dark-red"); empty: gnuplot's cycle
    double line_width = 1.5;
    std::optional<double> box_width = {};  // Style::boxes: width in x units; unset: boxes touch
    std::string z = {};       // Style::image: the column of grey levels (required there, unused elsewhere)
};

// Contour lines of z over a grid stored in a CSV file: x, y, z columns, each run of constant x
// ended by an empty line (CsvWriter::end_block; write_grid_csv does this).
struct Contour {
    std::filesystem::path csv;
    std::string x;
    std::string y;
    std::string z;
    std::vector<double> levels;  // the z values to draw
    std::string color = "gray60";
    std::string title = {};      // legend entry; empty: none (contours are background)
};

struct Axis {
    std::string label;  // required
    bool log = false;
    std::optional<double> min = {};  // unset: gnuplot autoscales that end
    std::optional<double> max = {};
};

struct Panel {
    std::string title;  // required
    Axis x;
    Axis y;
    std::vector<Series> series;  // at least one
    std::vector<Contour> contours = {};  // drawn under the series
    std::string legend = "top right";  // gnuplot `set key` position, e.g. "bottom left", "outside"
    // Raw gnuplot commands for this panel only (each panel starts from gnuplot's defaults),
    // e.g. "set size ratio -1" or "set label 1 'note' at graph 0.05,0.9".
    std::vector<std::string> commands = {};
};

struct Figure {
    std::string title;  // required when there is more than one panel
    std::size_t rows = 1;
    std::size_t cols = 1;
    int width = 900;   // pixels
    int height = 650;
    std::vector<Panel> panels = {};  // filled row by row; at most rows * cols
};

// Writes the gnuplot script for `figure` beside `png` (same name, extension .gp) and runs
// gnuplot (terminal pngcairo, or png if gnuplot was built without cairo). The PNG appears
// atomically: gnuplot writes a temporary file that is renamed on success. Throws ValueError for
// a figure missing a title, axis label or legend entry, IoError naming the script and quoting
// gnuplot's messages if gnuplot is missing or fails. gnuplot's warnings go to stderr.
void save_png(const Figure& figure, const std::filesystem::path& png);

// The script save_png would write, with paths relative to `script_dir` (for tests).
std::string gnuplot_script(const Figure& figure, const std::filesystem::path& script_dir,
                           const std::string& png_name);

// Samples f on the grid xs × ys into a CSV (columns x_name, y_name, z_name) laid out for Contour.
void write_grid_csv(const std::filesystem::path& path, const std::string& x_name, const std::string& y_name,
                    const std::string& z_name, const std::vector<double>& xs, const std::vector<double>& ys,
                    const std::function<double(double, double)>& f);

}  // namespace xg::support
