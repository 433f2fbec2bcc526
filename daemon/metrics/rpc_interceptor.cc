#include "daemon/metrics/rpc_interceptor.h"

#include <string>

namespace clrdiag::metrics {
namespace {

using grpc::experimental::InterceptionHookPoints;

class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(DaemonMetrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)) {}
  // A call that ends without a status of ours (the client went away first) counts as CANCELLED.
  ~RpcMetricsInterceptor() override {
    if (!counted_) metrics_->ObserveRpc(method_, grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) && !counted_) {
      counted_ = true;
      metrics_->ObserveRpc(method_, methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  DaemonMetrics* metrics_;
  std::string method_;
  bool counted_ = false;
};

}  // namespace

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new RpcMetricsInterceptor(metrics_, info->method() ? info->method() : "");
}

}  // namespace clrdiag::metrics
