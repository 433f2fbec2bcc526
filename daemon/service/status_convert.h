// The one place absl::Status becomes a gRPC status.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace clrdiag::service {

// Named limit: status messages travel in a response trailer, which clients cap (gRPC's
// default metadata limit); longer ones (e.g. echoing a huge client-supplied id) are cut.
inline constexpr size_t kMaxStatusMessageBytes = 4096;

inline std::string CapMessage(std::string msg) {
  if (msg.size() > kMaxStatusMessageBytes) {
    size_t full = msg.size();
    msg.resize(kMaxStatusMessageBytes);
    msg += "... (message cut off, " + std::to_string(full) + " bytes)";
  }
  return msg;
}

inline grpc::Status ToGrpc(const absl::Status& st) {
  if (st.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(st.code()),
                      CapMessage(std::string(st.message())));
}

}  // namespace clrdiag::service
