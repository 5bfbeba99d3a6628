#include "expect_error.hpp"

namespace xgt {

void expect_fragments(const std::string& what, const std::vector<std::string>& fragments) {
    for (const auto& frag : fragments)
        BOOST_TEST(what.find(frag) != std::string::npos, "'" << frag << "' not in: " << what);
}

}  // namespace xgt
