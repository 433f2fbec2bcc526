#include "daemon/metrics/rpc_interceptor.h"

#include <google/protobuf/descriptor.h>

#include <string>

#include "clrdiag/v1/clrdiag.grpc.pb.h"

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

std::set<std::string> DaemonMethods() {
  std::set<std::string> out = {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"};
  const google::protobuf::ServiceDescriptor* d =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          v1::Diagnostics::service_full_name());
  for (int i = 0; d != nullptr && i < d->method_count(); ++i) {
    out.insert("/" + d->full_name() + "/" + d->method(i)->name());
  }
  return out;
}

grpc::experimental::Interceptor* RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const char* m = info->method();
  return new RpcMetricsInterceptor(metrics_, m != nullptr && known_.count(m) ? m : kUnknownMethod);
}

}  // namespace clrdiag::metrics
