// placeholder: filled by the issue that owns it
#include <boost/test/unit_test.hpp>
