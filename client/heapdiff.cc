#include "client/heapdiff.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace clrdiag::cli {
namespace {

using Json = nlohmann::ordered_json;

// -1234 → "-1,234", 5 → "+5".
std::string Signed(int64_t v) {
  std::string s = WithThousands(v < 0 ? static_cast<uint64_t>(-(v + 1)) + 1 : v);
  return (v < 0 ? "-" : "+") + s;
}

struct Row {
  std::string name;
  HeapTypes::Totals a, b;
  int64_t count_growth() const {
    return static_cast<int64_t>(b.count) - static_cast<int64_t>(a.count);
  }
  int64_t size_growth() const {
    return static_cast<int64_t>(b.size) - static_cast<int64_t>(a.size);
  }
};

// The changed types, largest size growth first (then count growth, then name).
std::vector<Row> Changes(const HeapTypes& a, const HeapTypes& b) {
  std::vector<Row> rows;
  auto add = [&](const std::string& name) {
    Row r{name, {}, {}};
    if (auto it = a.by_name.find(name); it != a.by_name.end()) r.a = it->second;
    if (auto it = b.by_name.find(name); it != b.by_name.end()) r.b = it->second;
    if (r.a.count != r.b.count || r.a.size != r.b.size) rows.push_back(r);
  };
  for (const auto& [name, _] : a.by_name) add(name);
  for (const auto& [name, _] : b.by_name) {
    if (!a.by_name.count(name)) add(name);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) {
    if (x.size_growth() != y.size_growth()) return x.size_growth() > y.size_growth();
    if (x.count_growth() != y.count_growth()) return x.count_growth() > y.count_growth();
    return x.name < y.name;
  });
  return rows;
}

}  // namespace

bool ParseHeapStat(const std::string& document, HeapTypes* out, std::string* error) {
  Json doc = Json::parse(document, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    *error = "the daemon's dumpheap -stat output is not JSON";
    return false;
  }
  if (doc.contains("error")) {
    *error = doc["error"].is_string() ? doc["error"].get<std::string>() : doc["error"].dump();
    return false;
  }
  const Json& r = doc.contains("result") ? doc["result"] : Json();
  if (!r.is_object() || !r.contains("statistics") || !r["statistics"].is_array()) {
    *error = "the daemon's dumpheap -stat output has no statistics";
    return false;
  }
  *out = HeapTypes{};
  for (const Json& t : r["statistics"]) {
    HeapTypes::Totals& totals = out->by_name[t.value("type", "")];
    totals.count += t.value("count", uint64_t{0});
    totals.size += t.value("total_size", uint64_t{0});
    ++totals.mts;
  }
  out->objects = r.value("total_objects", uint64_t{0});
  out->bytes = r.value("total_size", uint64_t{0});
  if (r.contains("warnings") && r["warnings"].is_array()) {
    for (const Json& w : r["warnings"]) {
      if (w.is_string()) out->warnings.push_back(w.get<std::string>());
    }
  }
  return true;
}

std::string FormatHeapDiff(const HeapTypes& a, const HeapTypes& b, const std::string& label_a,
                           const std::string& label_b) {
  std::vector<Row> rows = Changes(a, b);
  std::string s = absl::StrCat("Heap growth from ", label_a, " to ", label_b,
                               " (types whose count or size changed, largest growth first):\n");
  if (rows.empty()) {
    s += "No type changed.\n";
  } else {
    size_t w[6] = {6, 6, 6, 5, 5, 5};  // column widths, at least the headers'
    for (const Row& r : rows) {
      w[0] = std::max(w[0], WithThousands(r.a.count).size());
      w[1] = std::max(w[1], WithThousands(r.b.count).size());
      w[2] = std::max(w[2], Signed(r.count_growth()).size());
      w[3] = std::max(w[3], WithThousands(r.a.size).size());
      w[4] = std::max(w[4], WithThousands(r.b.size).size());
      w[5] = std::max(w[5], Signed(r.size_growth()).size());
    }
    absl::StrAppendFormat(&s, "%*s %*s %*s %*s %*s %*s Class Name\n", w[0], "CountA", w[1],
                          "CountB", w[2], "+Count", w[3], "SizeA", w[4], "SizeB", w[5], "+Size");
    for (const Row& r : rows) {
      absl::StrAppendFormat(&s, "%*s %*s %*s %*s %*s %*s %s\n", w[0], WithThousands(r.a.count),
                            w[1], WithThousands(r.b.count), w[2], Signed(r.count_growth()), w[3],
                            WithThousands(r.a.size), w[4], WithThousands(r.b.size), w[5],
                            Signed(r.size_growth()), r.name);
    }
  }
  absl::StrAppendFormat(
      &s, "Total: %s objects, %s bytes -> %s objects, %s bytes (%s objects, %s bytes)\n",
      WithThousands(a.objects), WithThousands(a.bytes), WithThousands(b.objects),
      WithThousands(b.bytes),
      Signed(static_cast<int64_t>(b.objects) - static_cast<int64_t>(a.objects)),
      Signed(static_cast<int64_t>(b.bytes) - static_cast<int64_t>(a.bytes)));
  for (const std::string& w : a.warnings)
    absl::StrAppendFormat(&s, "warning: %s: %s\n", label_a, w);
  for (const std::string& w : b.warnings)
    absl::StrAppendFormat(&s, "warning: %s: %s\n", label_b, w);
  return s;
}

