#include "graph/dot.hpp"

#include <unordered_set>
#include <vector>

#include <fmt/format.h>

#include "graph/atomic_file.hpp"
#include "graph/function.hpp"

namespace xg {
namespace {

// A DOT string literal's contents: quotes and backslashes escaped, line breaks as \n, other
// control characters dropped, so any variable or op name gives a valid graph.
std::string escape(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\';
        if (c == '\n') out += "\\n";
        else if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out;
}

template <class T>
std::string var_node(const Node<T>* n, bool verbose) {
    std::string label = escape(n->name);
    if (verbose) label += (label.empty() ? "" : ": ") + shape_str(n->data.shape());
    return fmt::format("  v{} [label=\"{}\", color=orange, style=filled];\n",
                       reinterpret_cast<std::uintptr_t>(n), label);
}

}  // namespace

template <class T>
std::string to_dot(const Variable<T>& output, bool verbose) {
    if (!output.defined()) throw GraphError("to_dot: undefined Variable");
    std::string out = "digraph xgrad {\n";
    std::unordered_set<const void*> seen;
    std::vector<const Node<T>*> stack{output.node()};
    seen.insert(output.node());
    while (!stack.empty()) {
        const Node<T>* n = stack.back();
        stack.pop_back();
        out += var_node(n, verbose);
        const Function<T>* fn = n->creator.get();
        if (!fn) continue;
        const auto fid = reinterpret_cast<std::uintptr_t>(fn);
        out += fmt::format("  f{} [label=\"{}\", color=lightblue, style=filled, shape=box];\n", fid,
                           escape(fn->name()));
        out += fmt::format("  f{} -> v{};\n", fid, reinterpret_cast<std::uintptr_t>(n));
        if (fn->released()) continue;  // inputs freed by backward(); nothing more to draw
        for (const auto& x : fn->inputs()) {
            out += fmt::format("  v{} -> f{};\n", reinterpret_cast<std::uintptr_t>(x.node()), fid);
            if (seen.insert(x.node()).second) stack.push_back(x.node());
        }
    }
    return out + "}\n";
}

template <class T>
void write_dot(const Variable<T>& output, const std::string& path, bool verbose) {
    write_file_atomically(path, to_dot(output, verbose));
}

template std::string to_dot(const Variable<float>&, bool);
template std::string to_dot(const Variable<double>&, bool);
template void write_dot(const Variable<float>&, const std::string&, bool);
template void write_dot(const Variable<double>&, const std::string&, bool);

}  // namespace xg
