// A gRPC server interceptor that counts every finished RPC in clrdiag_grpc_requests_total by
// service, method and status code, so the handlers need no metrics code of their own.
#pragma once

#include <grpcpp/support/server_interceptor.h>

#include "daemon/metrics/daemon_metrics.h"

namespace clrdiag::metrics {

class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(DaemonMetrics* metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  DaemonMetrics* metrics_;
};

}  // namespace clrdiag::metrics