std::string HeapDiffJson(const HeapTypes& a, const HeapTypes& b, const std::string& label_a,
                         const std::string& label_b) {
  Json types = Json::array();
  for (const Row& r : Changes(a, b)) {
    types.push_back(Json{{"type", r.name},
                         {"count_a", r.a.count},
                         {"count_b", r.b.count},
                         {"count_growth", r.count_growth()},
                         {"size_a", r.a.size},
                         {"size_b", r.b.size},
                         {"size_growth", r.size_growth()},
                         {"method_tables_a", r.a.mts},
                         {"method_tables_b", r.b.mts}});
  }
  Json warnings = Json::array();
  for (const std::string& w : a.warnings) warnings.push_back(absl::StrCat(label_a, ": ", w));
  for (const std::string& w : b.warnings) warnings.push_back(absl::StrCat(label_b, ": ", w));
  Json j{
      {"dump_a", label_a},
      {"dump_b", label_b},
      {"types", types},
      {"total_objects_a", a.objects},
      {"total_objects_b", b.objects},
      {"total_objects_growth", static_cast<int64_t>(b.objects) - static_cast<int64_t>(a.objects)},
      {"total_size_a", a.bytes},
      {"total_size_b", b.bytes},
      {"total_size_growth", static_cast<int64_t>(b.bytes) - static_cast<int64_t>(a.bytes)},
      {"warnings", warnings}};
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool FetchHeapStat(Client& client, const std::string& dump, HeapTypes* out, grpc::Status* status,
                   std::string* error, const std::atomic<bool>* cancel) {
  grpc::ClientContext ctx;
  auto stream = client.stub().Analyze(&ctx);
  std::atomic<bool> finished{false};
  std::thread watcher;
  if (cancel) {
    watcher = std::thread([&] {
      while (!finished.load()) {
        if (cancel->load()) {
          ctx.TryCancel();
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  auto done = [&](bool ok) {
    finished = true;
    if (watcher.joinable()) watcher.join();
    return ok;
  };
  clrdiag::v1::AnalyzeRequest req;
  req.mutable_open()->set_dump(dump);
  clrdiag::v1::AnalyzeResponse resp;
  if (!stream->Write(req) || !stream->Read(&resp) || !resp.has_opened()) {
    stream->WritesDone();
    *status = stream->Finish();
    if (status->ok()) {
      *status = grpc::Status(grpc::StatusCode::INTERNAL, "the session ended before it opened");
    }
    return done(false);
  }
  req.Clear();
  req.mutable_command()->set_id(1);
  req.mutable_command()->set_command_line("dumpheap -stat");
  req.mutable_command()->set_json(true);
  std::string text;
  bool ended = false, ok = false;
  if (stream->Write(req)) {
    while (stream->Read(&resp)) {
      if (resp.has_output()) text += resp.output().text();
      if (resp.has_done()) {
        ended = true;
        ok = resp.done().ok();
        if (!ok) *error = resp.done().error();
        break;
      }
    }
  }
  stream->WritesDone();
  while (stream->Read(&resp)) {
  }
  *status = stream->Finish();
  if (!ended) {
    if (status->ok()) *status = grpc::Status(grpc::StatusCode::INTERNAL, "the session ended");
    return done(false);
  }
  *status = grpc::Status::OK;
  if (!ok) {
    // The command's error is in the document too, clearer than the bare message.
    std::string parsed;
    if (!ParseHeapStat(text, out, &parsed)) *error = parsed.empty() ? *error : parsed;
    return done(false);
  }
  return done(ParseHeapStat(text, out, error));
}

int RunHeapDiff(Client& client, const std::string& dump_a, const std::string& dump_b, bool json) {
  HeapTypes a, b;
  grpc::Status st_a, st_b;
  std::string err_a, err_b;
  bool ok_b = false;
  std::thread other([&] { ok_b = FetchHeapStat(client, dump_b, &b, &st_b, &err_b); });
  bool ok_a = FetchHeapStat(client, dump_a, &a, &st_a, &err_a);
  other.join();
  for (auto [ok, st, err, label] :
       {std::tuple{ok_a, &st_a, &err_a, &dump_a}, std::tuple{ok_b, &st_b, &err_b, &dump_b}}) {
    if (ok) continue;
    if (!st->ok()) {
      return client.Fail(grpc::Status(
          st->error_code(), absl::StrCat("heapdiff: ", *label, ": ", st->error_message())));
    }
    std::fprintf(stderr, "clrdiag: heapdiff: %s: %s\n", label->c_str(), err->c_str());
    return kExitFailed;
  }
  std::string s =
      json ? HeapDiffJson(a, b, dump_a, dump_b) + "\n" : FormatHeapDiff(a, b, dump_a, dump_b);
  std::fwrite(s.data(), 1, s.size(), stdout);
  return kExitOk;
}

}  // namespace clrdiag::cli
