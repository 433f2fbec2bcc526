// A gRPC server interceptor that counts every finished RPC in clrdiag_grpc_requests_total by
// service, method and status code, so the handlers need no metrics code of their own.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include <set>
#include <string>

#include "daemon/metrics/daemon_metrics.h"

namespace clrdiag::metrics {

// The label of calls to methods the server does not have (they end UNIMPLEMENTED): a client
// must not be able to add series by making names up.
inline constexpr char kUnknownMethod[] = "/unknown/unknown";

// The daemon's methods as gRPC names ("/clrdiag.v1.Diagnostics/ListProcesses"): every method of
// clrdiag.v1.Diagnostics and of grpc.health.v1.Health.
std::set<std::string> DaemonMethods();

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  RpcMetricsInterceptorFactory(DaemonMetrics* metrics, std::set<std::string> known_methods)
      : metrics_(metrics), known_(std::move(known_methods)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  DaemonMetrics* metrics_;
  const std::set<std::string> known_;
};

}  // namespace clrdiag::metrics
