#pragma once
// dist/'s own: an MPI call's status turned into DistError naming the call (not installed).
#include <string_view>

namespace xg::dist::detail {

// Throws DistError("<call> failed: <MPI's error string>") unless status is MPI_SUCCESS.
void check_mpi(int status, std::string_view call);

}  // namespace xg::dist::detail
